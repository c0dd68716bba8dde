"""Issue 17: the verification fast path (one narrow SELECT, answers kept per certificate state) and status lists
served from a pre-compressed copy checked against a change stamp, both exactly as correct as the full path on the
very next request on every app server. A second app on the same database (and the same instance folder, as on one
machine) plays the other server; Redis, for servers on several machines, is a real redis-server.
(Speed: bench/certificates.py, `BENCH_ONLY=verification make bench`.)"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
from datetime import timedelta

import pytest
from flask import current_app

from accounts.models import Role
from core import create_app
from core.database import utcnow
from core.extensions import db
from credentials import answers, openbadges, services, status_cache
from credentials.ids import format_public_id
from credentials.models import RevocationReason
from credentials.presenters import public_facts
from tests import conftest
from tests.factories import load_test_framework, make_certificate, make_course, make_user, sign_in

# the page's "Checked <date and time>": the one <time> with a time in it
CHECKED = re.compile(r'<time datetime="[0-9-]+T[^"]+">[^<]+</time>')


@pytest.fixture
def certificate(ctx):
    load_test_framework()
    user = make_user(email="lee@example.org", name="Lee Learner")
    return make_certificate(user, make_course("ai-basics", title="AI Basics"))


@pytest.fixture(scope="module")
def other_server(tmp_path_factory, database_url):
    """Another app process on the same database: its own kept answers and served lists."""
    app = create_app(conftest.test_config(tmp_path_factory, database_url))
    app.test_client_class = conftest.Client
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def other(other_server):
    for name in ("verify_facts", "verify_pages", "served_status_lists"):
        other_server.extensions.pop(name, None)
    return other_server.test_client()


def admin():
    from sqlalchemy import select

    from accounts.models import User

    found = db.session.scalar(select(User).where(User.email == "admin@example.org"))
    return found or make_user(email="admin@example.org", role=Role.ADMIN)


def test_json_is_the_models_facts_and_follows_every_change_on_every_server(client, other, certificate):
    url = f"/api/v1/certificates/{format_public_id(certificate.public_id)}"
    first = client.get(url)
    assert first.status_code == 200 and first.mimetype == "application/json"
    assert first.headers["Cache-Control"] == "no-store" and first.headers["Access-Control-Allow-Origin"] == "*"
    assert first.json == json.loads(json.dumps(public_facts(certificate, utcnow())))
    assert client.get(url).data == first.data  # kept: the same bytes
    assert other.get(url).json["status"] == "valid"  # both servers now keep a "valid" answer

    services.revoke(admin(), certificate, reason=RevocationReason.ACADEMIC_MISCONDUCT, note="x", now=utcnow())
    db.session.commit()
    for server in (client, other):
        facts = server.get(url).json
        assert facts["status"] == "revoked" and facts["revocation_reason"] == "academic_misconduct"
        assert facts["revoked_at"] == certificate.revoked_at.isoformat()

    services.reinstate(admin(), certificate, now=utcnow())
    db.session.commit()
    assert [s.get(url).json["status"] for s in (client, other)] == ["valid", "valid"]

    services.suspend(admin(), certificate, reason="under review", until=None, now=utcnow())
    db.session.commit()
    assert [s.get(url).json["status"] for s in (client, other)] == ["suspended", "suspended"]
    page = f"/verify/{format_public_id(certificate.public_id)}"
    assert [s.get(page).status_code for s in (client, other)] == [200, 200]
    assert "Suspended" in client.get(page).get_data(as_text=True)  # the kept page (a lane hit) follows too
    services.lift_suspension(admin(), certificate, now=utcnow())
    db.session.commit()
    assert [s.get(url).json["status"] for s in (client, other)] == ["valid", "valid"]
    assert "✓ Valid" in other.get(page).get_data(as_text=True)

    services.reissue(None, certificate, now=utcnow(), why="name correction approved", holder_name="Lee Q. Learner")
    db.session.commit()
    assert [s.get(url).json["holder_name"] for s in (client, other)] == ["Lee Q. Learner"] * 2

    # expiry needs no write at all: the status is part of the key
    certificate.issued_at = certificate.awarded_at = utcnow() - timedelta(days=800)
    certificate.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert [s.get(url).json["status"] for s in (client, other)] == ["expired", "expired"]
    assert client.get(url).json == json.loads(json.dumps(public_facts(certificate, utcnow())))


def test_the_anonymous_page_is_drawn_once_and_equals_the_full_render(client, certificate, app, monkeypatch):
    url = f"/verify/{format_public_id(certificate.public_id)}"
    drawn = []
    real_render = answers.render_page
    monkeypatch.setattr(answers, "render_page", lambda **kw: drawn.append(kw) or real_render(**kw))
    first = client.get(url)
    kept = client.get(url)
    assert first.status_code == kept.status_code == 200
    # drawn once for the page, once with markers for its shape (filled in for other certificates); not again
    assert [type(kw["certificate"]) for kw in drawn] == [answers.CertificateView, answers._Drawn]
    assert {"Accept", "Accept-Language", "Cookie"} <= set(kept.vary)
    assert "Set-Cookie" not in kept.headers
    html = kept.get_data(as_text=True)
    assert "✓ Valid" in html and "Lee Learner" in html and "about 1 hour of study" in html
    assert len(CHECKED.findall(html)) == 1 and CHECKED.findall(html) != CHECKED.findall(first.get_data(as_text=True))

    # the full path (no kept answers: the ORM certificate, the template drawn every time) gives the same page
    monkeypatch.setitem(app.config, "VERIFY_CACHE_SIZE", 0)
    full = client.get(url).get_data(as_text=True)
    assert CHECKED.sub("", full) == CHECKED.sub("", html)
    monkeypatch.setitem(app.config, "VERIFY_CACHE_SIZE", 2000)

    # one kept page per language
    spanish = client.get(url, headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert "Válido" in spanish and '<html lang="es">' in spanish
    assert "✓ Valid" in client.get(url).get_data(as_text=True)

    services.revoke(admin(), certificate, reason=RevocationReason.OTHER, note="x", now=utcnow())
    db.session.commit()
    revoked = client.get(url).get_data(as_text=True)
    assert "✗ Revoked" in revoked and "✓ Valid" not in revoked


def test_a_signed_in_visitor_gets_their_own_page(client, certificate):
    url = f"/verify/{format_public_id(certificate.public_id)}"
    assert "Log in" in client.get(url).get_data(as_text=True)  # an anonymous page is now kept
    make_user(email="hr@example.org", name="Hana Recruiter")
    sign_in(client, "hr@example.org")
    page = client.get(url).get_data(as_text=True)
    assert "Log out" in page and "Hana Recruiter" in page and "✓ Valid" in page


def test_the_status_list_is_served_without_the_database_until_a_bit_flips_on_any_server(
    client, other, certificate, count_queries
):
    from credentials.admin_views import resign_status_list

    url = f"/credentials/status/{certificate.status_list_id}"
    gz = {"Accept-Encoding": "gzip"}
    first = client.get(url, headers=gz)
    assert first.status_code == 200 and first.headers["Content-Encoding"] == "gzip"
    etag = first.headers["ETag"]
    plain = client.get(url)
    assert json.loads(gzip.decompress(first.data)) == json.loads(plain.data)  # the gzip is the same list
    assert count_queries(lambda: client.get(url, headers=gz)) == 0  # kept, and the stamp has not moved
    assert other.get(url, headers=gz).headers["ETag"] == etag  # the other server serves the same signed list
    not_modified = client.get(url, headers={**gz, "If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.data == b""

    services.revoke(admin(), certificate, reason=RevocationReason.OTHER, note="x", now=utcnow())
    with current_app.test_request_context():
        resign_status_list(certificate)  # what the admin's revoke page does before it answers
    db.session.commit()
    for server in (client, other):
        changed = server.get(url, headers={**gz, "If-None-Match": etag})
        assert changed.status_code == 200 and changed.headers["ETag"] != etag
        listing = json.loads(gzip.decompress(changed.data))
        bits = openbadges.decode_bits(listing["credentialSubject"]["encodedList"])
        assert openbadges.bit_is_set(bits, certificate.status_list_index)


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    from tests.servers.conftest import free_port, wait_for_port

    binary = shutil.which("redis-server")
    assert binary, "redis-server is needed (apt-get install redis-server)"
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tmp_path_factory.mktemp("redis"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class _Server:
    """What status_cache and the counter read of an app: its configuration and its extensions."""

    def __init__(self, storage_uri: str) -> None:
        self.config = {"RATELIMIT_STORAGE_URI": storage_uri}
        self.extensions: dict = {}
        self.instance_path = "/nonexistent"


@pytest.mark.nodb
def test_with_redis_limits_the_stamp_and_the_counted_clients_are_shared_by_all_servers(redis_url, monkeypatch):
    from limits.storage import storage_from_string

    from credentials import counter

    a, b = _Server(redis_url), _Server(redis_url)
    assert isinstance(status_cache._stamp(a), status_cache._RedisStamp)
    before = status_cache.read_stamp(b)
    status_cache.bump_stamp(a)
    assert status_cache.read_stamp(b) != before and status_cache.read_stamp(a) == status_cache.read_stamp(b)

    # the once-a-day check runs per batch, in one pipelined round trip, and holds across app servers
    monkeypatch.setattr(counter, "limit_storage", lambda: storage_from_string(redis_url))
    now = utcnow()
    first, second = counter.VerificationCounter(), counter.VerificationCounter()
    notes = [("client-1", 7, now), ("client-1", 7, now), ("client-2", 7, now)]
    assert first._first_today(notes) == [("client-1", 7, now), ("client-2", 7, now)]
    assert second._first_today([("client-2", 7, now), ("client-3", 7, now)]) == [("client-3", 7, now)]


def test_the_fast_lane_answers_kept_reads_as_the_app_does_with_its_limits_and_counts(client, app, certificate):
    from flask import request_started

    served_by_app = []

    def note(sender, **extra):
        served_by_app.append(1)

    facts = f"/api/v1/certificates/{format_public_id(certificate.public_id)}"
    page = f"/verify/{format_public_id(certificate.public_id)}"
    listing = f"/credentials/status/{certificate.status_list_id}"
    client.get(listing)  # signs the list: that commit moves the stamp, so the next request checks it once more
    request_started.connect(note, app)
    try:
        spanish, browser = {"Accept-Language": "es-MX,es;q=0.9"}, {"Accept": "text/html,application/xml;q=0.9,*/*"}
        for url, headers in (
            (facts, {}),
            (listing, {"Accept-Encoding": "gzip"}),
            (listing, {}),
            (page, browser),
            (page, {**browser, **spanish}),
        ):
            full = client.get(url, headers=headers)
            served_by_app.clear()
            lane = client.get(url, headers=headers)
            assert served_by_app == []  # the second never reached the app
            assert lane.status_code == 200
            if url == page:  # the same page but for the time it was checked
                assert CHECKED.sub("", lane.get_data(as_text=True)) == CHECKED.sub("", full.get_data(as_text=True))
                assert CHECKED.search(lane.get_data(as_text=True))
            else:
                assert lane.data == full.data
            per_request = {"X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After", "Date"}
            assert {k: v for k, v in lane.headers.items() if k not in per_request} == {
                k: v for k, v in full.headers.items() if k not in per_request
            }
            assert int(lane.headers["X-RateLimit-Remaining"]) == int(full.headers["X-RateLimit-Remaining"]) - 1
        # a query string, a conditional request or a session cookie: the app answers
        served_by_app.clear()
        client.get(facts + "?x=1")
        client.get(listing, headers={"If-None-Match": '"x"'})
        credential = client.get(page, headers={"Accept": "application/ld+json"})
        assert credential.mimetype == "application/ld+json"  # the app's content negotiation, not a kept page
        client.set_cookie("session", "anything")
        client.get(facts)
        assert served_by_app == [1, 1, 1, 1]
        client.delete_cookie("session")
    finally:
        request_started.disconnect(note, app)

    # the lane and the app share the route's limit and the counter
    app.config["RATELIMIT_VERIFY"] = "3 per minute"
    try:
        address = {"REMOTE_ADDR": "10.7.7.7"}
        assert [client.get(facts, environ_base=address).status_code for _ in range(4)] == [200, 200, 200, 429]
    finally:
        app.config["RATELIMIT_VERIFY"] = "60 per minute"
    db.session.refresh(certificate)
    assert certificate.verification_count == 2  # 127.0.0.1 (the first checks) and 10.7.7.7, once a day each


def test_the_lane_builds_the_first_json_answer_of_a_certificate_itself(client, app, certificate):
    from flask import request_started

    second = make_certificate(make_user(email="kim@example.org", name="Kim Learner"), certificate.course)
    first_url = f"/api/v1/certificates/{format_public_id(certificate.public_id)}"
    second_url = f"/api/v1/certificates/{format_public_id(second.public_id)}"
    app.extensions.pop("verify_facts", None)  # nothing kept in this process yet
    full = client.get(first_url)  # the app answers the first request of the kind (its headers are replayed)
    served_by_app = []

    def note(sender, **extra):
        served_by_app.append(1)

    request_started.connect(note, app)
    try:
        lane = client.get(second_url)  # never asked for before in this process
    finally:
        request_started.disconnect(note, app)
    assert served_by_app == [] and lane.status_code == 200
    assert lane.get_json() == json.loads(json.dumps(public_facts(second, utcnow())))
    assert lane.data == client.get(second_url + "?x=1").data  # byte for byte what the app's full path answers
    per_request = {"X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After", "Content-Length", "Date"}
    assert {k: v for k, v in lane.headers.items() if k not in per_request} == {
        k: v for k, v in full.headers.items() if k not in per_request
    }
    db.session.refresh(second)
    assert second.verification_count == 1  # counted as the app counts


def _states():
    """(name, change): each change gives a certificate one status and set of dates the verify page shows."""
    now = utcnow()

    def revoked(certificate):
        services.revoke(admin(), certificate, reason=RevocationReason.ACADEMIC_MISCONDUCT, note="x", now=now)

    def suspended_until(certificate):
        services.suspend(admin(), certificate, reason="under review", until=now + timedelta(days=9), now=now)

    def suspended(certificate):
        services.suspend(admin(), certificate, reason="under review", until=None, now=now)

    def expiring(certificate):
        certificate.expires_at = now + timedelta(days=40)

    def expired(certificate):
        certificate.issued_at = certificate.awarded_at = certificate.awarded_at - timedelta(days=800)
        certificate.expires_at = now - timedelta(days=3)

    def reissued(certificate):
        certificate.awarded_at -= timedelta(days=30)  # "Last reissued" shows when the days differ
        certificate.revision += 1

    return [
        ("valid", lambda c: None),
        ("revoked", revoked),
        ("suspended until", suspended_until),
        ("suspended", suspended),
        ("valid until", expiring),
        ("expired", expired),
        ("reissued", reissued),
    ]


def test_a_certificates_first_page_is_filled_in_from_its_shape_byte_for_byte(app, client, ctx, monkeypatch):
    """The first page of a certificate is not drawn when one of the same shape was: it is filled in, in front of
    Flask, and equals the template's page for it (full path, nothing kept) for every status and both languages."""
    from flask import request_started

    load_test_framework()
    course = make_course("ai-basics", title="AI Basics")
    served_by_app, drawn = [], []

    def note(sender, **extra):
        served_by_app.append(1)

    request_started.connect(note, app)
    real_render = answers.render_page
    monkeypatch.setattr(answers, "render_page", lambda **kw: drawn.append(kw) or real_render(**kw))
    per_request = {"X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After", "Content-Length", "Date"}
    try:
        for number, (name, change) in enumerate(_states()):
            # two certificates of the same course: the second's name, score and dates differ from the first's
            first = make_certificate(make_user(email=f"lee{number}@example.org", name="Lee Learner"), course)
            holder = make_user(email=f"zoe{number}@example.org", name='Zoë <b>"O\'Neil" & Co</b>')
            second = make_certificate(holder, course)
            second.score, second.awarded_at = 73, second.awarded_at - timedelta(days=3)
            second.issued_at = second.awarded_at
            for certificate in (first, second):
                change(certificate)
            db.session.commit()
            for language in ({}, {"Accept-Language": "es"}):
                for kept in ("verify_pages", "verify_drawings"):
                    app.extensions.pop(kept, None)
                client.get(f"/verify/{format_public_id(first.public_id)}", headers=language)  # drawn, twice
                url = f"/verify/{format_public_id(second.public_id)}"
                served_by_app.clear()
                drawn.clear()
                filled = client.get(url, headers=language)
                assert (served_by_app, drawn, filled.status_code) == ([], [], 200), name  # the lane filled it in
                monkeypatch.setitem(app.config, "VERIFY_CACHE_SIZE", 0)
                full = client.get(url, headers=language)  # the full path: the ORM certificate, the template
                monkeypatch.setitem(app.config, "VERIFY_CACHE_SIZE", 2000)
                assert len(drawn) == 1
                assert CHECKED.sub("", filled.get_data(as_text=True)) == CHECKED.sub("", full.get_data(as_text=True))
                assert {k: v for k, v in filled.headers.items() if k not in per_request} == {
                    k: v for k, v in full.headers.items() if k not in per_request
                }
                page = filled.get_data(as_text=True)
                assert "Zoë &lt;b&gt;&#34;O&#39;Neil&#34; &amp; Co&lt;/b&gt;" in page and "<b>" not in page
                assert "Lee Learner" not in page and format_public_id(first.public_id) not in page
                valid = name in ("valid", "valid until", "reissued")
                assert ("Válido" in page, "✓ Valid" in page) == (valid and bool(language), valid and not language)
                assert (name == "reissued") == ("<dt>Last reissued</dt>" in page or "<dt>Última" in page), name
    finally:
        request_started.disconnect(note, app)


