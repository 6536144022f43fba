// facecluster review: selection counts, select-all, a person's suggestions and "same person?" questions,
// the status banner, y/n/s keys (the first question on screen) and confirmations.
// Everything works without this script; it only saves clicks.
"use strict";

function updateCounts() {
  for (const counter of document.querySelectorAll(".selected[data-for]")) {
    const name = counter.dataset.for;
    const count = document.querySelectorAll(`input[type=checkbox][name=${name}]:checked`).length;
    counter.textContent = `${count} selected`;
  }
}

function setUpSelection() {
  let last = null;
  const boxes = () => Array.from(document.querySelectorAll("input[type=checkbox][name=face]"));
  document.addEventListener("click", (event) => {
    const box = event.target;
    if (!(box instanceof HTMLInputElement) || box.type !== "checkbox") return;
    if (event.shiftKey && last && box.name === "face") {  // shift-click selects a range
      const all = boxes();
      const [a, b] = [all.indexOf(last), all.indexOf(box)].sort((x, y) => x - y);
      for (const other of all.slice(a, b + 1)) other.checked = box.checked;
    }
    last = box;
    updateCounts();
  });
  for (const button of document.querySelectorAll("button.select-all")) {
    button.addEventListener("click", () => {
      const all = boxes();
      const value = !all.every((box) => box.checked);
      for (const box of all) box.checked = value;
      updateCounts();
    });
  }
  updateCounts();
}

async function loadSection(section) {
  const response = await fetch(section.dataset.src, { credentials: "same-origin" });
  if (response.ok) section.innerHTML = await response.text();  // server-rendered, escaped HTML
}

function loadSections() {
  for (const section of document.querySelectorAll("section[data-src]")) loadSection(section);
}

const STATUS_TEXT = {
  busy: "A scan (or another facecluster command) is using this library: read-only until it ends.",
  settling: "Updating albums, people.json and the report…",
  pending: "Changes saved; albums, people.json and the report are updated a few seconds after your last change.",
  done: "All changes saved; albums, people.json and the report are up to date.",
};

async function pollStatus() {
  const banner = document.getElementById("status");
  try {
    const response = await fetch("/status", { credentials: "same-origin" });
    if (!response.ok) return;
    const now = await response.json();
    let text = STATUS_TEXT.done;
    if (now.busy) text = STATUS_TEXT.busy;
    else if (now.error) text = `Albums not updated yet: ${now.error}`;
    else if (now.settling) text = STATUS_TEXT.settling;
    else if (now.pending) text = STATUS_TEXT.pending;
    banner.textContent = text;
    banner.classList.toggle("busy", now.busy);
    banner.classList.toggle("error", Boolean(now.error) && !now.busy);
    document.body.classList.toggle("readonly", now.busy);
  } finally {
    setTimeout(pollStatus, 2000);
  }
}

function setUpKeys() {
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    const typing = target instanceof HTMLInputElement && target.type !== "checkbox";
    if (typing || target instanceof HTMLTextAreaElement) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const answer = { y: "yes", n: "no", s: "skip" }[event.key];
    if (!answer) return;
    const visible = Array.from(document.querySelectorAll(".question")).find((question) => {
      const box = question.getBoundingClientRect();
      return box.bottom > 0 && box.top < window.innerHeight;
    });
    const button = visible && visible.querySelector(`button[value=${answer}], a[data-answer=${answer}]`);
    if (button) button.click();
  });
}

function setUpConfirmations() {
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.dataset.confirm)) event.preventDefault();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  setUpSelection();
  setUpKeys();
  setUpConfirmations();
  loadSections();
  setTimeout(pollStatus, 2000);
});
