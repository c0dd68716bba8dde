"""The signed-in lane's verify page (credentials/lane.py's SignedInVerify, through courses/lane.py): a signed-in
learner's /verify/<id> answered before Flask, byte for byte what the app answers for the same request (apart from
the CSRF tokens each request signs and the rate limit counters each request moves); one viewer never gets another's
page; a revocation, a suspension or an expiry shows on the very next request; whatever the lane cannot prove goes
to the app."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from accounts.models import Role, User
from core import contentcache
from core.database import utcnow
from core.extensions import db
from courses import lane as signed_lane
from credentials import lane as verify_lane
from credentials import views as verify_views
from credentials.ids import format_public_id
from credentials.models import Certificate, RevocationReason
from tests.conftest import Client
from tests.factories import load_test_framework, login, make_certificate, make_course, make_org, make_user
from tests.test_signed_in_lane import answer, environ_of, not_answered

RATE = ("X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After")


@pytest.fixture
def clock(monkeypatch):
    """The time the verify view and the lane read (the page says when it was checked, to the second)."""
    moment = [utcnow().replace(microsecond=0)]
    monkeypatch.setattr(verify_views, "utcnow", lambda: moment[0])
    monkeypatch.setattr(verify_lane, "utcnow", lambda: moment[0])
    return moment


@pytest.fixture
def held(app, ctx, clock):
    """A certificate of Hana Holder's, and its verify address."""
    contentcache.clear(app)
    the_lane = signed_lane.find(app)
    the_lane.pages.clear()
    load_test_framework()
    holder = make_user(email="hana@example.org", name="Hana Holder")
    certificate = make_certificate(holder, make_course("ai-basics", title="AI Basics"))
    return certificate, f"/verify/{format_public_id(certificate.public_id)}"


def both_ways(app, client, path: str, **headers) -> str:
    """The same request answered by the lane, then by the app behind it: the lane answered the first itself, and
    the two are equal but for the rate limit counters (the second request spent one more). Returns the body."""
    the_lane = signed_lane.find(app)
    client.get(path, headers=headers)  # the app answers; the lane keeps it
    before = the_lane.answered
    from_lane = answer(app.wsgi_app, environ_of(client, path, **headers))
    assert the_lane.answered == before + 1, f"the lane did not answer {path}"
    from_app = answer(the_lane.inner, environ_of(client, path, **headers))
    assert the_lane.answered == before + 1
    lane_headers, app_headers = dict(from_lane[1]), dict(from_app[1])
    assert int(lane_headers["X-RateLimit-Remaining"]) == int(app_headers["X-RateLimit-Remaining"]) + 1
    same = [(name, value if name not in RATE else "") for name, value in from_lane[1]]
    assert same == [(name, value if name not in RATE else "") for name, value in from_app[1]]
    assert from_lane[0] == from_app[0]
    assert from_lane[2] == from_app[2], path
    return from_lane[2]


def signed_in(app, email: str, name: str, **user):
    make_user(email=email, name=name, **user)
    app.test_client_class = Client
    browser = app.test_client()
    login(browser, email)
    browser.get("/help")  # "Welcome back" shown and gone: nothing flashed is left
    return browser


def test_the_page_equals_the_apps_in_both_languages_and_costs_no_app_statement(app, held, clock):
    _, url = held
    ann = signed_in(app, "ann@example.org", 'Ann <b>"Reviewer"</b>')
    page = both_ways(app, ann, url)
    assert "✓ Valid" in page and "Hana Holder" in page and "Log out" in page
    assert "Ann &lt;b&gt;&#34;Reviewer&#34;&lt;/b&gt;" in page
    assert f'Checked <time datetime="{clock[0].isoformat()}">' in page
    clock[0] += timedelta(seconds=3)  # the next second's page: only its time differs, filled in by the lane
    later = both_ways(app, ann, url)
    assert later != page and re.sub(r"<time datetime=[^>]*T[^<]*</time>", "", later) == re.sub(
        r"<time datetime=[^>]*T[^<]*</time>", "", page
    )
    assert "Válido" in both_ways(app, ann, url, **{"Accept-Language": "es"})
    # a kept page: no statement of the app's, the lane's one read
    the_lane = signed_lane.find(app)
    reads, answered = the_lane.reads, the_lane.answered
    from tests.conftest import queries_run

    assert queries_run(app, lambda: ann.get(url)) == 0
    assert (the_lane.reads, the_lane.answered) == (reads + 1, answered + 1)