def test_certificates_of_another_shape_never_share_a_drawing(app, client, ctx, monkeypatch):
    """Which dates the page shows, the course and the status are part of a drawing's key: the first page of a
    certificate of another shape is drawn by the template (and equals the full path's)."""
    load_test_framework()
    course, other_course = make_course("ai-basics", title="AI Basics"), make_course("ai-ops", title="AI Ops")
    now = utcnow()
    people = iter(make_user(email=f"p{n}@example.org", name=f"Person {n}") for n in range(20))

    def reissued(certificate):
        certificate.awarded_at -= timedelta(days=30)

    def expiring(certificate):
        certificate.expires_at = now + timedelta(days=40)

    def suspended(certificate):
        services.suspend(admin(), certificate, reason="x", until=None, now=now)

    def suspended_until(certificate):
        services.suspend(admin(), certificate, reason="x", until=now + timedelta(days=9), now=now)

    pairs = [  # (first's course, first's change, second's course, second's change)
        (course, reissued, course, lambda c: None),
        (course, lambda c: None, course, reissued),
        (course, expiring, course, lambda c: None),
        (course, suspended_until, course, suspended),
        (course, lambda c: None, other_course, lambda c: None),
    ]
    for first_course, first_change, second_course, second_change in pairs:
        first, second = make_certificate(next(people), first_course), make_certificate(next(people), second_course)
        first_change(first)
        second_change(second)
        db.session.commit()
        for kept in ("verify_pages", "verify_drawings"):
            app.extensions.pop(kept, None)
        client.get(f"/verify/{format_public_id(first.public_id)}")
        url = f"/verify/{format_public_id(second.public_id)}"
        page = client.get(url).get_data(as_text=True)
        monkeypatch.setitem(app.config, "VERIFY_CACHE_SIZE", 0)
        full = client.get(url).get_data(as_text=True)
        monkeypatch.setitem(app.config, "VERIFY_CACHE_SIZE", 2000)
        assert CHECKED.sub("", page) == CHECKED.sub("", full)


