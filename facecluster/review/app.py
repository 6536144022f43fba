"""The review app's pages and actions (Flask). Each action is a few lines over the library's corrections.

Pages: the overview (everyone, named first, then by size), a person (their faces, paged, with
actions on the selected ones, "is this them?" suggestions and their "same person?" questions), the
unsorted faces (each with its nearest person to accept or reject), "same person?" (the library's
best question, one at a time: yes, no or skip), and the history (undo). Images are served by face id only:
a face's thumbnail, or the photo that holds it, never a path taken from the request.
"""

from __future__ import annotations

import mimetypes
import re
import shlex
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from flask import Flask, Response, abort, flash, jsonify, redirect, render_template, request, url_for
from werkzeug.wrappers.response import Response as BaseResponse

from facecluster.errors import FaceclusterError, OutputBusy, PeopleError
from facecluster.outputs.files import display_text
from facecluster.review.security import HEADERS, SAFE_METHODS, Guard
from facecluster.review.session import ReviewSession
from facecluster.types import Overview, Question

PEOPLE_PER_PAGE = 240
FACES_PER_PAGE = 300
SUGGESTIONS = 12
QUESTIONS = 20
""""Same person?" questions read at a time, twice as many at first (ranking them all costs the same as
ranking a few): skipping through them reads them once."""
PERSON_QUESTIONS = 5
"""A person's "same person?" questions shown on their page."""
MOST_SKIPPED = 200
"""Skipped questions remembered in the address of the "same person?" page."""
QUESTION_ID = re.compile(r"p([0-9]{1,18})-([pf])([0-9]{1,18})")
"""A question's id: 'p3-p7' (two people) or 'p3-f12' (a person and an unsorted face)."""
BROWSER_IMAGES = frozenset({".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp"})
"""Photos served as they are; others (HEIC, TIFF, ...) are converted to JPEG first."""
BUSY = "Not changed: a scan (or another facecluster command) is using this library; try again when it ends."


