"""The review app in a real browser (Debian's chromium through Selenium): what a user clicks, and what it changes.

Each test starts the app in-process on its own copy of the stand-in library (``tests.fakes``) and
checks, after the app has settled, that the index (read afresh with ``Library.open``), people.json and
the albums under people/ all say the same thing. One headless browser serves the whole module.
"""

from __future__ import annotations

import io
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from PIL import Image

from facecluster.library import Library
from facecluster.review.server import ReviewServer
from facecluster.review.session import Status
from facecluster.storage.lock import OutputLock
from tests.chromium import CHROMEDRIVER, CHROMIUM, chromium_driver
from tests.fakes import ALICE, FakeAnalyzer, write_photo

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

WIDE, NARROW = (1280, 900), (400, 900)
WAIT = 15.0
"""Seconds to wait for a page, an image or the banner (each usually takes well under one)."""
UP_TO_DATE = "up to date"
SMALL = 1000
"""Photos written with a variant from here on get faces too small to be grouped (``SmallFaces``)."""

# The stand-in library (tests.fakes.write_library) as the scan numbers it: faces by person.
ALICE_FACES = {3: "alice0.png", 4: "alice1.png", 5: "alice2.png", 6: "alice3.png", 10: "party.png"}
BOB_FACES = {7: "bob0.png", 8: "bob1.png", 9: "bob2.png", 11: "party.png"}
CAROL_FACES = {1: "party.png", 12: "carol.png"}
STRANGER = 2

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
)


# ---------------------------------------------------------------------------------------------- fixtures


def wait(driver: webdriver.Chrome) -> WebDriverWait:
    """Wait up to WAIT seconds, looking every 20 ms (the default half second would dominate the run time);
    a page being replaced meanwhile may fail a look (its script context or its elements are gone): look again."""
    return WebDriverWait(driver, WAIT, poll_frequency=0.02, ignored_exceptions=(WebDriverException,))


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    """One headless chromium for the module, with a fresh profile; never downloads anything."""
    driver = chromium_driver(tmp_path_factory.mktemp("chromium-profile"))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


class Review:
    """The app of one library, served in-process, and the browser looking at it."""

    def __init__(self, driver: webdriver.Chrome, library: Library) -> None:
        self.driver = driver
        self.output = library.output
        self.server = ReviewServer(library, port=0, settle_delay=0.2)
        self.thread = threading.Thread(target=self.server.serve, name="review-server", daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.server.port}"
        driver.set_window_size(*WIDE)
        driver.get(self.server.url)  # the token becomes the app's cookie; lands on the overview

    # -- pages and actions

    def open(self, path: str = "/") -> None:
        self.driver.get(self.base + path)

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def submit(self, button: WebElement | str, click: Callable[[WebElement], None] | None = None) -> None:
        """Click a submit button (or the element a selector finds) and wait for the page the app answers with."""
        element = self.find(button) if isinstance(button, str) else button
        self.driver.execute_script("window.facecluster_old_page = true")
        (click or WebElement.click)(element)
        # Not staleness_of(an element of the old page): while a page is replaced, chromedriver may answer for
        # an element of the old one "Node with given id does not belong to the document" (not "stale").
        wait(self.driver).until(
            lambda d: d.execute_script("return !window.facecluster_old_page && document.readyState === 'complete'")
        )

    def type(self, css: str, text: str) -> None:
        field = self.find(css)
        field.clear()
        field.send_keys(text)

    def tick(self, *values: int, name: str = "face") -> None:
        for value in values:
            box = self.find(f"input[type=checkbox][name={name}][value='{value}']")
            if not box.is_selected():
                box.click()

    def messages(self) -> list[str]:
        return [item.text for item in self.find_all("#messages li")]

    def banner(self) -> str:
        return self.find("#status").text

    def wait_up_to_date(self) -> None:
        """Wait until the status banner (polled by review.js) says everything is written."""
        wait(self.driver).until(lambda d: UP_TO_DATE in self.banner())

    def images_loaded(self) -> bool:
        """Whether every image of the page has loaded and has pixels."""
        return self.driver.execute_script(
            "return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
        )

    def overflow(self) -> tuple[int, int]:
        """(document width, window width): the first larger means the page scrolls sideways."""
        return tuple(self.driver.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]"))

    # -- what the library holds

    def settled(self) -> State:
        """Settle the app's pending changes, check the outputs agree with the index, and return the index's state."""
        self.server.session.settle_now()
        return outputs_agree(self.output)

    def close(self) -> None:
        self.server.close()
        self.thread.join(timeout=10)