def test_program_certificates_take_the_full_path_in_both_languages(app, client, ctx, monkeypatch):
    """A program certificate's page lists its stacked course certificates (read per request): never kept, never
    filled in from a drawing; the app draws it every time, as with nothing kept."""
    from flask import request_started
    from sqlalchemy import select

    from courses.programs import enroll_program
    from credentials.models import Certificate
    from tests.factories import complete_course, make_program

    load_test_framework()
    courses = [make_course(slug, title=f"Course {slug}") for slug in ("alpha", "bravo")]
    program = make_program("pathway", ("alpha", "bravo"))
    holders = []
    for email in ("pat@example.org", "sam@example.org"):
        holders.append(make_user(email=email, name=email.split("@")[0].title() + " Learner"))
        enroll_program(holders[-1], program, now=utcnow())
        db.session.commit()
        for course in courses:
            complete_course(holders[-1], course)
    stacked = db.session.scalars(select(Certificate).where(Certificate.program_id.is_not(None))).all()
    assert len(stacked) == 2
    served_by_app = []

    def note(sender, **extra):
        served_by_app.append(1)

    request_started.connect(note, app)
    try:
        for language in ({}, {"Accept-Language": "es"}):
            for certificate in stacked:
                url = f"/verify/{format_public_id(certificate.public_id)}"
                served_by_app.clear()
                pages = [client.get(url, headers=language).get_data(as_text=True) for _ in range(2)]
                assert served_by_app == [1, 1]
                monkeypatch.setitem(app.config, "VERIFY_CACHE_SIZE", 0)
                full = client.get(url, headers=language).get_data(as_text=True)
                monkeypatch.setitem(app.config, "VERIFY_CACHE_SIZE", 2000)
                assert CHECKED.sub("", pages[1]) == CHECKED.sub("", full)
                assert "Course alpha" in full and certificate.holder_name in full
    finally:
        request_started.disconnect(note, app)
    assert not app.extensions.get("verify_drawings") or not app.extensions["verify_drawings"].items
