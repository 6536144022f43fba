"""How fast a user finishes a grouping by answering "same person?" questions, on LFW photos.

    python -m benchmarks.suggest_lfw [--work /tmp/facecluster-bench-suggest] [--shared ../shared]
                                     [--sets clean,hard] [--rankers gain,closest] [--answers 300]
                                     [--via library|cli] [--batch 1] [--keep-bystanders] [--speed]

Builds two labelled photo sets in WORK (once; later runs reuse them, and their scans are
incremental): "clean", the LFW people with at least 6 photos, their first 40 photos each (about
311 people, 4,300 photos; links to the shared files), and "hard", the same photos each perturbed
with benchmarks/perturb_lfw.py's "mixed" (seeded by the file name), and scans each into
WORK/SET/output. Identity = the LFW folder name, on each photo's scored face
(facecluster.evaluation.labels.labelled_faces); bystanders are unlabelled (``face_identities``).

Then, for each set and ranker, a simulated user starts from a fresh copy of the scanned output
folder, first forgets the bystanders (`forget`: LFW names one person per photo, so nobody knows
who the others are; a user of a real library knows everyone; --keep-bystanders keeps them and
answers "no" about them), and answers the top question ANSWERS times, from the ground truth: a
side's identity is the majority identity of its labelled faces (none for a person without
labelled faces or an unlabelled unsorted face), and the answer is "yes" iff both sides have the
same identity. Each answer is one correction (committed and regrouped). Rankers: "gain", the
suggestion engine (``Library.suggestions(order="gain")``), and "closest", the baseline that asks
about the pair whose closest faces are nearest; and on request two bounds rather than rankers,
which know the truth and never meet a "no": "best" makes the merge of two fragments of one
identity that raises BCubed recall most (the best possible order of merges), "best-asked" answers
the engine's question (of its first 1,000) whose "yes" raises it most. With --via cli the user
only runs `facecluster suggest --json --limit N` and the question's own "yes" or "no" command line
(subprocesses; the gain ranker only, the CLI has no other); the library is read for the ground truth only. With
--batch N the user answers all N questions of each list before asking again (a list asks about
each person and face once, so every answer's command must still work: failures are listed).

Prints, after 0, 25, 50, 100, 200, 300 and 600 answers (those up to ANSWERS, and ANSWERS): BCubed
F1, precision and recall and pairwise F1 on the labelled faces (each face's group is its person;
unsorted faces are alone), the number of people and the share of "yes" answers so far; then per
run the median and maximum time of a suggest call (suggestions(limit=BATCH), or the suggest
command) and of an answer, the run's wall time, the questions that came back after being
answered (skipped, never answered twice) and the answers whose command failed. Each run's
answers (id, chance, the sides' identities, the answer) are kept in
WORK/runs/SET-RANKER-VIA[-batchN]/answers.jsonl, beside its library.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from benchmarks.labelled_lfw import DEFAULT_SHARED, lfw_images
from benchmarks.perturb_lfw import perturb
from facecluster import Library, PeopleError, QuestionSide
from facecluster.evaluation.clustering import ClusteringScores, score_clustering
from facecluster.evaluation.labels import folder_labels, labelled_faces
from facecluster.storage.index import FaceIndex
from facecluster.storage.people import People

MIN_PHOTOS = 6
MAX_PHOTOS = 40
SEED = 0
CHECKPOINTS = (0, 25, 50, 100, 200, 300, 600)
SETS = ("clean", "hard")
RANKERS = ("gain", "closest")
BEST, BEST_ASKED = "best", "best-asked"
"""Bounds that know the answers: the best possible order of merges, and of the engine's questions."""
ASKED_POOL = 1000
"""How many of the engine's questions best-asked chooses from."""


@dataclass(frozen=True)
class Asked:
    """A question as the simulated user sees it: its id, per side (person id or None, first face), its chance."""

    id: str
    sides: tuple[tuple[int | None, int], tuple[int | None, int]]
    probability: float


@dataclass(frozen=True)
class Checkpoint:
    answers: int
    scores: ClusteringScores
    people: int
    yes_share: float