@pytest.fixture()
def start(browser: webdriver.Chrome) -> Iterator[Callable[[Library], Review]]:
    """Serve a library and point the module's browser at it; everything started is closed afterwards."""
    started: list[Review] = []

    def run(library: Library) -> Review:
        review = Review(browser, library)
        started.append(review)
        return review

    yield run
    for review in started:
        review.close()
    browser.set_window_size(*WIDE)


@pytest.fixture()
def named(library: Library) -> Library:
    """The stand-in library with Bob and Carol named (Alice, the largest, stays unnamed)."""
    with library.corrections() as edit:
        edit.name(2, "Bob")
        edit.name(3, "Carol")
    return library


class SmallFaces(FakeAnalyzer):
    """The stand-in analyzer, but faces in photos of variant SMALL and up are 20 px wide: too small to be
    grouped, so they stay unsorted while lying near their person (the app asks "Is this ...?" about them)."""

    def analyze_many(self, images):
        for result in super().analyze_many(images):
            if isinstance(result.source, bytes) and _variant(result.source) >= SMALL:
                result.faces = [replace(face, quality=replace(face.quality, size=20.0)) for face in result.faces]
            yield result


def _variant(data: bytes) -> int:
    """The variant ``tests.fakes.photo_bytes`` wrote into a photo (-1 for a file that is no image)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            red, green, _ = image.convert("RGB").getpixel((0, image.height - 1))
    except OSError:
        return -1
    return red + 256 * green


@pytest.fixture()
def near(photos: Path, tmp_path: Path) -> Library:
    """The stand-in library plus two photos of Alice whose faces are too small to group (unsorted, near her)."""
    write_photo(photos / "small" / "alice_far0.png", [ALICE], variant=SMALL)
    write_photo(photos / "small" / "alice_far1.png", [ALICE], variant=SMALL + 1)
    library = Library.create(photos, tmp_path / "out", load_analyzer=lambda device, workers: SmallFaces())
    library.scan()
    return library


def small_faces(library: Library) -> list[int]:
    """The unsorted faces of ``near``'s small photos, in photo order (alice_far0, alice_far1)."""
    faces = [face for face in library.faces(None)[1] if face.photo.relative.startswith("small/")]
    assert [face.usable for face in faces] == [False, False]
    return [face.face_id for face in sorted(faces, key=lambda face: face.photo.relative)]


# ---------------------------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class State:
    """Who is who in the index: each person's name and faces, the unsorted and the forgotten faces."""

    people: dict[int, tuple[str | None, frozenset[int]]]
    unsorted: frozenset[int]
    forgotten: frozenset[int]

    def faces(self, person: int) -> frozenset[int]:
        return self.people[person][1]


def outputs_agree(output: Path) -> State:
    """The index as a fresh ``Library.open`` reads it, after checking that people.json and the albums agree."""
    library = Library.open(output)
    assert not library.pending()
    outcome = library.outcome()
    people = {p.id: (p.name, frozenset(f.face_id for f in p.faces)) for p in outcome.people}
    unsorted = frozenset(f.face_id for f in library.faces(None)[1])
    forgotten = frozenset(f.face_id for f in library.faces(None, forgotten=True)[1])
    assert {f.face_id for f in outcome.unsorted} == unsorted | forgotten  # forgotten faces are no one's too

    document = json.loads((output / "people.json").read_text())
    assert {p["id"]: (p["name"], frozenset(f["face_id"] for f in p["faces"])) for p in document["people"]} == people
    assert {p["id"]: p["album"] for p in document["people"]} == {p.id: p.album for p in outcome.people}
    assert {f["face_id"] for f in document["unsorted"]} == {f.face_id for f in outcome.unsorted}

    wanted = {p.album: sorted({Path(photo.relative).name for photo in p.photos}) for p in outcome.people}
    if outcome.unsorted:
        wanted["unsorted"] = sorted({Path(face.photo.relative).name for face in outcome.unsorted})
    albums = {folder.name: sorted(os.listdir(folder)) for folder in (output / "people").iterdir() if folder.is_dir()}
    assert albums == wanted
    return State(people, unsorted, forgotten)


def album(output: Path, name: str) -> list[str] | None:
    """The entries of an album folder under people/, or None when there is no such folder."""
    folder = output / "people" / name
    return sorted(os.listdir(folder)) if folder.is_dir() else None


