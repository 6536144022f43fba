"""The review app over real HTTP (waitress on 127.0.0.1): who may talk to it, what it serves, what it changes."""

from __future__ import annotations

import html
import http.client
import json
import os
import re
import threading
from collections.abc import Iterator
from urllib.parse import urlencode, urlsplit

import pytest

from facecluster.errors import InvalidInput
from facecluster.library import Library
from facecluster.review.security import Guard
from facecluster.review.server import ReviewServer
from facecluster.storage.lock import OutputLock
from tests.fakes import by_size


class Client:
    """Plain HTTP requests with full control of the headers (what an attacker's page or program can send)."""

    def __init__(self, server: ReviewServer) -> None:
        self.server = server
        self.host = f"127.0.0.1:{server.port}"
        self.cookies: dict[str, str] = {}

    def request(
        self, method: str, path: str, body: dict | None = None, headers: dict | None = None, cookie: bool = True
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        sent = {"Host": self.host}
        if cookie and self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        data = None
        if body is not None:
            data = urlencode(body, doseq=True).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
            sent["Origin"] = f"http://{self.host}"
        sent.update(headers or {})
        connection.request(method, path, body=data, headers={k: v for k, v in sent.items() if v is not None})
        response = connection.getresponse()
        if cookie:
            for key, value in response.getheaders():
                if key.lower() == "set-cookie":
                    name, _, rest = value.partition("=")
                    self.cookies[name] = rest.split(";")[0]
        result = response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        connection.close()
        return result

    def log_in(self) -> None:
        path = urlsplit(self.server.url)
        status, headers, _ = self.request("GET", f"{path.path}?{path.query}")
        assert status == 303
        assert "httponly" in headers["set-cookie"].lower() and "samesite=strict" in headers["set-cookie"].lower()
        assert self.server.guard.cookie in self.cookies

    def form_token(self) -> str:
        status, _, page = self.request("GET", "/")
        assert status == 200
        return re.search(rb'name="form_token" value="([0-9a-f]+)"', page).group(1).decode()

    def post(self, path: str, fields: dict, headers: dict | None = None) -> tuple[int, dict[str, str], bytes]:
        return self.request("POST", path, {"form_token": self.form_token(), **fields}, headers)


@pytest.fixture()
def served(library: Library) -> Iterator[tuple[ReviewServer, Client]]:
    server = ReviewServer(library, port=0, settle_delay=0.05)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    client = Client(server)
    yield server, client
    server.close()
    thread.join(timeout=10)


def pages(person) -> tuple[str, ...]:
    """What the app serves on GET: its pages, the status and a face's thumbnail (the person's first)."""
    return (
        "/",
        f"/people/{person.id}",
        f"/people/{person.id}/same",
        "/unsorted",
        "/same",
        "/history",
        "/status",
        f"/faces/{person.faces[0].face_id}.jpg",
    )


def names(output) -> dict[int, str | None]:
    return {p.id: p.name for p in Library.open(output).people()}


def test_it_listens_on_loopback_only_and_the_url_carries_a_long_random_token(served, library):
    server, _ = served
    assert server.host == "127.0.0.1"
    token = server.guard.token
    assert server.url == f"http://127.0.0.1:{server.port}/?token={token}"
    assert len(token) >= 40
    other = ReviewServer(library, port=0)
    try:
        assert other.guard.token != token and other.port != server.port
    finally:
        other.close()


def test_every_request_needs_the_token(served):
    server, client = served
    alice = by_size(server.session.library)[5]
    for path in (*pages(alice), f"/faces/{alice.faces[0].face_id}/photo", "/static/review.js"):
        status, _, body = client.request("GET", path)
        assert status == 403, path
        assert b"token" in body
        assert alice.faces[0].photo.relative.encode() not in body
    assert client.request("GET", "/?token=wrong")[0] == 403
    assert client.request("GET", "/", headers={"Cookie": f"{server.guard.cookie}=wrong"})[0] == 403
    client.log_in()
    assert client.request("GET", "/")[0] == 200


def test_the_token_leaves_the_address_bar_at_once(served):
    server, client = served
    path = urlsplit(server.url)
    status, headers, _ = client.request("GET", f"/people/1?{path.query}", cookie=False)
    assert status == 303 and headers["location"].endswith("/people/1")
    assert "token" not in headers["location"]


def test_a_foreign_host_header_is_refused_even_with_the_token(served):
    """DNS rebinding: a page of evil.example resolved to 127.0.0.1 sends Host: evil.example:PORT."""
    server, client = served
    client.log_in()
    for host in (
        f"evil.example:{server.port}",
        "127.0.0.1",
        f"127.0.0.1:{server.port + 1}",
        f"localhost.evil:{server.port}",
    ):
        status, _, _ = client.request("GET", "/", headers={"Host": host})
        assert status == 400, host
    assert client.request("GET", "/", headers={"Host": f"localhost:{server.port}"})[0] == 200


def test_changes_from_another_origin_or_without_the_form_token_are_refused(served):
    server, client = served
    client.log_in()
    output = server.session.library.output
    alice = by_size(server.session.library)[5]
    before = names(output)
    token = client.form_token()
    attempts = [
        ({"form_token": token, "name": "Mallory"}, {"Origin": "http://evil.example"}),
        ({"form_token": token, "name": "Mallory"}, {"Origin": None}),
        ({"form_token": token, "name": "Mallory"}, {"Origin": "null"}),
        ({"form_token": token, "name": "Mallory"}, {"Origin": f"http://127.0.0.1:{server.port + 1}"}),
        ({"name": "Mallory"}, {}),
        ({"form_token": "0" * 64, "name": "Mallory"}, {}),
        ({"form_token": server.guard.token, "name": "Mallory"}, {}),
    ]
    for fields, headers in attempts:
        status, _, _ = client.request("POST", f"/people/{alice.id}/name", fields, headers)
        assert status == 403, (fields, headers)
    status, _, _ = client.request("POST", f"/people/{alice.id}/name", {"form_token": token, "name": "x"}, cookie=False)
    assert status == 403
    server.session.settle_now()
    assert names(output) == before
    assert Library.open(output).history() == []


def test_every_response_is_hardened(served):
    server, client = served
    client.log_in()
    alice = by_size(server.session.library)[5]
    for path in pages(alice):
        status, headers, _ = client.request("GET", path)
        assert status == 200, path
        csp = headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "same-origin"  # no-referrer makes browsers send Origin: null
    _, headers, _ = client.request("GET", "/")
    assert headers["cache-control"] == "no-store"


def test_images_are_served_by_face_id_only(served, tmp_path):
    server, client = served
    client.log_in()
    library = server.session.library
    alice = by_size(library)[5]
    face = alice.faces[0]
    status, headers, body = client.request("GET", f"/faces/{face.face_id}.jpg")
    assert status == 200 and headers["content-type"] == "image/jpeg" and body[:2] == b"\xff\xd8"
    assert "no-cache" in headers["cache-control"]
    identity = library.identity()
    _, _, page = client.request("GET", f"/people/{alice.id}")
    assert f"/faces/{face.face_id}.jpg?v={identity}".encode() in page  # cached per index: ids restart in each
    _, headers, again = client.request("GET", f"/faces/{face.face_id}.jpg?v={identity}")
    assert again == body and "immutable" in headers["cache-control"]
    status, headers, body = client.request("GET", f"/faces/{face.face_id}/photo")
    assert status == 200 and body == face.photo.path.read_bytes()
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    for path in (
        "/faces/999999.jpg",
        "/faces/999999/photo",
        "/faces/../../../etc/passwd",
        f"/faces/{secret}",
        "/faces/%2e%2e%2fsecret.txt",
        "/static/../library.py",
        "/static/%2e%2e/library.py",
        "/faces/-1.jpg",
        "/faces/1.jpg/../../index.sqlite",
    ):
        status, _, body = client.request("GET", path)
        assert status == 404, path
        assert b"secret" not in body and b"SQLite" not in body


def test_a_missing_photo_is_not_served(served):
    server, client = served
    client.log_in()
    bob = by_size(server.session.library)[4]
    face = next(f for f in bob.faces if "bob0" in f.photo.relative)
    face.photo.path.unlink()
    assert client.request("GET", f"/faces/{face.face_id}/photo")[0] == 404


def test_a_change_is_recorded_and_undone_like_the_cli_s(served):
    server, client = served
    client.log_in()
    output = server.session.library.output
    alice = by_size(server.session.library)[5]
    status, headers, _ = client.post(f"/people/{alice.id}/name", {"name": "Alice"})
    assert status == 303
    status, _, page = client.request("GET", headers["location"])
    assert f"named p{alice.id} &#39;Alice&#39;".encode() in page or b"Alice" in page
    server.session.settle_now()
    assert names(output)[alice.id] == "Alice"
    assert (output / "people" / "Alice").is_dir()
    assert json.loads((output / "people.json").read_text())["people"][0]["name"] == "Alice"
    history = Library.open(output).history()
    assert history[0].command == f"review: name p{alice.id} Alice"
    client.post("/undo", {})
    server.session.settle_now()
    assert names(output)[alice.id] is None
    assert not (output / "people" / "Alice").exists()


def test_read_only_while_another_command_holds_the_folder(served):
    server, client = served
    client.log_in()
    output = server.session.library.output
    alice = by_size(server.session.library)[5]
    token = client.form_token()
    with OutputLock(output):
        _, _, page = client.request("GET", "/")
        assert b"read-only" in page
        assert json.loads(client.request("GET", "/status")[2])["busy"] is True
        status, headers, _ = client.request("POST", f"/people/{alice.id}/name", {"form_token": token, "name": "Alice"})
        assert status == 303
        _, _, page = client.request("GET", headers["location"])
        assert b"Not changed" in page
    assert names(output)[alice.id] is None
    assert json.loads(client.request("GET", "/status")[2])["busy"] is False


def test_a_redirect_goes_only_to_a_page_of_the_app(served):
    _, client = served
    client.log_in()
    for back in (
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
        "/\t/evil.example",
    ):
        status, headers, _ = client.post("/settle", {"back": back})
        assert status == 303 and headers["location"] == "/", back
    status, headers, _ = client.post("/settle", {"back": "/history"})
    assert headers["location"] == "/history"


def test_hostile_names_are_shown_as_text(served):
    server, client = served
    client.log_in()
    alice = by_size(server.session.library)[5]
    client.post(f"/people/{alice.id}/name", {"name": '<script>alert(1)</script>"><img src=x>'})
    for path in ("/", f"/people/{alice.id}", "/history"):
        _, _, page = client.request("GET", path)
        assert b"<script>alert" not in page and b"<img src=x>" not in page
        assert b"&lt;script&gt;" in page


def test_bad_form_values_are_a_clear_400_not_a_crash(served):
    server, client = served
    client.log_in()
    alice = by_size(server.session.library)[5]
    assert client.post(f"/people/{alice.id}/faces", {"action": "move", "face": "x"})[0] == 400
    assert client.post(f"/people/{alice.id}/faces", {"action": "explode", "face": "1"})[0] == 400
    status, headers, _ = client.request("GET", "/people/999999")
    assert status == 303 and headers["location"] == "/"
    assert b"There is no p999999 now" in client.request("GET", "/")[2]
    assert client.request("GET", "/people/999999/suggestions")[0] == 404
    _, headers, _ = client.post(f"/people/{alice.id}/faces", {"action": "move", "face": "999999", "target": "p1"})
    _, _, page = client.request("GET", headers["location"])
    assert b"Not changed" in page and b"no face f999999" in page


def test_numbers_out_of_range_or_not_numbers_are_refused_not_a_crash(served):
    server, client = served
    client.log_in()
    alice = by_size(server.session.library)[5]
    face = alice.faces[0].face_id
    assert client.post(f"/faces/{face}/answer", {"person": "abc", "answer": "yes"})[0] == 400
    assert client.post("/undo", {"until": "abc"})[0] == 400
    assert client.post(f"/people/{alice.id}/faces", {"action": "forget", "face": "9" * 30})[0] == 400
    assert client.request("GET", f"/faces/{'9' * 30}.jpg")[0] == 404
    assert client.request("GET", f"/people/{alice.id}?page={'9' * 30}")[0] == 200


def test_moving_to_an_unknown_name_needs_new_person_ticked(served):
    server, client = served
    client.log_in()
    library = server.session.library
    alice, bob = by_size(library)[5], by_size(library)[4]
    with library.corrections() as edit:
        edit.name(bob.id, "Bob")
    face = alice.faces[0].face_id
    _, headers, _ = client.post(f"/people/{alice.id}/faces", {"action": "move", "face": face, "target": "Bobb"})
    page = client.request("GET", headers["location"])[2]
    assert b"Not changed" in page and b"did you mean" in page
    client.post(f"/people/{alice.id}/faces", {"action": "move", "face": face, "target": "Dora", "new": "1"})
    server.session.settle_now()
    assert [f.face_id for f in library.person("Dora").faces] == [face]


def test_a_file_name_that_is_not_utf8_is_shown_not_a_crash(served):
    server, client = served
    client.log_in()
    library = server.session.library
    alice = by_size(library)[5]
    photo = alice.faces[0].photo.path
    photo.rename(photo.with_name(os.fsdecode(b"bad\xff\xfename.png")))
    library.scan()
    status, _, page = client.request("GET", f"/people/{alice.id}")
    assert status == 200 and "bad\ufffd\ufffdname.png".encode() in page


def test_host_names_the_app_answers_to(library):
    assert Guard.for_address("127.0.0.1", 8765).hosts == {"127.0.0.1:8765", "localhost:8765"}
    assert Guard.for_address("::1", 8765).hosts == {"[::1]:8765", "localhost:8765"}
    assert Guard.for_address("192.168.1.5", 8765).hosts == {"192.168.1.5:8765"}
    for host in ("0.0.0.0", "::", "example.com"):
        with pytest.raises(InvalidInput):
            ReviewServer(library, host, 0)


def test_the_browser_opens_a_private_page_in_the_output_folder_not_the_token_on_a_command_line(served):
    server, _ = served
    page = server.launcher()
    assert page.parent == server.session.library.output
    assert server.guard.token in page.read_text()
    if os.name == "posix":
        assert page.stat().st_mode & 0o077 == 0
    server.close()
    assert not page.exists()


# ---------------------------------------------------------------------------------------------- same person?


@pytest.fixture()
def split_served(fragments: Library) -> Iterator[tuple[ReviewServer, Client]]:
    server = ReviewServer(fragments, port=0, settle_delay=0.05)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    client = Client(server)
    client.log_in()
    yield server, client
    server.close()
    thread.join(timeout=10)


def shown_question(page: bytes) -> str | None:
    found = re.search(rb'<section class="question same" id="question" data-question="([^"]+)"', page)
    return found.group(1).decode() if found else None


def messages(page: bytes) -> list[str]:
    block = re.search(rb'<ul class="messages" id="messages">(.*?)</ul>', page, re.S)
    return [html.unescape(m.decode()) for m in re.findall(rb"<li[^>]*>(.*?)</li>", block.group(1))] if block else []


def test_same_person_yes_merges_no_keeps_apart_and_undo_takes_them_back(split_served):
    server, client = split_served
    output = server.session.library.output
    status, _, page = client.request("GET", "/same")
    assert status == 200 and shown_question(page) == "p1-p4"
    assert b'id="nav-same"' in page and b"2+ questions waiting" not in page
    for face in (3, 4, 5, 6, 10):  # both sides' faces, the nearest pair large with a link to the photo
        assert f'src="/faces/{face}.jpg?v='.encode() in page
    assert b'href="/faces/6/photo"' in page or b'href="/faces/5/photo"' in page
    assert b'href="/people/1"' in page and b'href="/people/4"' in page
    assert b"3 faces" in page and b"2 faces" in page
    assert b'href="/same?skip=p1-p4"' in page

    status, headers, _ = client.post("/same/answer", {"question": "p1-p4", "answer": "yes", "back": "/same"})
    assert status == 303 and headers["location"] == "/same"
    _, _, page = client.request("GET", "/same")
    assert messages(page) == ["merged p4 (unnamed) (f3, f4) into p1 (unnamed)"]
    assert shown_question(page) == "p2-f2"  # the next one
    server.session.settle_now()
    library = Library.open(output)
    assert {p.id: len(p.faces) for p in library.people()} == {1: 5, 2: 4, 3: 2}
    assert library.history()[0].command == "review: same p1-p4 yes"

    client.post("/same/answer", {"question": "p2-f2", "answer": "no", "back": "/same"})
    _, _, page = client.request("GET", "/same")
    assert messages(page) == ["f2 is not p2 (unnamed): it will never be grouped with them"]
    assert shown_question(page) not in (None, "p2-f2")
    assert "p2-f2" not in [q.id for q in Library.open(output).suggestions(limit=None)]
    commands = [c.command for c in Library.open(output).history()]
    assert commands[:2] == ["review: same p2-f2 no", "review: same p1-p4 yes"]

    client.post("/undo", {})
    client.post("/undo", {})
    server.session.settle_now()
    library = Library.open(output)
    assert {p.id: len(p.faces) for p in library.people()} == {1: 3, 2: 4, 3: 2, 4: 2}
    assert [q.id for q in library.suggestions(limit=2)] == ["p1-p4", "p2-f2"]
    assert shown_question(client.request("GET", "/same")[2]) == "p1-p4"


def test_same_person_apart_on_a_person_page_and_merged_away_goes_to_who_stays(split_served):
    server, client = split_served
    output = server.session.library.output
    _, _, page = client.request("GET", "/people/4")
    assert b'data-src="/people/4/same"' in page
    status, _, strip = client.request("GET", "/people/4/same")
    assert status == 200 and b'id="same-p1-p4"' in strip
    assert strip.count(b'name="question"') <= 5 and b'href="/same?person=4"' in strip
    status, headers, _ = client.post("/same/answer", {"question": "p1-p4", "answer": "no", "back": "/people/4"})
    assert status == 303 and headers["location"] == "/people/4"
    page = client.request("GET", "/people/4")[2]
    assert messages(page) == [
        "p1 (unnamed) and p4 (unnamed) are two people: never grouped together (both confirmed as they are)"
    ]
    assert b'id="same-p1-p4"' not in client.request("GET", "/people/4/same")[2]
    assert "p1-p4" not in [q.id for q in Library.open(output).suggestions(limit=None)]
    client.post("/undo", {})
    assert b'id="same-p1-p4"' in client.request("GET", "/people/4/same")[2]

    status, headers, _ = client.post("/same/answer", {"question": "p1-p4", "answer": "yes", "back": "/people/4"})
    assert status == 303 and headers["location"] == "/people/1"  # p4 is merged into p1
    status, headers, _ = client.post("/same/answer", {"question": "p1-p4", "answer": "yes", "back": "/same?person=4"})
    assert status == 303 and headers["location"] == "/same?person=1"  # answered twice (two tabs): stale
    page = client.request("GET", headers["location"])[2]
    assert messages(page) == ["Not answered, p1-p4 is out of date: no person p4 (see 'facecluster people')"]
    server.session.settle_now()
    history = Library.open(output).history()
    commands = [c.command.split(" #")[0] for c in history[:3]]  # 'undo #5'
    assert commands == ["review: same p1-p4 yes", "undo", "review: same p1-p4 no"]


def test_same_person_skip_and_the_questions_of_one_person(split_served):
    _, client = split_served
    page = client.request("GET", "/same?skip=p1-p4")[2]
    assert shown_question(page) == "p2-f2" and b'href="/same?skip=p1-p4,p2-f2"' in page
    assert b"1 skipped: ask again" in page
    page = client.request("GET", "/same?skip=p4-p1,junk,p2-p2,,p1-f" + ",x" * 500)[2]
    assert shown_question(page) == "p2-f2"  # p4-p1 is p1-p4; the rest is left out
    page = client.request("GET", "/same?person=4")[2]
    assert shown_question(page) == "p1-p4" and b"about p4" in page
    everything = ",".join(q.id for q in client.server.session.library.suggestions(limit=None, disjoint=False))
    page = client.request("GET", "/same?person=4&skip=" + everything)[2]
    assert shown_question(page) is None and b"No questions left about p4 but the" in page
    status, headers, _ = client.request("GET", "/same?person=999")
    assert status == 303 and headers["location"] == "/same"
    assert b"There is no p999 now" in client.request("GET", "/same")[2]
    assert client.request("GET", "/same?person=abc")[0] == 400
    assert client.request("GET", "/people/999/same")[0] == 404
    assert shown_question(client.request("GET", "/same")[2]) == "p1-p4"
    with client.server.session.library.corrections("answered elsewhere") as edit:  # as a command would
        edit.answer("p1-p4", True)
    assert shown_question(client.request("GET", "/same")[2]) == "p2-f2"  # the app's questions follow the index


def test_no_same_person_question_left_is_said_plainly(served):
    server, client = served
    client.log_in()
    with server.session.library.corrections() as edit:  # the stranger was the only one asked about
        edit.forget([2])
    page = client.request("GET", "/same")[2]
    assert shown_question(page) is None
    assert b"No questions left: the grouping has nothing more to ask." in page
    assert b"questions waiting" not in page


def test_same_person_answers_are_guarded_and_checked(split_served):
    server, client = split_served
    output = server.session.library.output
    token = client.form_token()
    fields = {"question": "p1-p4", "answer": "yes"}
    assert client.request("POST", "/same/answer", fields)[0] == 403  # no form token
    assert client.request("POST", "/same/answer", {**fields, "form_token": "0" * 64})[0] == 403
    foreign = {"Origin": "http://evil.example"}
    assert client.request("POST", "/same/answer", {**fields, "form_token": token}, foreign)[0] == 403
    for question in ("", "junk", "p1-p1", "p1-x4", "p1-p4,p2-f2", "P1-P4", "p1-p" + "9" * 30, "p\uff11-p4", "f2-p1"):
        assert client.post("/same/answer", {"question": question, "answer": "yes"})[0] == 400, question
    assert client.post("/same/answer", {"answer": "yes"})[0] == 400
    assert client.post("/same/answer", {"question": "p1-p4", "answer": "maybe"})[0] == 400
    assert client.post("/same/answer", {"question": "p1-p4"})[0] == 400
    with OutputLock(output):
        status, headers, _ = client.post("/same/answer", fields)
        assert status == 303
        assert messages(client.request("GET", headers["location"])[2]) == [
            "Not changed: a scan (or another facecluster command) is using this library; try again when it ends."
        ]
    status, headers, _ = client.post("/same/answer", {"question": "p1-f99", "answer": "no"})
    page = client.request("GET", headers["location"])[2]
    assert messages(page)[0].startswith("Not answered, p1-f99 is out of date: no face f99")
    server.session.settle_now()
    assert Library.open(output).history()[0].command.startswith("split")  # the fixture's; nothing else