@dataclass
class Run:
    """One simulated user's session on one set with one ranker."""

    name: str
    ranker: str
    checkpoints: list[Checkpoint] = field(default_factory=list)
    asking_ms: list[float] = field(default_factory=list)
    answering_ms: list[float] = field(default_factory=list)
    repeats: list[str] = field(default_factory=list)
    """Ids of questions asked again after being answered."""
    failed: list[str] = field(default_factory=list)
    """Ids of questions whose answer command failed (a stale question in a list)."""
    exhausted: bool = False
    """Whether the questions ran out before the last checkpoint."""
    seconds: float = 0.0


def chosen_photos(images: Path) -> list[Path]:
    """The first MAX_PHOTOS photos (by name) of each LFW person with at least MIN_PHOTOS."""
    chosen: list[Path] = []
    for folder in sorted(p for p in images.iterdir() if p.is_dir()):
        photos = sorted(folder.glob("*.jpg"))
        if len(photos) >= MIN_PHOTOS:
            chosen += photos[:MAX_PHOTOS]
    return chosen


def build_photos(name: str, photos: list[Path], folder: Path) -> None:
    """Write the set's photo folder (NAME/NAME_NNNN.jpg): links to LFW (clean) or perturbed copies (hard)."""
    for source in photos:
        target = folder / source.parent.name / source.name
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if name == "clean":
            target.symlink_to(source)
            continue
        rng = random.Random(f"{SEED}/mixed/{source.name}")
        with Image.open(source) as image:
            perturb(image.convert("RGB"), "mixed", rng).save(target, quality=95)


def build_set(name: str, images: Path, work: Path) -> Path:
    """The set's scanned output folder (photos written and scanned where missing; an incremental scan)."""
    photos, output = work / name / "photos", work / name / "output"
    build_photos(name, chosen_photos(images), photos)
    started = time.perf_counter()
    outcome = Library.create(photos, output).scan()
    print(
        f"{name}: {outcome.stats.photos} photos, {outcome.stats.people} people in {output}"
        f" (scan {time.perf_counter() - started:.0f} s)",
        flush=True,
    )
    return output


def face_identities(output: Path) -> dict[int, str]:
    """Face id -> LFW identity of each photo's scored face in a scanned set (bystanders left out)."""
    library = Library.open(output)
    index = FaceIndex(output, readonly=True)
    try:
        photos = index.photos()
    finally:
        index.close()
    return labelled_faces(library.outcome(), folder_labels(photos)).identity


def memberships(output: Path) -> dict[int, int]:
    """Face id -> person id of every grouped face, as the index holds them now."""
    index = FaceIndex(output, readonly=True)
    try:
        return {face: person for face, (person, _) in People(index).members().items()}
    finally:
        index.close()


def side_identity(side: tuple[int | None, int], members: dict[int, int], truth: dict[int, str]) -> str | None:
    """A person's majority identity among their labelled faces, or an unsorted face's own; None when unknown."""
    person, face = side
    if person is None:
        return truth.get(face)
    labels = Counter(truth[f] for f in sorted(members) if members[f] == person and f in truth)
    return labels.most_common(1)[0][0] if labels else None


def checkpoint(answers: int, yes: int, members: dict[int, int], truth: dict[int, str]) -> Checkpoint:
    """Scores of the labelled faces' grouping now (unsorted faces alone)."""
    faces = sorted(truth)
    scores = score_clustering([truth[f] for f in faces], [members.get(f, -1) for f in faces])
    return Checkpoint(answers, scores, len(set(members.values())), yes / answers if answers else 0.0)


class LibraryUser:
    """Asks and answers through the typed API."""

    def __init__(self, output: Path, ranker: str) -> None:
        self.library = Library.open(output)
        self.ranker = ranker

    def ask(self, limit: int) -> list[Asked]:
        questions = self.library.suggestions(limit, order=self.ranker)
        return [
            Asked(q.id, ((q.first.person, q.first.faces[0]), (q.second.person, q.second.faces[0])), q.probability)
            for q in questions
        ]

    def answer(self, question: Asked, same: bool) -> bool:
        try:
            with self.library.corrections(f"suggest: {question.id} {'yes' if same else 'no'}") as edit:
                edit.answer(question.id, same)
        except PeopleError:
            return False
        return True