# ---------------------------------------------------------------------------------------------- scenarios


def test_overview_lists_everyone_named_first_with_thumbnails(start, named: Library) -> None:
    review = start(named)
    assert review.find("h1").text == "3 people"
    cards = review.find_all("li.card")
    assert [card.get_attribute("id") for card in cards] == ["person-2", "person-3", "person-1"]
    assert [card.find_element(By.CSS_SELECTOR, ".name").text for card in cards] == ["Bob", "Carol", "Unnamed"]
    assert cards[0].find_element(By.CSS_SELECTOR, ".counts").text == "4 photos · 4 faces"
    assert cards[2].find_element(By.CSS_SELECTOR, ".counts").text == "5 photos · 5 faces"
    wait(review.driver).until(lambda d: review.images_loaded())
    widths = review.driver.execute_script(
        "return Array.from(document.querySelectorAll('li.card img'), i => i.naturalWidth)"
    )
    assert len(widths) == 3 and all(width > 0 for width in widths)
    assert "up to date" in review.banner()

    link = review.find("#unsorted-count")
    assert link.text == "1 unsorted faces"
    review.submit(link)
    assert review.driver.current_url == review.base + "/unsorted"
    assert review.find("h1").text == "1 unsorted face"
    assert [face.get_attribute("id") for face in review.find_all("li.face")] == [f"face-{STRANGER}"]
    wait(review.driver).until(lambda d: review.images_loaded())
    photo = review.find(f"#face-{STRANGER} a.photo").get_attribute("href")
    status, kind = review.driver.execute_script(
        "return fetch(arguments[0]).then(r => [r.status, r.headers.get('content-type')])", photo
    )
    assert (status, kind) == (200, "image/png")


def test_name_a_person(start, library: Library) -> None:
    review = start(library)
    review.open("/people/1")
    assert review.find("#name-button").text == "Name"
    review.type("#name-input", "Alice")
    review.submit("#name-button")
    assert review.messages() == ["named p1 (unnamed) 'Alice' (5 faces, now confirmed)"]
    assert review.find("#person-name").text == "Alice p1"
    assert review.find("#name-button").text == "Rename"
    review.wait_up_to_date()

    assert review.server.session.status() == Status(busy=False, pending=False, settling=False, error=None)
    state = outputs_agree(review.output)  # written by the app's own deferred settle
    assert state.people[1] == ("Alice", frozenset(ALICE_FACES))
    assert album(review.output, "person_0001") is None
    assert album(review.output, "Alice") == sorted(ALICE_FACES.values())
    document = json.loads((review.output / "people.json").read_text())
    assert [(p["id"], p["name"], p["album"]) for p in document["people"] if p["id"] == 1] == [(1, "Alice", "Alice")]

    review.open("/")
    assert review.find("li.card .name").text == "Alice"  # named: first
    assert review.find("#person-1 .name").text == "Alice"
    review.open("/history")
    (change,) = review.find_all("ol.history > li")
    assert change.find_element(By.CSS_SELECTOR, "code").text == "review: name p1 Alice"
    assert "named p1 (unnamed) 'Alice'" in change.text
    assert [c.command for c in Library.open(review.output).history()] == ["review: name p1 Alice"]


def test_move_a_face_to_another_person(start, named: Library) -> None:
    review = start(named)
    review.open("/people/1")
    review.tick(3)
    assert review.find(".selected[data-for=face]").text == "1 selected"
    review.type("#move-target", "Bob")
    review.submit("#move-button")
    assert review.messages() == ["moved f3 from p1 (unnamed) to p2 'Bob'"]
    assert review.find_all("#face-3") == []
    assert review.find(".bar .counts").text == "4 photos · 4 faces"

    state = review.settled()
    assert state.faces(2) == frozenset(BOB_FACES) | {3}
    assert state.faces(1) == frozenset(ALICE_FACES) - {3}
    assert "alice0.png" in album(review.output, "Bob")
    assert "alice0.png" not in album(review.output, "person_0001")


def test_merge_people_from_the_overview(start, library: Library) -> None:
    review = start(library)
    review.tick(2, 3, name="person")
    assert review.find(".selected[data-for=person]").text == "2 selected"
    review.submit("#merge-selected")
    assert review.driver.current_url == review.base + "/people/2"  # the larger one is kept
    assert review.messages() == ["merged p3 (unnamed) (f1, f12) into p2 (unnamed)"]

    state = review.settled()
    assert set(state.people) == {1, 2}
    assert state.faces(2) == frozenset(BOB_FACES) | frozenset(CAROL_FACES)
    assert album(review.output, "person_0003") is None
    assert album(review.output, "person_0002") == sorted(set(BOB_FACES.values()) | set(CAROL_FACES.values()))
    review.open("/")
    assert [card.get_attribute("id") for card in review.find_all("li.card")] == ["person-2", "person-1"]