def create_app(session: ReviewSession, guard: Guard) -> Flask:
    """The Flask app reviewing ``session``'s library, answering only requests ``guard`` lets through."""
    app = Flask(__name__)
    app.secret_key = guard.token  # signs the flash messages' cookie
    app.config.update(SESSION_COOKIE_SAMESITE="Strict", SESSION_COOKIE_HTTPONLY=True, MAX_CONTENT_LENGTH=1 << 20)
    library = session.library
    app.add_template_filter(display_text, "shown")  # file names that are not UTF-8: U+FFFD, as in the report
    app.add_template_filter(_chance, "chance")
    app.add_template_filter(lambda path: _under(path, library.photos), "photo_name")
    app.config["SESSION_COOKIE_NAME"] = f"{guard.cookie}-messages"  # cookies ignore ports: one per app
    cached: dict[str, tuple[tuple[int, ...], Overview]] = {}

    def everyone() -> Overview:
        """The library's overview, read again only when the index changed (pages need it several times)."""
        version = library.version()
        if "overview" not in cached or cached["overview"][0] != version:
            cached["overview"] = (version, library.overview())
        return cached["overview"][1]

    @app.before_request
    def guarded() -> BaseResponse | tuple[str, int] | None:
        if not guard.host_ok(request.headers.get("Host")):
            return "Unknown host: open the address 'facecluster review' printed.", 400
        given = request.args.get("token")
        if given is not None:
            if not guard.token_ok(given):
                return "Wrong token: open the address 'facecluster review' printed.", 403
            page = redirect(_local(request.path) if request.method in SAFE_METHODS else url_for("overview"), 303)
            page.set_cookie(guard.cookie, guard.token, httponly=True, samesite="Strict", path="/")
            return page
        if not guard.token_ok(request.cookies.get(guard.cookie)):
            return "Not authorised: open the address 'facecluster review' printed (it carries a token).", 403
        if request.method not in SAFE_METHODS:
            if not guard.origin_ok(request.headers.get("Origin")):
                return "Refused: a change must come from the review app's own pages.", 403
            if not guard.form_ok(request.form.get("form_token")):
                return "Refused: the form is not from this run of the review app; reload the page.", 403
        return None

    @app.after_request
    def hardened(response: Response) -> Response:
        response.headers.update(HEADERS)
        if response.mimetype == "text/html" or response.mimetype == "application/json":
            response.headers["Cache-Control"] = "no-store"
        return response

    asked: dict[int | None, tuple[tuple[int, ...], int, list[Question]]] = {}
    asking, ranking = threading.Lock(), threading.Lock()

    def known(limit: int, person: int | None) -> tuple[tuple[int, ...], list[Question] | None]:
        """(the index's version, the questions already read for it, or None)."""
        version = library.version()  # before reading: a change meanwhile makes the next call read again
        with asking:
            entry = asked.get(person)
        if entry and entry[0] == version and (entry[1] >= limit or len(entry[2]) < entry[1]):
            return version, entry[2][:limit]
        return version, None

    def questions(limit: int, person: int | None = None) -> list[Question]:
        """The best ``limit`` "same person?" questions (about ``person``), ranked again only when the index
        changed: skipping, or reloading a person's page, costs nothing. One ranking at a time (seconds for a
        large library, all CPU): pages asking together wait for it rather than each ranking again."""
        version, found = known(limit, person)
        if found is not None:
            return found
        with ranking:
            version, found = known(limit, person)
            if found is not None:
                return found
            found = library.suggestions(limit=limit, person=person, disjoint=False)
        with asking:
            if any(entry[0] != version for entry in asked.values()):
                asked.clear()
            asked[person] = (version, limit, found)
        return found

    identity = library.identity()

    @app.context_processor
    def shared() -> dict[str, object]:
        return {"status": session.status(), "form_token": guard.form_token, "library_id": identity}

    @app.get("/")
    def overview() -> str:
        listing = everyone()
        wanted = request.args.get("q", "").strip().casefold()
        people = [p for p in listing.people if not wanted or wanted in p.label.casefold()]
        page, pages, shown = _page(people, PEOPLE_PER_PAGE)
        return render_template(
            "overview.html", overview=listing, people=shown, page=page, pages=pages, query=wanted, total=len(people)
        )

    @app.get("/people/<int:person>")
    def person_page(person: int) -> str:
        summary = _summary(person)
        return render_template("person.html", person=summary, names=_names(), **_faces_page(person))

    @app.get("/people/<int:person>/suggestions")
    def person_suggestions(person: int) -> str:
        summary = _summary(person, page=False)
        return render_template("suggestions.html", person=summary, matches=library.candidates(person, SUGGESTIONS))

    @app.get("/people/<int:person>/same")
    def person_questions(person: int) -> str:
        summary = _summary(person, page=False)
        offered = {m.face_id for m in library.candidates(person, SUGGESTIONS)}  # asked above, as "is this them?"
        asked_here = questions(PERSON_QUESTIONS + len(offered), person)
        shown = [q for q in asked_here if q.kind == "people" or q.second.faces[0] not in offered]
        return render_template("person_same.html", person=summary, questions=shown[:PERSON_QUESTIONS])

    @app.get("/same")
    def same() -> str | BaseResponse:
        skipped = _question_ids(request.args.get("skip", ""))[:MOST_SKIPPED]
        about = request.args.get("person")
        person = library.summary(_number(about)) if about else None
        if about and person is None:
            flash(f"There is no p{about} now (merged into someone, or left without faces; see History).", "error")
            return redirect(url_for("same"), 303)
        limit = QUESTIONS * (len(skipped) // QUESTIONS + 2)  # the same until QUESTIONS are skipped: read once
        fetched = questions(limit, person.id if person else None)
        waiting = [q for q in fetched if q.id not in skipped]
        more = len(fetched) == limit  # there may be more than were read
        return render_template(
            "same.html",
            question=waiting[0] if waiting else None,
            waiting=len(waiting),
            more=more,
            skipped=skipped,
            about=person,
        )

    @app.get("/unsorted")
    def unsorted() -> str:
        forgotten = request.args.get("forgotten") == "1"
        shown = _faces_page(None, forgotten)
        nearest = {} if forgotten else library.nearest_people([face.face_id for face in shown["faces"]])
        people = {p.id: p for p in everyone().people}
        return render_template(
            "unsorted.html", forgotten=forgotten, nearest=nearest, people=people, names=_names(), **shown
        )

    @app.get("/history")
    def history() -> str:
        return render_template("history.html", changes=library.history(limit=500))

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status=204)

    @app.errorhandler(OverflowError)
    def too_large(_: OverflowError) -> tuple[str, int]:
        return "No such face or person.", 404

    @app.get("/status")
    def status() -> Response:
        now = session.status()
        return jsonify(busy=now.busy, pending=now.pending, settling=now.settling, error=now.error)

    @app.get("/faces/<int:face>.jpg")
    def thumbnail(face: int) -> Response:
        data = library.thumbnail(face)
        if not data:
            abort(404)
        response = Response(data, mimetype="image/jpeg")
        if request.args.get("v") == identity:  # a face's thumbnail never changes within one index
            response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
        else:
            response.headers["Cache-Control"] = "private, no-cache"
        return response

    @app.get("/faces/<int:face>/photo")
    def photo(face: int) -> Response:
        path = library.photo_of(face)
        if path is None:
            abort(404)
        try:
            if path.suffix.lower() in BROWSER_IMAGES:
                data, kind = path.read_bytes(), mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            else:
                data, kind = library.photo_jpeg(path), "image/jpeg"
        except (OSError, FaceclusterError):
            abort(404)
        response = Response(data, mimetype=kind)
        response.headers["Cache-Control"] = "private, no-cache"
        return response

    def act(command: str, apply: Callable[..., object], back: str, stale: str | None = None) -> BaseResponse:
        """Run one change, then go ``back`` with what it did (or why not) as a message; a PeopleError is
        reported as ``stale`` when given (the page showed something that has changed since)."""
        try:
            with session.change(f"review: {command}") as edit:
                apply(edit)
            for line in edit.effects:
                flash(line, "done")
        except OutputBusy:
            flash(BUSY, "error")
        except PeopleError as error:
            flash(f"{stale}: {error}" if stale else f"Not changed: {error}", "error")
        except FaceclusterError as error:
            flash(f"Not changed: {error}", "error")
        return redirect(back, 303)

    @app.post("/people/<int:person>/name")
    def name(person: int) -> BaseResponse:
        given = request.form.get("name", "")
        return act(f"name p{person} {shlex.quote(given)}", lambda e: e.name(person, given), _back(person))

    @app.post("/people/<int:person>/merge")
    def merge_into(person: int) -> BaseResponse:
        target = request.form.get("target", "").strip()
        kept: list[int] = []

        def apply(edit) -> None:
            kept.append(edit.merge(target, person))

        response = act(f"merge {shlex.quote(target)} p{person}", apply, _back(person))
        return redirect(url_for("person_page", person=kept[0]), 303) if kept else response

    @app.post("/merge")
    def merge() -> BaseResponse:
        chosen = _ids("person")
        if len(chosen) < 2:
            flash("Select two or more people to merge.", "error")
            return redirect(_local(request.form.get("back")), 303)
        summaries = {p.id: p for p in everyone().people}
        keep = min(chosen, key=lambda p: (summaries[p].name is None, -summaries[p].faces) if p in summaries else (1, 0))
        others = [p for p in chosen if p != keep]

        def apply(edit) -> None:
            for other in others:
                edit.merge(keep, other)

        act(f"merge p{keep} " + " ".join(f"p{p}" for p in others), apply, url_for("overview"))
        return redirect(url_for("person_page", person=keep), 303)

    @app.post("/people/<int:person>/faces")
    def faces_action(person: int) -> BaseResponse:
        return _faces_action(person, _back(person))

    @app.post("/unsorted/faces")
    def unsorted_action() -> BaseResponse:
        return _faces_action(None, _local(request.form.get("back")))

    def _faces_action(person: int | None, back: str) -> BaseResponse:
        faces, action = _ids("face"), request.form.get("action", "")
        if not faces:
            flash("Select one or more faces first.", "error")
            return redirect(back, 303)
        listed = " ".join(f"f{f}" for f in faces)
        if action == "move":
            target, new = request.form.get("target", "").strip(), request.form.get("new") == "1"
            command = f"move {listed} {shlex.quote(target)}" + (" --new" if new else "")
            return act(command, lambda e: _move(e, faces, target, new), back)
        if action == "split" and person is not None:
            new_name = request.form.get("name", "").strip()
            command = f"split p{person} {listed}" + (f" (named {shlex.quote(new_name)})" if new_name else "")
            return act(command, lambda e: _split(e, person, faces, new_name), back)
        if action == "reject" and person is not None:
            return act(f"reject {listed} p{person}", lambda e: [e.reject(f, person) for f in faces], back)
        if action == "forget":
            return act(f"forget {listed}", lambda e: e.forget(faces), back)
        abort(400)

    @app.post("/faces/<int:face>/answer")
    def answer(face: int) -> BaseResponse:
        person, back = _number(request.form.get("person")), _local(request.form.get("back"))
        if request.form.get("answer") == "yes":
            return act(f"move f{face} p{person}", lambda e: e.move(face, person), back)
        return act(f"reject f{face} p{person}", lambda e: e.reject(face, person), back)

    @app.post("/same/answer")
    def answer_question() -> BaseResponse:
        """Yes (one person: merge, or move the face in) or No (two people for good) to a "same person?" question."""
        question, answer = _question_id(request.form.get("question")), request.form.get("answer")
        if answer not in ("yes", "no"):
            abort(400)
        back = _local(request.form.get("back")) if request.form.get("back") else url_for("same")
        stale = f"Not answered, {question} is out of date"
        response = act(f"same {question} {answer}", lambda e: e.answer(question, answer == "yes"), back, stale)
        first, kind, second = QUESTION_ID.fullmatch(question).groups()
        if answer == "yes" and kind == "p":  # back from a page about someone merged away: the one who stays
            for gone, kept in ((int(first), int(second)), (int(second), int(first))):
                instead = _instead_of(back, gone, kept)
                if instead != back and library.summary(gone) is None:
                    return redirect(instead, 303)
        return response

    @app.post("/undo")
    def undo() -> BaseResponse:
        until = request.form.get("until")
        try:
            for line in session.undo(_number(until) if until else None):
                flash(f"undid {line}", "done")
        except OutputBusy:
            flash("Not undone: a scan (or another facecluster command) is using this library.", "error")
        except FaceclusterError as error:
            flash(f"Not undone: {error}", "error")
        return redirect(_local(request.form.get("back")), 303)

    @app.post("/settle")
    def settle() -> BaseResponse:
        session.settle_now()
        flash("Albums, people.json and the report are up to date.", "done")
        return redirect(_local(request.form.get("back")), 303)

    def _summary(person: int, page: bool = True):
        """The person's summary; for a page of someone merged away or emptied, back to the overview."""
        summary = library.summary(person)
        if summary is not None:
            return summary
        if page:
            flash(f"There is no p{person} now (merged into someone, or left without faces; see History).", "error")
            abort(redirect(url_for("overview"), 303))
        abort(404)

    def _faces_page(person: int | None, forgotten: bool = False) -> dict[str, object]:
        """The requested page of a person's (or the unsorted) faces, with what the page links need."""
        total, faces = library.faces(person, forgotten, offset=_offset(FACES_PER_PAGE), limit=FACES_PER_PAGE)
        return {"faces": faces, "total": total, "page": _page_number(), "pages": max(1, -(-total // FACES_PER_PAGE))}

    def _names() -> list[str]:
        return sorted(library.names(), key=str.casefold)

    return app


def _move(edit, faces: list[int], target: str, new: bool) -> None:
    """Move faces to a person (p7, a name), or with ``new`` to a new person of that name (as ``move --new``)."""
    person = edit.move(faces[0], target, create=new)
    for face in faces[1:]:
        edit.move(face, person)


def _split(edit, person: int, faces: list[int], name: str) -> None:
    new = edit.split(person, faces)
    if name:
        edit.name(new, name)


def _chance(probability: float) -> str:
    """'87 %' (under 1 % and over 99 % as such: a guess is never certain), never broken across lines."""
    if probability < 0.01:
        return "under\u00a01\u00a0%"
    if probability > 0.99:
        return "over\u00a099\u00a0%"
    return f"{round(probability * 100)}\u00a0%"


def _under(path: Path, root: Path) -> str:
    """A photo's path under the scanned folder, with '/' separators (as the faces' pages show it)."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


def _number(text: str | None) -> int:
    """A whole number from a form (an id): 400 for anything else, or beyond what SQLite can hold."""
    if text is None or not text.isascii() or not text.isdigit() or len(text) > 18:
        abort(400)
    return int(text)


def _instead_of(back: str, gone: int, kept: int) -> str:
    """``back`` (a page of the app) about ``kept`` instead of ``gone``: their page, or their questions."""
    parts = urlsplit(back)
    if parts.path == url_for("person_page", person=gone):
        return url_for("person_page", person=kept)
    query = parse_qs(parts.query)
    if parts.path == url_for("same") and query.get("person") == [str(gone)]:
        return url_for("same", person=kept, **({"skip": query["skip"][0]} if "skip" in query else {}))
    return back


def _question_id(text: str | None) -> str:
    """A question id from a form, as the library writes it ('p3-p7', smaller id first; 'p3-f12'): 400 otherwise."""
    found = _question_ids(text) if text and "," not in text else []
    if len(found) != 1:
        abort(400)
    return found[0]


def _question_ids(text: str) -> list[str]:
    """The question ids in a comma-separated list, in the library's spelling; anything else is left out
    (so is one id naming a person twice)."""
    found: list[str] = []
    for part in text.split(","):
        match = QUESTION_ID.fullmatch(part.strip())
        if match is None:
            continue
        first, kind, second = int(match[1]), match[2], int(match[3])
        if kind == "p" and first == second:
            continue
        if kind == "p":
            first, second = sorted((first, second))
        question = f"p{first}-{kind}{second}"
        if question not in found:
            found.append(question)
    return found


def _ids(field: str) -> list[int]:
    """The ids a form's checkboxes selected (numbers only)."""
    return sorted({_number(value) for value in request.form.getlist(field)})


def _page_number() -> int:
    text = request.args.get("page", "1")
    return max(1, int(text)) if text.isascii() and text.isdigit() and len(text) < 10 else 1


def _offset(per_page: int) -> int:
    return (_page_number() - 1) * per_page


def _page(items: list, per_page: int) -> tuple[int, int, list]:
    pages = max(1, -(-len(items) // per_page))
    page = min(_page_number(), pages)
    return page, pages, items[(page - 1) * per_page : page * per_page]


def _back(person: int) -> str:
    return _local(request.form.get("back")) if request.form.get("back") else url_for("person_page", person=person)


def _local(path: str | None) -> str:
    """A page of this app to return to: only a local path ('/...'), never another site."""
    if (
        not path
        or not path.startswith("/")
        or any(c.isspace() or ord(c) < 32 or c == "\\" for c in path)
        or urlsplit(path).netloc
        or path.startswith("//")
    ):
        return url_for("overview")
    return path