class CliUser:
    """Asks with `facecluster suggest --json` and answers with the question's own command line."""

    def __init__(self, output: Path) -> None:
        self.output = output
        self.commands: dict[str, dict[str, list[str]]] = {}

    def ask(self, limit: int) -> list[Asked]:
        command = [sys.executable, "-m", "facecluster", "suggest", "-o", str(self.output), "--json"]
        printed = subprocess.run([*command, "--limit", str(limit)], capture_output=True, text=True, check=True)
        asked = []
        for document in json.loads(printed.stdout):
            self.commands[document["id"]] = {"yes": document["yes"], "no": document["no"]}
            sides = tuple(_cli_side(document[key]) for key in ("first", "second"))
            asked.append(Asked(document["id"], (sides[0], sides[1]), document["probability"]))
        return asked

    def answer(self, question: Asked, same: bool) -> bool:
        return subprocess.run(self.commands[question.id]["yes" if same else "no"], capture_output=True).returncode == 0


class BestUser:
    """Knows the truth and makes the merge that helps most (2ab / n for two fragments of a and b of
    an identity's n faces: the BCubed recall it adds), never asking a "no": the best possible order."""

    def __init__(self, output: Path, truth: dict[int, str]) -> None:
        self.library, self.output, self.truth = Library.open(output), output, truth
        self.totals = Counter(truth.values())
        self.created = 0

    def ask(self, limit: int) -> list[Asked]:
        members = memberships(self.output)
        labels = person_labels(members, self.truth)
        fragments: dict[str, list[tuple[int, tuple[int | None, int]]]] = {}
        for person, counts in labels.items():
            identity, count = counts.most_common(1)[0]
            first = min(f for f, p in members.items() if p == person)
            fragments.setdefault(identity, []).append((count, (person, first)))
        for face, identity in self.truth.items():
            if face not in members:
                fragments.setdefault(identity, []).append((1, (None, face)))
        merges = []
        for identity, parts in fragments.items():
            if len(parts) > 1:
                (a, first), (b, second) = sorted(parts, key=lambda part: part[0], reverse=True)[:2]
                merges.append((2 * a * b / self.totals[identity], first, second))
        merges.sort(key=lambda merge: merge[0], reverse=True)
        return [
            Asked(f"best-{_key(first)}-{_key(second)}", (first, second), 1.0) for _, first, second in merges[:limit]
        ]

    def answer(self, question: Asked, same: bool) -> bool:
        (person, face), (other, other_face) = question.sides
        with self.library.corrections(f"best: {question.id}") as edit:
            if person is not None and other is not None:
                edit.merge(f"p{person}", f"p{other}")
            elif person is not None or other is not None:
                edit.move(
                    f"f{other_face if person is not None else face}", f"p{person if person is not None else other}"
                )
            else:
                self.created += 1
                target = edit.move(f"f{face}", f"together {self.created}", create=True)
                edit.move(f"f{other_face}", f"p{target}")
        return True


class BestAskedUser(LibraryUser):
    """Knows the truth and answers, of the engine's questions, only the "yes" that adds most BCubed
    recall (2ab / n, as BestUser): how far the ranking alone is from the best of what is asked."""

    def __init__(self, output: Path, truth: dict[int, str]) -> None:
        super().__init__(output, "gain")
        self.output, self.truth, self.totals = output, truth, Counter(truth.values())

    def ask(self, limit: int) -> list[Asked]:
        labels = person_labels(memberships(self.output), self.truth)

        def counts(side: QuestionSide) -> Counter[str]:
            if side.person is not None:
                return labels.get(side.person, Counter())
            return Counter([self.truth[side.faces[0]]]) if side.faces[0] in self.truth else Counter()

        merges = []
        for question in self.library.suggestions(ASKED_POOL, order="gain", disjoint=False):
            first, second = counts(question.first), counts(question.second)
            identity = first.most_common(1)[0][0] if first else None
            if identity is not None and second and second.most_common(1)[0][0] == identity:
                merges.append((2 * first[identity] * second[identity] / self.totals[identity], question))
        merges.sort(key=lambda merge: merge[0], reverse=True)
        return [
            Asked(q.id, ((q.first.person, q.first.faces[0]), (q.second.person, q.second.faces[0])), q.probability)
            for _, q in merges[:limit]
        ]


