"""A user names 20 LFW people from one photo each; how well do `find` and a re-scan recognise them?

    python -m benchmarks.people_lfw [--shared ../shared] [--lfw-output /tmp/facecluster-bench-lfw]
                                    [--work /tmp/facecluster-bench-people]

20 people with 10+ photos are chosen by a hash of the name. The second half of each one's
photos is held back; the library is a copy of every other LFW photo (the index of
benchmarks/scan_lfw.py is copied in first when present, so nothing is analysed twice). The
user names the person whose group holds the face of each one's first photo (one `name` each,
applied together). Then:

- find: every held-back photo, plus one photo each of 200 other people (by face id, itself left
  out), is looked up; a query counts for the nearest person only when within the limit.
- re-scan: the held-back photos are added and the library scanned again; each named album is
  checked for the held-back photos of its person and for photos of anyone else.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sqlite3
import time
from pathlib import Path

from benchmarks.labelled_lfw import DEFAULT_SHARED, lfw_images
from facecluster import FaceAnalyzer, Library, ScanOutcome
from facecluster.evaluation.labels import labelled_faces
from facecluster.pipeline.recognition import Gallery
from facecluster.storage.index import INDEX_FILE, FaceIndex
from facecluster.storage.people import People

NAMED, MIN_PHOTOS, DISTRACTORS = 20, 10, 200


def _hash(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def copy_tree(images: Path, photos: Path, relatives: list[str]) -> None:
    """Copies keep size and mtime, so the copied index knows them without analysing again."""
    for relative in relatives:
        target = photos / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            shutil.copy2(images / relative, target)


def person_of_face(outcome: ScanOutcome) -> dict[int, int]:
    return {face.face_id: person.id for person in outcome.people for face in person.faces}


def ratio(part: int, whole: int) -> str:
    return f"{part / whole:.3f} ({part}/{whole})" if whole else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    parser.add_argument("--lfw-output", type=Path, default=Path("/tmp/facecluster-bench-lfw"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/facecluster-bench-people"))
    args = parser.parse_args()
    images = lfw_images(args.shared)
    albums = {folder.name: sorted(p.name for p in folder.glob("*.jpg")) for folder in images.iterdir()}
    chosen = sorted((n for n, files in albums.items() if len(files) >= MIN_PHOTOS), key=_hash)[:NAMED]
    held = {f"{n}/{f}": n for n in chosen for f in albums[n][len(albums[n]) // 2 :]}
    library = [f"{n}/{f}" for n, files in albums.items() for f in files if f"{n}/{f}" not in held]
    shutil.rmtree(args.work, ignore_errors=True)
    photos, out = args.work / "photos", args.work / "out"
    copy_tree(images, photos, library)
    out.mkdir(parents=True)
    if (args.lfw_output / INDEX_FILE).is_file():
        with sqlite3.connect(args.lfw_output / INDEX_FILE) as source, sqlite3.connect(out / INDEX_FILE) as target:
            source.backup(target)
    lfw = Library.create(photos, out)
    started = time.perf_counter()
    outcome = lfw.scan()
    seconds = time.perf_counter() - started
    print(f"library: {len(library)} photos, {len(outcome.people)} people grouped, {seconds:.0f} s")

    named_photo = {f"{n}/{albums[n][0]}": n for n in chosen}
    scored = labelled_faces(outcome, named_photo).identity
    owner = person_of_face(outcome)
    targets: dict[str, int] = {}
    for face, name in sorted(scored.items(), key=lambda item: item[1]):
        if face in owner and owner[face] not in targets.values():
            targets[name] = owner[face]
    print(f"named: {len(targets)} of {NAMED} (the others' first photo is unsorted or in an already named group)")
    with lfw.corrections() as edit:
        for name, person in targets.items():
            edit.name(person, name)
    name_of = {person: name for name, person in targets.items()}

    index = FaceIndex(out, readonly=True)
    gallery = Gallery.load(index)
    index.close()
    analyzer = FaceAnalyzer(device="auto")
    hits = wrong = 0
    for relative, name in sorted(held.items()):
        faces = analyzer.analyze(images / relative)
        if not faces:
            continue
        centre = min(faces, key=lambda f: abs((f.box[0] + f.box[2]) / 2 - 125) + abs((f.box[1] + f.box[3]) / 2 - 125))
        best = next(iter(gallery.rank(centre.embedding)), None)
        if best and best.accepted and best.person_id in name_of:
            hits += name_of[best.person_id] == name
            wrong += name_of[best.person_id] != name
    others = sorted((n for n in albums if n not in chosen), key=_hash)[:DISTRACTORS]
    others_faces = labelled_faces(outcome, {f"{n}/{albums[n][0]}": n for n in others}).identity
    false_alarms = 0
    for face in others_faces:
        best = next(iter(gallery.rank(gallery.embeddings[face], own_face=face)), None)
        false_alarms += bool(best and best.accepted and best.person_id in name_of)
    print(f"\nfind, {len(held)} held-back photos of the named people and {len(others_faces)} photos of others:")
    print(f"  recall    {ratio(hits, len(held))}")
    precision = ratio(hits, hits + wrong + false_alarms)
    print(f"  precision {precision}  (wrong named person {wrong}, others {false_alarms})")

    copy_tree(images, photos, sorted(held))
    started = time.perf_counter()
    outcome = lfw.scan()
    seconds = time.perf_counter() - started
    kept = {p.id: p for p in outcome.people if p.id in name_of}
    names_kept = sum(kept[p].name == name_of[p] for p in kept)
    in_album = {(person_id, photo.relative) for person_id, p in kept.items() for photo in p.photos}
    new_right = sum((targets[name], relative) in in_album for relative, name in held.items() if name in targets)
    new_total = sum(name in targets for name in held.values())
    album_photos = [(pid, photo.relative) for pid, p in kept.items() for photo in p.photos]
    album_right = sum(relative.split("/")[0] == name_of[pid] for pid, relative in album_photos)
    new_in_albums = [(pid, rel) for pid, rel in album_photos if rel in held]
    new_in_right = sum(held[rel] == name_of[pid] for pid, rel in new_in_albums)
    print(f"\nre-scan with the {len(held)} held-back photos added ({seconds:.0f} s):")
    print(f"  named people kept with id and name: {names_kept} of {len(targets)}")
    print(f"  recall: held-back photos in their person's album {ratio(new_right, new_total)}")
    print(f"  precision: new photos in named albums that belong there {ratio(new_in_right, len(new_in_albums))}")
    print(f"  precision: all photos in named albums that belong there {ratio(album_right, len(album_photos))}")
    index = FaceIndex(out, readonly=True)
    print(f"  named people in the index: {sum(n is not None for n in People(index).names().values())}")
    index.close()


if __name__ == "__main__":
    main()