def test_undo_last_change_from_the_header(start, named: Library) -> None:
    review = start(named)
    before = review.settled()

    review.open("/people/1")
    review.type("#name-input", "Alice")
    review.submit("#name-button")
    assert review.settled() != before
    review.submit("#undo-last")
    assert review.driver.current_url == review.base + "/people/1"  # back where it was clicked
    (message,) = review.messages()
    assert message.startswith("undid #") and message.endswith("review: name p1 Alice")
    assert review.settled() == before
    assert album(review.output, "person_0001") == sorted(ALICE_FACES.values())

    review.open("/")
    review.tick(1, 3, name="person")
    review.submit("#merge-selected")
    merged = review.settled()
    assert set(merged.people) == {2, 3}  # Carol is named: she is kept and Alice joins her
    review.submit("#undo-last")
    assert review.settled() == before


def test_history_undo_and_undo_back_to_here(start, named: Library) -> None:
    review = start(named)
    before = review.settled()

    review.open("/people/1")
    review.type("#name-input", "Alice")
    review.submit("#name-button")
    named_alice = review.settled()
    review.tick(3)
    review.type("#move-target", "Carol")
    review.submit("#move-button")
    moved = review.settled()
    assert 3 in moved.faces(3)
    review.tick(10)
    review.submit("#forget-button")
    assert 10 in review.settled().forgotten

    third, second, first = Library.open(review.output).history()[:3]
    review.open("/history")
    buttons = review.find_all("ol.history button.undo")
    assert [b.text for b in buttons] == ["Undo"] + ["Undo back to here"] * 3  # and the fixture's naming
    review.submit(buttons[0])
    assert review.messages() == [f"undid #{third.id} {third.command}"]
    assert review.settled() == moved
    assert "undone" in review.find(f"#change-{third.id}").get_attribute("class")

    def confirmed(button: WebElement) -> None:  # "Undo back to here" asks first
        button.click()
        alert = wait(review.driver).until(lambda d: d.switch_to.alert)
        assert alert.text == f"Undo every change from the newest down to #{first.id}?"
        alert.accept()

    review.submit(review.find(f"#change-{first.id} button.undo"), click=confirmed)
    assert review.messages() == [f"undid #{second.id} {second.command}", f"undid #{first.id} {first.command}"]
    assert review.settled() == before != named_alice
    assert [b.text for b in review.find_all("ol.history button.undo")] == ["Undo"]  # the fixture's naming
    assert all("undone" in review.find(f"#change-{c.id}").get_attribute("class") for c in (first, second, third))


def test_split_reject_and_forget(start, library: Library) -> None:
    review = start(library)
    review.open("/people/1")
    review.tick(5, 6)
    review.type("#split-name", "Alice Twin")
    review.submit("#split-button")
    split, named = review.messages()
    assert split.startswith("split f5, f6 out of p1 (unnamed) into the new person p")
    new = int(split.rsplit("p", 1)[1])
    assert named == f"named p{new} (unnamed) 'Alice Twin' (2 faces, now confirmed)"
    state = review.settled()
    assert state.people[new] == ("Alice Twin", frozenset({5, 6}))
    assert state.faces(1) == frozenset(ALICE_FACES) - {5, 6}
    assert album(review.output, "Alice Twin") == ["alice2.png", "alice3.png"]
    assert album(review.output, "person_0001") == ["alice0.png", "alice1.png", "party.png"]

    review.open("/people/2")
    review.tick(11)
    review.submit("#reject-button")
    assert review.messages() == ["f11 is not p2 (unnamed): taken out of them"]
    state = review.settled()
    assert state.faces(2) == frozenset(BOB_FACES) - {11}
    assert 11 in state.unsorted
    assert "party.png" not in album(review.output, "person_0002")

    review.open("/people/1")
    review.tick(10)
    review.submit("#forget-button")
    assert review.messages() == ["forgot f10 (was in p1 (unnamed); now unsorted)"]
    state = review.settled()
    assert state.faces(1) == {3, 4}
    assert state.forgotten == {10}
    assert album(review.output, "person_0001") == ["alice0.png", "alice1.png"]
    review.open("/")
    assert review.find("a.pill.muted").text == "1 forgotten"
    review.open("/unsorted?forgotten=1")
    assert [face.get_attribute("id") for face in review.find_all("li.face")] == ["face-10"]