def test_the_lane_counts_the_check_and_spends_the_routes_limit(app, held):
    certificate, url = held
    ann = signed_in(app, "ann@example.org", "Ann Reviewer")
    both_ways(app, ann, url)
    the_lane = signed_lane.find(app)
    # a limit of its own (the counters of a limit are the process's; another test's hits are not in this one's)
    app.config["RATELIMIT_VERIFY"] = "3 per 7 minutes"
    try:
        answered = the_lane.answered
        assert [ann.get(url).status_code for _ in range(4)] == [200, 200, 200, 429]
        assert the_lane.answered == answered + 3  # the refused one went to the app, which said 429
    finally:
        app.config["RATELIMIT_VERIFY"] = "60 per minute"
    db.session.refresh(certificate)
    assert certificate.verification_count == 1  # this client, once a day


def test_two_viewers_each_get_their_own_header_and_the_holder_a_page_of_their_own(app, held):
    _, url = held
    ann = signed_in(app, "ann@example.org", "Ann Reviewer")
    bob = signed_in(app, "bob@example.org", "Bob Second")
    the_lane = signed_lane.find(app)
    ann.get(url)  # the app answers Ann; the lane keeps the page
    answered = the_lane.answered
    bob_page = bob.get(url).get_data(as_text=True)
    assert the_lane.answered == answered + 1  # Bob's from what Ann's request kept
    assert "Bob Second" in bob_page and "Ann Reviewer" not in bob_page
    token = re.search(r'name="csrf_token" value="([^"]+)"', bob_page).group(1)
    switched = bob.post("/language/es", data={"csrf_token": token, "next": url})
    assert switched.status_code in (302, 303)  # his token is his session's: his form is accepted
    assert db.session.scalar(select(User.locale).where(User.email == "bob@example.org")) == "es"
    # the holder's own page is kept for holders: another viewer's request is never answered from it
    hana = app.test_client()
    login(hana, "hana@example.org")
    hana.get("/help")
    holders_page = both_ways(app, hana, url)
    assert "Hana Holder" in holders_page
    the_lane.pages.clear()
    hana.get(url)  # kept for holders again
    carl = signed_in(app, "carl@example.org", "Carl Third")
    first = not_answered(app, lambda: carl.get(url))  # a viewer who does not hold it: not the holder's copy
    assert "Carl Third" in first.get_data(as_text=True) and "Hana Holder" in first.get_data(as_text=True)


def test_a_certificates_first_page_is_filled_in_from_one_of_its_shape(app, held, clock):
    """Another certificate of the same course, status and dates: its very first page comes from the lane, filled
    with its own values, byte for byte the app's; a certificate of another shape is the app's."""
    from credentials.models import Certificate

    certificate, url = held
    ann = signed_in(app, "ann@example.org", "Ann Reviewer")
    both_ways(app, ann, url)
    omar = make_user(email="omar@example.org", name="Omar <O'Brien> & Co")
    second = make_certificate(omar, certificate.course)
    other_url = f"/verify/{format_public_id(second.public_id)}"
    the_lane = signed_lane.find(app)
    answered = the_lane.answered
    from_lane = answer(app.wsgi_app, environ_of(ann, other_url))
    assert the_lane.answered == answered + 1, "the second certificate's first page did not come from the lane"
    from_app = answer(the_lane.inner, environ_of(ann, other_url))
    assert from_lane[2] == from_app[2] and from_lane[0] == from_app[0]
    assert "Omar &lt;O&#39;Brien&gt; &amp; Co" in from_lane[2] and "Hana Holder" not in from_lane[2]
    assert format_public_id(second.public_id) in from_lane[2]
    assert format_public_id(certificate.public_id) not in from_lane[2]
    # a revoked one is another shape: the app draws it
    db.session.execute(update(Certificate).where(Certificate.id == second.id).values(revoked_at=clock[0]))
    db.session.commit()
    revoked = not_answered(app, lambda: ann.get(other_url))
    assert "✗ Revoked" in revoked.get_data(as_text=True)


