"""The review app's pages and actions (Flask). Each action is a few lines over the library's corrections.

Pages: the overview (everyone, named first, then by size), a person (their faces, paged, with
actions on the selected ones and "is this them?" suggestions), the unsorted faces (each with its
nearest person to accept or reject), and the history (undo). Images are served by face id only:
a face's thumbnail, or the photo that holds it, never a path taken from the request.
"""

from __future__ import annotations

import mimetypes
import shlex
from collections.abc import Callable
from urllib.parse import urlsplit

from flask import Flask, Response, abort, flash, jsonify, redirect, render_template, request, url_for
from werkzeug.wrappers.response import Response as BaseResponse

from facecluster.errors import FaceclusterError, OutputBusy
from facecluster.outputs.files import display_text
from facecluster.review.security import HEADERS, SAFE_METHODS, Guard
from facecluster.review.session import ReviewSession
from facecluster.types import Overview

PEOPLE_PER_PAGE = 240
FACES_PER_PAGE = 300
SUGGESTIONS = 12
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

    def act(command: str, apply: Callable[..., object], back: str) -> BaseResponse:
        """Run one change, then go ``back`` with what it did (or why not) as a message."""
        try:
            with session.change(f"review: {command}") as edit:
                apply(edit)
            for line in edit.effects:
                flash(line, "done")
        except OutputBusy:
            flash(BUSY, "error")
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


def _number(text: str | None) -> int:
    """A whole number from a form (an id): 400 for anything else, or beyond what SQLite can hold."""
    if text is None or not text.isascii() or not text.isdigit() or len(text) > 18:
        abort(400)
    return int(text)


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