def test_unsorted_question_yes_and_no(start, near: Library) -> None:
    first, second = small_faces(near)
    review = start(near)
    review.open("/unsorted")
    questions = {q.get_attribute("id"): q.text for q in review.find_all(".question")}
    assert set(questions) == {f"question-{first}", f"question-{second}"}  # not the stranger: nobody is near
    assert questions[f"question-{first}"].startswith("Is this p1?")
    assert review.find(f"#face-{first} #question-{first}")  # asked under its own face

    review.submit(review.find(f"#question-{first} button.yes"))
    assert review.driver.current_url == review.base + "/unsorted"
    assert review.messages() == [f"moved f{first} from unsorted to p1 (unnamed)"]
    state = review.settled()
    assert first in state.faces(1) and first not in state.unsorted
    assert "alice_far0.png" in album(review.output, "person_0001")
    assert "alice_far0.png" not in album(review.output, "unsorted")

    review.submit(review.find(f"#question-{second} button.no"))
    assert review.messages() == [f"f{second} is not p1 (unnamed): it will never be grouped with them"]
    state = review.settled()
    assert second in state.unsorted and second not in state.faces(1)
    assert "alice_far1.png" in album(review.output, "unsorted")
    review.open("/unsorted")
    assert review.find_all(f"#face-{second}") != []
    assert review.find_all(".question") == []  # not asked again
    suggestions = review.driver.execute_script("return fetch('/people/1/suggestions').then(r => r.text())")
    assert f"question-{second}" not in suggestions  # nor among Alice's suggestions


def test_keyboard_answers_the_first_question(start, near: Library) -> None:
    nearest, other = (match.face_id for match in near.candidates(1))
    assert {nearest, other} == set(small_faces(near))
    review = start(near)
    review.open("/people/1")
    wait(review.driver).until(lambda d: len(review.find_all("#suggestions li.question")) == 2)
    assert review.find("#suggestions h2").text == "Is this p1?"
    assert review.find("#suggestions li.question").get_attribute("id") == f"question-{nearest}"

    review.find("#name-input").send_keys("y")  # typing in a field answers nothing (the history below says so)
    assert review.find("#name-input").get_attribute("value") == "y"
    review.find("main h1").click()  # focus leaves the field
    review.submit("body", click=lambda body: ActionChains(review.driver).send_keys("y").perform())
    assert review.driver.current_url == review.base + "/people/1"
    assert review.messages() == [f"moved f{nearest} from unsorted to p1 (unnamed)"]
    state = review.settled()
    assert nearest in state.faces(1)
    assert state.unsorted == {STRANGER, other}

    review.open("/unsorted")
    review.submit("body", click=lambda body: ActionChains(review.driver).send_keys("n").perform())
    assert review.messages() == [f"f{other} is not p1 (unnamed): it will never be grouped with them"]
    assert review.settled().unsorted == {STRANGER, other}
    assert [c.command for c in Library.open(review.output).history()] == [
        f"review: reject f{other} p1",
        f"review: move f{nearest} p1",
    ]


def test_read_only_while_a_scan_runs(start, named: Library) -> None:
    review = start(named)
    before, history = review.settled(), Library.open(named.output).history()

    def js_click(element: WebElement) -> None:  # a read-only page's buttons take no pointer clicks
        review.driver.execute_script("arguments[0].click()", element)

    with OutputLock(review.output):
        review.open("/people/1")
        assert "read-only" in review.banner()
        assert "busy" in review.find("#status").get_attribute("class")
        assert "readonly" in review.find("body").get_attribute("class")
        button = review.find("#name-button")
        assert review.driver.execute_script("return getComputedStyle(arguments[0]).pointerEvents", button) == "none"
        review.driver.execute_script("document.getElementById('name-input').value = 'Alice'")
        review.submit(button, click=js_click)
        (message,) = review.messages()
        assert message.startswith("Not changed: a scan (or another facecluster command) is using this library")
        review.submit("#undo-last", click=js_click)
        (message,) = review.messages()
        assert message.startswith("Not undone: a scan (or another facecluster command) is using this library")
        assert "read-only" in review.banner()
    wait(review.driver).until(lambda d: UP_TO_DATE in review.banner())  # review.js polls the status
    assert "readonly" not in review.find("body").get_attribute("class")
    assert review.settled() == before
    assert Library.open(review.output).history() == history

    # A page opened before the scan started: its buttons still click, and the app still refuses.
    review.open("/people/1")
    with OutputLock(review.output):
        review.type("#name-input", "Alice")
        review.submit("#name-button")
        assert review.messages()[0].startswith("Not changed: ")
    assert review.settled() == before
    assert Library.open(review.output).history() == history