def test_revocation_suspension_and_expiry_show_on_the_next_request(app, held, clock):
    certificate, url = held
    ann = signed_in(app, "ann@example.org", "Ann Reviewer")
    assert "✓ Valid" in both_ways(app, ann, url)
    admin = make_user(email="admin@example.org", role=Role.ADMIN)
    from credentials import services

    services.suspend(admin, certificate, reason="Under review", until=None, now=clock[0])
    db.session.commit()
    assert "Suspended" in ann.get(url).get_data(as_text=True)  # the very next request
    assert "Suspended" in both_ways(app, ann, url)
    db.session.execute(update(Certificate).where(Certificate.id == certificate.id).values(suspended_at=None))
    db.session.commit()
    assert "✓ Valid" in ann.get(url).get_data(as_text=True)
    # an expiry passing: nothing written, the next request says so
    db.session.execute(
        update(Certificate).where(Certificate.id == certificate.id).values(expires_at=clock[0] + timedelta(days=1))
    )
    db.session.commit()
    assert "✓ Valid" in both_ways(app, ann, url)
    clock[0] += timedelta(days=2)
    assert "Expired" in ann.get(url).get_data(as_text=True)
    assert "Expired" in both_ways(app, ann, url)
    services.revoke(admin, certificate, reason=RevocationReason.ISSUED_IN_ERROR, note="issued by mistake", now=clock[0])
    db.session.commit()
    assert "✗ Revoked" in ann.get(url).get_data(as_text=True)
    assert "✗ Revoked" in both_ways(app, ann, url)


def test_what_the_lane_leaves_to_the_app(app, held):
    certificate, url = held
    shown = format_public_id(certificate.public_id)
    ann = signed_in(app, "ann@example.org", "Ann Reviewer")
    both_ways(app, ann, url)  # kept, and answered by the lane
    # the ID as typed (the app's 301 to the canonical address), an unknown or malformed ID (404)
    assert not_answered(app, lambda: ann.get("/verify/" + shown.lower())).status_code == 301
    unknown = "/verify/" + format_public_id("Z" * 28 if certificate.public_id[0] != "Z" else "Y" * 28)
    assert not_answered(app, lambda: ann.get(unknown)).status_code == 404
    assert not_answered(app, lambda: ann.get("/verify/not-an-id")).status_code == 404
    # the signed credential by content negotiation, a query string, HEAD, a conditional request
    credential = not_answered(app, lambda: ann.get(url, headers={"Accept": "application/ld+json"}))
    assert credential.mimetype == "application/ld+json"
    assert not_answered(app, lambda: ann.get(url + "?lang=es")).status_code == 200
    assert not_answered(app, lambda: ann.head(url)).status_code == 200
    assert not_answered(app, lambda: ann.get(url, headers={"If-None-Match": '"x"'})).status_code == 200
    # an admin, an organization's member (their header and the page's candidate form are theirs), a logout
    for email, role in (("admin@example.org", Role.ADMIN), ("member@example.org", Role.LEARNER)):
        browser = signed_in(app, email, "Someone Else", role=role)
        if role is Role.LEARNER:
            make_org(db.session.scalar(select(User).where(User.email == email)))
        for _ in range(2):
            assert not_answered(app, lambda browser=browser: browser.get(url)).status_code == 200
    copy = app.test_client()
    for cookie in ann._cookies.values():
        copy.set_cookie(cookie.key, cookie.value)
    ann.submit("/logout")
    logged_out = not_answered(app, lambda: copy.get(url))
    assert logged_out.status_code == 200 and "Log out" not in logged_out.get_data(as_text=True)


def test_the_signed_in_page_equals_the_full_render_when_nothing_is_kept(app, held, clock):
    """With the kept answers off (VERIFY_CACHE_SIZE 0) the view draws the page from the certificate's model
    object, the full path: the kept page is that page."""
    _, url = held
    ann = signed_in(app, "ann@example.org", "Ann Reviewer")
    kept = both_ways(app, ann, url)
    app.config["VERIFY_CACHE_SIZE"] = 0
    app.config["CONTENT_CACHE"] = False
    try:
        full = answer(app.wsgi_app, environ_of(ann, url))[2]
    finally:
        app.config["VERIFY_CACHE_SIZE"] = 2000
        app.config["CONTENT_CACHE"] = True
    assert full == kept