def person_labels(members: dict[int, int], truth: dict[int, str]) -> dict[int, Counter[str]]:
    """Person id -> how many of their faces each identity has (labelled faces only)."""
    labels: dict[int, Counter[str]] = {}
    for face, person in members.items():
        if face in truth:
            labels.setdefault(person, Counter())[truth[face]] += 1
    return labels


def _key(side: tuple[int | None, int]) -> str:
    """'p7' for a person, 'f12' for an unsorted face."""
    person, face = side
    return f"f{face}" if person is None else f"p{person}"


def _cli_side(side: dict) -> tuple[int | None, int]:
    """(person id or None, first face) of a side of `suggest --json` ('p7', 'f12')."""
    person = side["person"]
    return (None if person is None else int(person[1:]), int(side["faces"][0][1:]))


def forget_bystanders(output: Path, truth: dict[int, str]) -> int:
    """Forget every face of ``output`` that has no identity; returns how many."""
    library = Library.open(output)
    faces, _ = library.askable()
    strangers = [f"f{face}" for face in faces.ids.tolist() if face not in truth]
    with library.corrections("benchmark: forget the bystanders") as edit:
        edit.forget(strangers)
    return len(strangers)


@dataclass(frozen=True)
class Session:
    """How the simulated user works."""

    via: str
    """"library" or "cli"."""
    batch: int = 1
    """Questions answered from each list (1: ask again after every answer)."""
    keep_bystanders: bool = False