def test_400_px_wide_pages_never_scroll_sideways(start, near: Library) -> None:
    review = start(near)
    review.driver.set_window_size(*NARROW)
    assert review.driver.execute_script("return window.innerWidth") == NARROW[0]
    review.open("/people/1")
    review.type("#name-input", "Alexandra Konstantinopoulou-Papadimitriou")
    review.submit("#name-button")
    wait(review.driver).until(lambda d: review.find_all("#suggestions li.question"))
    width, window = review.overflow()
    assert width <= window, f"the person page is {width} px wide in a {window} px window"
    for page in ("/", "/unsorted", "/same", "/history", "/people/2"):
        review.open(page)
        width, window = review.overflow()
        assert width <= window, f"{page} is {width} px wide in a {window} px window"


def press(review: Review, key: str) -> None:
    """Press a key on the page (nothing focused) and wait for the page the app answers with."""
    review.submit("body", click=lambda body: ActionChains(review.driver).send_keys(key).perform())


def test_same_person_by_keyboard_then_undo(start, fragments: Library) -> None:
    review = start(fragments)
    before = review.settled()
    review.submit("#nav-same")
    assert review.driver.current_url == review.base + "/same"
    assert review.find("#question").get_attribute("data-question") == "p1-p4"
    assert review.find("#side-first .name").text == "Unnamed" and review.find("#side-first .pid").text == "p1"
    assert review.find("#side-first .counts").text == "3 faces"
    assert review.find("#side-second .counts").text == "2 faces"
    wait(review.driver).until(lambda d: review.images_loaded())
    lead, small = review.find("#side-first .lead img"), review.find("#side-first .more img")
    assert lead.size["width"] > 2 * small.size["width"]
    assert review.find("#side-second .lead a.photo").get_attribute("href").endswith("/photo")

    press(review, "y")
    assert review.messages() == ["merged p4 (unnamed) (f3, f4) into p1 (unnamed)"]
    state = review.settled()  # the index as a fresh Library.open reads it, and the outputs agree
    assert 4 not in state.people and state.faces(1) == frozenset(ALICE_FACES)
    assert album(review.output, "person_0004") is None
    assert Library.open(review.output).history()[0].command == "review: same p1-p4 yes"

    assert review.find("#question").get_attribute("data-question") == "p2-f2"
    press(review, "n")
    assert review.messages() == [f"f{STRANGER} is not p2 (unnamed): it will never be grouped with them"]
    assert review.settled().unsorted == {STRANGER}
    assert "p2-f2" not in [q.id for q in Library.open(review.output).suggestions(limit=None)]
    assert Library.open(review.output).history()[0].command == "review: same p2-f2 no"

    shown = review.find("#question").get_attribute("data-question")
    press(review, "s")  # skip: nothing recorded, the next question (or none)
    assert review.driver.current_url == f"{review.base}/same?skip={shown}"
    assert review.find_all(f"[data-question='{shown}']") == []
    assert len(Library.open(review.output).history()) == 3  # the fixture's split and the two answers

    review.submit("#undo-last")
    review.submit("#undo-last")
    assert review.settled() == before
    assert [q.id for q in Library.open(review.output).suggestions(limit=2)] == ["p1-p4", "p2-f2"]


def test_same_person_on_a_person_page(start, fragments: Library) -> None:
    review = start(fragments)
    review.open("/people/4")
    wait(review.driver).until(lambda d: review.find_all("#same li.question"))
    assert review.find("#same h2").text == "Same person?"
    question = review.find("#same li.question")
    assert question.get_attribute("id") == "same-p1-p4"
    review.submit(question.find_element(By.CSS_SELECTOR, "button.yes"))
    assert review.driver.current_url == review.base + "/people/1"  # p4 joined p1: to the one who stays
    assert review.messages() == ["merged p4 (unnamed) (f3, f4) into p1 (unnamed)"]
    assert review.settled().faces(1) == frozenset(ALICE_FACES)