def simulate(name: str, output: Path, ranker: str, session: Session, answers: int, work: Path) -> Run:
    """Answer ``answers`` top questions from the ground truth on a fresh copy of ``output``."""
    via, batch = session.via, session.batch
    truth = face_identities(output)
    copy = work / "runs" / (f"{name}-{ranker}-{via}" + (f"-batch{batch}" if batch > 1 else ""))
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(output, copy, symlinks=True)
    if not session.keep_bystanders:
        print(f"{name}: forgot {forget_bystanders(copy, truth)} bystander faces", flush=True)
    run = Run(name, ranker)
    started = time.perf_counter()
    bounds = {BEST: BestUser, BEST_ASKED: BestAskedUser}
    if ranker in bounds:
        user = bounds[ranker](copy, truth)
    else:
        user = LibraryUser(copy, ranker) if via == "library" else CliUser(copy)
    marks = sorted({c for c in CHECKPOINTS if c <= answers} | {answers})
    members = memberships(copy)
    run.checkpoints.append(checkpoint(0, 0, members, truth))
    answered: set[str] = set()
    yes = 0
    records: list[dict[str, object]] = []
    while len(answered) < marks[-1]:
        limit, tick = batch + len(run.repeats), time.perf_counter()
        questions = user.ask(limit)
        run.asking_ms.append((time.perf_counter() - tick) * 1000)
        run.repeats += [q.id for q in questions if q.id in answered and q.id not in run.repeats]
        fresh = [q for q in questions if q.id not in answered][:batch]
        if not fresh:
            if len(questions) < limit:
                run.exhausted = True
                break
            continue  # only answered questions came back: ask for one more
        for question in fresh[: marks[-1] - len(answered)]:
            first, second = (side_identity(side, members, truth) for side in question.sides)
            same = first is not None and first == second
            tick = time.perf_counter()
            if not user.answer(question, same):
                run.failed.append(question.id)
            run.answering_ms.append((time.perf_counter() - tick) * 1000)
            answered.add(question.id)
            yes += same
            records.append(
                {"id": question.id, "probability": question.probability, "sides": [first, second], "same": same}
            )
            members = memberships(copy)
            if len(answered) in marks:
                run.checkpoints.append(checkpoint(len(answered), yes, members, truth))
    if run.exhausted and run.checkpoints[-1].answers != len(answered):
        run.checkpoints.append(checkpoint(len(answered), yes, members, truth))
    run.seconds = time.perf_counter() - started
    (copy / "answers.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return run


def print_table(runs: list[Run]) -> None:
    print(f"\n{'set':<6} {'ranker':<10} {'answers':>7} | B3 F1 | B3 P  | B3 R  | pair F1 | people | yes")
    for run in runs:
        for point in run.checkpoints:
            s = point.scores
            print(
                f"{run.name:<6} {run.ranker:<10} {point.answers:>7} | {s.bcubed_f1:.3f} | {s.bcubed_precision:.3f} |"
                f" {s.bcubed_recall:.3f} | {s.pairwise_f1:7.3f} | {point.people:6d} | {point.yes_share:.2f}"
            )
    print()
    for run in runs:
        if not run.asking_ms:
            continue
        ask, answer = run.asking_ms, run.answering_ms or [0.0]
        print(
            f"{run.name} {run.ranker}: suggest call median {statistics.median(ask):.0f} ms, max {max(ask):.0f} ms;"
            f" answer median {statistics.median(answer):.0f} ms, max {max(answer):.0f} ms; wall {run.seconds:.0f} s"
            + ("; questions ran out" if run.exhausted else "")
            + (f"; asked again after their answer: {', '.join(run.repeats)}" if run.repeats else "")
            + (f"; answers that failed: {', '.join(run.failed)}" if run.failed else "")
        )


def median_seconds(command: list[str], runs: int = 5) -> float:
    """Median wall time of ``command`` as a new process."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def time_suggest(shared: Path) -> None:
    """`facecluster suggest --json` on the whole of LFW against `facecluster people --json`."""
    output = Path("/tmp/facecluster-bench-lfw")
    Library.create(lfw_images(shared), output).scan()
    faces, _ = Library.open(output).askable()
    tool = [sys.executable, "-m", "facecluster"]
    suggest = median_seconds([*tool, "suggest", "-o", str(output), "--json"])
    people = median_seconds([*tool, "people", "-o", str(output), "--json"])
    print(f"\nsuggest --json on {len(faces.ids):,} faces ({len(set(faces.owners.tolist()) - {-1}):,} people):")
    print(f"  suggest --json {suggest:.2f} s, people --json {people:.2f} s (baseline): {suggest / people:.2f} x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/facecluster-bench-suggest"))
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--rankers", default=",".join(RANKERS))
    parser.add_argument("--answers", type=int, default=300)
    parser.add_argument("--via", choices=("library", "cli"), default="library")
    parser.add_argument("--batch", type=int, default=1, help="answer N questions of each list before asking again")
    parser.add_argument("--keep-bystanders", action="store_true", help="ask about unlabelled faces too (answer: no)")
    parser.add_argument("--speed", action="store_true", help="also time `suggest --json` on the whole of LFW")
    args = parser.parse_args()
    sets, rankers = args.sets.split(","), args.rankers.split(",")
    known = (*RANKERS, BEST, BEST_ASKED)
    if not set(sets) <= set(SETS) or not set(rankers) <= set(known):
        raise SystemExit(f"--sets takes {','.join(SETS)}; --rankers takes {','.join(known)}")
    if args.via == "cli" and rankers != ["gain"]:
        raise SystemExit("--via cli asks the CLI's own questions: use --rankers gain")
    images = lfw_images(args.shared)
    runs = []
    for name in sets:
        output = build_set(name, images, args.work)
        for ranker in rankers:
            session = Session(args.via, args.batch, args.keep_bystanders)
            run = simulate(name, output, ranker, session, args.answers, args.work)
            print(
                f"{name} {ranker} via {args.via}: {len(run.asking_ms)} suggest calls,"
                f" {len(run.answering_ms)} answers in {run.seconds:.0f} s",
                flush=True,
            )
            runs.append(run)
    print_table(runs)
    if args.speed:
        time_suggest(args.shared)


if __name__ == "__main__":
    main()
