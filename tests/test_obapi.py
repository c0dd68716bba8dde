"""The Open Badges 3.0 API, provider side (obapi/): discovery, RFC 7591 registration, authorization code with
PKCE (S256 only), consent, tokens, refresh, RFC 7009 revocation, getCredentials with the spec's paging headers,
getProfile, Imsx_StatusInfo errors, and disconnecting from the account page.

The walk runs over real HTTP against the app on a loopback port, with Authlib's own OAuth 2.0 client
(requests) as the app and a requests session as the learner's browser. The hostile cases use the test client
and check, for every refusal, the status, the exact error and that no row was written.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from sqlalchemy import func, select, update

from accounts.models import User
from core.audit import AuditEvent
from core.database import utcnow
from core.extensions import db, limiter
from obapi import server
from obapi.models import OAuthAuthorizationCode, OAuthClient, OAuthToken, digest
from tests.factories import PASSWORD, load_test_framework, login, make_certificate, make_course, make_user, sign_in
from tests.test_wallet_js import served

API = "/ims/ob/v3p0"
TIMEOUT = 60  # seconds: requests to the app on loopback (a loaded machine answers slowly, never this slowly)
READ, PROFILE = server.CREDENTIAL_READ, server.PROFILE_READ
REDIRECT = "https://backpack.example/callback"
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, html[:500]
    return match.group(1) or match.group(2)


def registration(**changes) -> dict:
    body = {
        "client_name": "Example Backpack",
        "client_uri": "https://backpack.example/",
        "logo_uri": "https://backpack.example/logo.png",
        "tos_uri": "https://backpack.example/terms",
        "policy_uri": "https://backpack.example/privacy",
        "software_id": "c88b6ed8-269e-448e-99be-7e2ff47167d1",
        "software_version": "1.0",
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "client_secret_basic",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        # the spec's own example asks for upsert too: we register what we offer
        "scope": f"{READ} {server.CREDENTIAL_UPSERT} {PROFILE} offline_access",
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def basic(client_id: str, secret: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def row_counts() -> tuple[int, ...]:
    return tuple(
        db.session.scalar(select(func.count()).select_from(model))
        for model in (OAuthClient, OAuthAuthorizationCode, OAuthToken)
    )


def live_tokens() -> int:
    return db.session.scalar(select(func.count()).select_from(OAuthToken).where(OAuthToken.revoked_at.is_(None)))


def learner_with_certificates(n: int = 3):
    load_test_framework()
    user = make_user(email="pat@example.org", name="Pat Learner")
    for i in range(n):
        make_certificate(user, make_course(f"course-{i}", title=f"Course {i}"))
    db.session.commit()
    return user


# ---- the whole walk over HTTP --------------------------------------------------------------------------------


def browser_login(base: str, email: str) -> requests.Session:
    browser = requests.Session()
    token = csrf_of(browser.get(f"{base}/login").text)
    answer = browser.post(
        f"{base}/login", data={"csrf_token": token, "email": email, "password": PASSWORD}, allow_redirects=False
    )
    assert answer.status_code == 302, answer.text[:300]
    return browser


def consent(browser: requests.Session, url: str, *, allow: bool = True) -> str:
    page = browser.get(url)
    assert page.status_code == 200, page.text[:500]
    decision = {"decision": "allow"} if allow else {"decision": "deny"}
    answer = browser.post(url, data={"csrf_token": csrf_of(page.text), **decision}, allow_redirects=False)
    assert answer.status_code == 302, answer.text[:500]
    return answer.headers["Location"]


def test_a_backpack_connects_reads_refreshes_and_is_revoked_over_http(app, ctx):
    user = learner_with_certificates(3)
    expected_ids = set()
    with served(app) as base:
        for certificate in user_certificates(user):
            expected_ids.add(f"{base}/credentials/{format_id(certificate)}")
        db.session.remove()  # the server's threads write; hold no transaction open meanwhile

        # discovery: the SDD names every URL and the spec's four scopes
        sdd = requests.get(f"{base}{API}/discovery", timeout=TIMEOUT).json()
        scheme = sdd["components"]["securitySchemes"]["OAuth2ACG"]
        flow = scheme["flows"]["authorizationCode"]
        assert sdd["openapi"].startswith("3.0")
        assert sdd["info"]["x-imssf-privacyPolicyUrl"] == f"{base}/privacy/connected-apps"
        assert scheme["type"] == "oauth2" and scheme["x-imssf-registrationUrl"] == f"{base}{API}/register"
        assert (flow["authorizationUrl"], flow["tokenUrl"], flow["refreshUrl"]) == (
            f"{base}{API}/authorize",
            f"{base}{API}/token",
            f"{base}{API}/token",
        )
        assert set(flow["scopes"]) == set(server.SPEC_SCOPES)
        assert requests.get(sdd["info"]["x-imssf-privacyPolicyUrl"], timeout=TIMEOUT).status_code == 200

        # RFC 7591 registration; the spec's example scope comes back without upsert
        registered = requests.post(scheme["x-imssf-registrationUrl"], json=registration(), timeout=TIMEOUT)
        assert registered.status_code == 201, registered.text
        client_info = registered.json()
        assert client_info["scope"] == f"{READ} {PROFILE} offline_access"
        assert client_info["client_secret_expires_at"] == 0 and client_info["redirect_uris"] == [REDIRECT]
        assert len(client_info["client_id"]) >= 32 and len(client_info["client_secret"]) >= 43

        # the app (Authlib's requests client) sends the learner to consent, with PKCE S256 and a state
        app_session = OAuth2Session(
            client_info["client_id"],
            client_info["client_secret"],
            scope=f"{READ} {PROFILE}",
            redirect_uri=REDIRECT,
            code_challenge_method="S256",
        )
        verifier = secrets.token_urlsafe(48)
        url, state = app_session.create_authorization_url(flow["authorizationUrl"], code_verifier=verifier)
        browser = browser_login(base, "pat@example.org")
        consent_page = browser.get(url, timeout=TIMEOUT)
        page = consent_page.text
        assert "Example Backpack" in page and "backpack.example" in page
        # without the app's origin in form-action, browsers would not follow "Allow" to the app
        assert "form-action 'self' https://backpack.example;" in consent_page.headers["Content-Security-Policy"]
        assert "See your valid course and program certificates" in page and "your email address" in page
        location = consent(browser, url)
        assert location.startswith(REDIRECT + "?")
        returned = parse_qs(urlsplit(location).query)
        assert returned["state"] == [state] and len(returned["code"][0]) >= 43

        token = app_session.fetch_token(flow["tokenUrl"], authorization_response=location, code_verifier=verifier)
        assert token["token_type"] == "Bearer" and token["expires_in"] == 3600
        assert token["scope"] == f"{READ} {PROFILE}"

        # stored hashed: the database holds SHA-256 digests, never the values handed out
        with app.app_context():
            client_row = db.session.scalar(select(OAuthClient))
            token_row = db.session.scalar(select(OAuthToken))
            code_row = db.session.scalar(select(OAuthAuthorizationCode))
            assert client_row.client_secret_hash == digest(client_info["client_secret"])
            assert token_row.access_token_hash == digest(token["access_token"])
            assert token_row.refresh_token_hash == digest(token["refresh_token"])
            assert code_row.code_hash == digest(returned["code"][0]) and code_row.used_at is not None
            stored = json.dumps([list(r) for r in db.session.execute(select(OAuthToken.__table__)).all()], default=str)
            assert token["access_token"] not in stored and token["refresh_token"] not in stored
            db.session.remove()

        # getCredentials, two per page: the spec's headers, and every credential verifies as issued
        first = app_session.get(f"{base}{API}/credentials", params={"limit": 2})
        assert first.status_code == 200 and first.headers["X-Total-Count"] == "3"
        links = parse_links(first.headers["Link"])
        assert links == {
            "next": f"{base}{API}/credentials?limit=2&offset=2",
            "last": f"{base}{API}/credentials?limit=2&offset=2",
            "first": f"{base}{API}/credentials?limit=2&offset=0",
        }
        second = app_session.get(links["next"])
        assert second.headers["X-Total-Count"] == "3"
        assert set(parse_links(second.headers["Link"])) == {"last", "first", "prev"}
        credentials = first.json()["credential"] + second.json()["credential"]
        assert len(first.json()["credential"]) == 2 and len(credentials) == 3
        assert {c["id"] for c in credentials} == expected_ids
        for credential in credentials:
            verdict = requests.post(f"{base}/api/v1/verify", json=credential, timeout=TIMEOUT).json()
            assert verdict["verified"] is True and verdict["verdict"] == "valid", verdict

        profile = app_session.get(f"{base}{API}/profile").json()
        assert profile["type"] == ["Profile"] and profile["name"] == "Pat Learner"
        assert profile["email"] == "pat@example.org" and profile["id"].startswith("urn:uuid:")

        # refresh: a new pair; the old access token and the old refresh token stop working
        old = dict(token)
        new = app_session.refresh_token(flow["refreshUrl"])
        assert new["access_token"] != old["access_token"] and new["refresh_token"] != old["refresh_token"]
        assert bearer_get(base, "/credentials", old["access_token"]).status_code == 401
        assert app_session.get(f"{base}{API}/credentials").status_code == 200

        # RFC 7009 revocation of the refresh token ends the pair: the access token answers 401 at once
        revoked = app_session.revoke_token(
            f"{base}{API}/revoke", token=new["refresh_token"], token_type_hint="refresh_token"
        )
        assert revoked.status_code == 200
        refused = bearer_get(base, "/credentials", new["access_token"])
        assert refused.status_code == 401 and refused.json()["imsx_codeMajor"] == "failure"
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")

        # connect again, then the learner disconnects the app from the account page
        verifier = secrets.token_urlsafe(48)
        url, _ = app_session.create_authorization_url(flow["authorizationUrl"], code_verifier=verifier)
        again = app_session.fetch_token(
            flow["tokenUrl"], authorization_response=consent(browser, url), code_verifier=verifier
        )
        assert bearer_get(base, "/profile", again["access_token"]).status_code == 200
        account = browser.get(f"{base}/account").text
        assert "Connected apps" in account and "Disconnect Example Backpack" in account
        action = f"/account/connected-apps/{client_info['client_id']}/disconnect"
        assert action in account
        answer = browser.post(f"{base}{action}", data={"csrf_token": csrf_of(account)}, allow_redirects=False)
        assert answer.status_code == 303
        assert bearer_get(base, "/profile", again["access_token"]).status_code == 401
        refreshed = requests.post(
            flow["tokenUrl"],
            data={"grant_type": "refresh_token", "refresh_token": again["refresh_token"]},
            auth=(client_info["client_id"], client_info["client_secret"]),
            timeout=TIMEOUT,
        )
        assert refreshed.status_code == 400 and refreshed.json()["error"] == "invalid_grant"
        assert "No app is connected" in browser.get(f"{base}/account").text


def user_certificates(user):
    from credentials.models import Certificate

    return db.session.scalars(select(Certificate).where(Certificate.user_id == user.id)).all()


def format_id(certificate) -> str:
    from credentials.ids import format_public_id

    return format_public_id(certificate.public_id)


def parse_links(header: str) -> dict[str, str]:
    return {rel: url for url, rel in re.findall(r'<([^>]+)>; rel="([a-z]+)"', header)}


def bearer_get(base: str, path: str, access_token: str):
    return requests.get(f"{base}{API}{path}", headers={"Authorization": f"Bearer {access_token}"}, timeout=TIMEOUT)


# ---- the test-client world for hostile input -----------------------------------------------------------------


class World:
    """A registered app and a signed-in learner with certificates, driven through the test client."""

    def __init__(self, client, prebuilt, *, certificates: int = 1) -> None:
        self.client = client
        # the learner's rows are built once per module and copied back (tests/conftest.py, prebuilt); the app's
        # registration and the login below go through HTTP in every test
        user_id = prebuilt(lambda: learner_with_certificates(certificates).id, key=f"learner-{certificates}")
        self.user = db.session.get(User, user_id)
        answer = client.post(f"{API}/register", json=registration())
        assert answer.status_code == 201, answer.get_data(as_text=True)
        self.client_id, self.secret = answer.json["client_id"], answer.json["client_secret"]
        assert login(client, "pat@example.org").status_code == 302

    def authorize_url(self, **changes) -> str:
        verifier, challenge = pkce()
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": REDIRECT,
            "scope": f"{READ} {PROFILE}",
            "state": "st-123",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        params.update(changes)
        self.verifier = verifier
        return f"{API}/authorize?" + urlencode({k: v for k, v in params.items() if v is not None})

    def code(self, **changes) -> tuple[str, str]:
        """(code, verifier) after the learner allows."""
        url = self.authorize_url(**changes)
        token = csrf_of(self.client.get(url).get_data(as_text=True))
        answer = self.client.post(url, data={"csrf_token": token, "decision": "allow"})
        assert answer.status_code == 302, answer.get_data(as_text=True)[:300]
        return parse_qs(urlsplit(answer.headers["Location"]).query)["code"][0], self.verifier

    def exchange(self, code: str, verifier: str | None, *, secret: str | None = None, **extra):
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
        if verifier is not None:
            data["code_verifier"] = verifier
        data.update(extra)
        return self.client.post(f"{API}/token", data=data, headers=basic(self.client_id, secret or self.secret))

    def tokens(self) -> dict:
        answer = self.exchange(*self.code())
        assert answer.status_code == 200, answer.json
        return answer.json

    def api(self, path: str, access_token: str, **kwargs):
        return self.client.get(f"{API}{path}", headers={"Authorization": f"Bearer {access_token}"}, **kwargs)


@pytest.fixture
def world(app, client, ctx, prebuilt):
    limiter.reset()
    return World(client, prebuilt)


# ---- registration ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "error", "words"),
    [
        (b"{not json", 400, "invalid_client_metadata", "not valid JSON"),
        (b"[1, 2]", 400, "invalid_client_metadata", "must be a JSON object"),
        (b"[" * 5000 + b"]" * 5000, 400, "invalid_client_metadata", "not valid JSON"),
        (b'"\xff"', 400, "invalid_client_metadata", "not valid JSON"),
        (json.dumps(registration(client_name="x" * 20_000)).encode(), 413, "invalid_request", "larger than 16 KB"),
        (json.dumps(registration(redirect_uris=None)).encode(), 400, "invalid_redirect_uri", "non-empty array"),
        (json.dumps(registration(redirect_uris=[])).encode(), 400, "invalid_redirect_uri", "non-empty array"),
        (
            json.dumps(registration(redirect_uris=["http://backpack.example/cb"])).encode(),
            400,
            "invalid_redirect_uri",
            "must use https",
        ),
        (
            json.dumps(registration(redirect_uris=["https://backpack.example/cb#x"])).encode(),
            400,
            "invalid_redirect_uri",
            "fragment",
        ),
        (
            json.dumps(registration(redirect_uris=["https://me@backpack.example/cb"])).encode(),
            400,
            "invalid_redirect_uri",
            "user information",
        ),
        (
            json.dumps(registration(redirect_uris=["javascript:alert(1)"])).encode(),
            400,
            "invalid_redirect_uri",
            "absolute URL",
        ),
        (json.dumps(registration(redirect_uris=["/relative"])).encode(), 400, "invalid_redirect_uri", "absolute URL"),
        (
            json.dumps(registration(redirect_uris=["https://a.example/ cb"])).encode(),
            400,
            "invalid_redirect_uri",
            "spaces",
        ),
        (
            json.dumps(registration(redirect_uris=["https://[::1/cb"])).encode(),
            400,
            "invalid_redirect_uri",
            "not a valid URL",
        ),
        (b'{"redirect_uris": ["https://a;script-src:*/cb"]}', 400, "invalid_redirect_uri", "not a valid URL"),
        (b'{"redirect_uris": ["https://a;b.example/cb"]}', 400, "invalid_redirect_uri", "host name cannot"),
        (b'{"redirect_uris": ["https://a\'b.example/cb"]}', 400, "invalid_redirect_uri", "host name cannot"),
        (
            json.dumps(registration(redirect_uris=[f"https://a.example/{i}" for i in range(11)])).encode(),
            400,
            "invalid_redirect_uri",
            "At most 10",
        ),
        (
            json.dumps(registration(client_name=None)).encode(),
            400,
            "invalid_client_metadata",
            "client_name is required",
        ),
        (json.dumps(registration(client_name=" ")).encode(), 400, "invalid_client_metadata", "non-empty string"),
        (
            json.dumps(registration(client_uri="javascript:alert(1)")).encode(),
            400,
            "invalid_client_metadata",
            "client_uri",
        ),
        (json.dumps(registration(scope=None)).encode(), 400, "invalid_client_metadata", "scope is required"),
        (json.dumps(registration(scope="openid admin")).encode(), 400, "invalid_client_metadata", "unknown: openid"),
        (
            json.dumps(registration(scope=server.CREDENTIAL_UPSERT)).encode(),
            400,
            "invalid_client_metadata",
            "None of the requested scopes",
        ),
        (
            json.dumps(registration(token_endpoint_auth_method="none")).encode(),
            400,
            "invalid_client_metadata",
            "public clients",
        ),
        (json.dumps(registration(grant_types=["implicit"])).encode(), 400, "invalid_client_metadata", "grant_types"),
        (json.dumps(registration(response_types=["token"])).encode(), 400, "invalid_client_metadata", "response_types"),
        (json.dumps(registration(contacts="a@b.example")).encode(), 400, "invalid_client_metadata", "contacts"),
    ],
)
def test_bad_registrations_are_refused_precisely_and_write_nothing(app, client, ctx, body, status, error, words):
    limiter.reset()
    before = row_counts()
    answer = client.post(f"{API}/register", data=body, content_type="application/json")
    assert answer.status_code == status, answer.get_data(as_text=True)
    assert answer.json["error"] == error and words in answer.json["error_description"], answer.json
    assert row_counts() == before


def test_registration_must_be_json_and_is_rate_limited(app, client, ctx, monkeypatch):
    limiter.reset()
    answer = client.post(f"{API}/register", data={"client_name": "x"})
    assert answer.status_code == 400 and "application/json" in answer.json["error_description"]
    monkeypatch.setitem(app.config, "RATELIMIT_OB_REGISTER", "3 per hour")
    statuses = [client.post(f"{API}/register", json=registration()).status_code for _ in range(4)]
    assert statuses == [201, 201, 201, 429]
    refused = client.post(f"{API}/register", json=registration())
    assert refused.json["error"] == "temporarily_unavailable" and row_counts()[0] == 3
    # a loopback http address is a native app's listener (RFC 8252): accepted
    limiter.reset()
    local = client.post(f"{API}/register", json=registration(redirect_uris=["http://127.0.0.1:8765/cb"]))
    assert local.status_code == 201


# ---- authorization -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "redirect_uri",
    [
        REDIRECT + "/extra",  # prefix match
        REDIRECT + "?x=1",
        REDIRECT + "#frag",
        REDIRECT + "/",
        "https://backpack.example:8443/callback",  # another port
        "https://evil.example/callback",  # another host
        "https://backpack.example.evil.example/callback",
        "https://evil.example@backpack.example/callback",  # userinfo
        "https://backpack.example@evil.example/callback",
        "HTTPS://BACKPACK.EXAMPLE/callback",
        "http://backpack.example/callback",
        "https://backpack.example/Callback",
        "https://backpack.example/callback%00",
    ],
)
def test_redirect_uri_tricks_stop_at_our_page_and_write_nothing(world, redirect_uri):
    before = row_counts()
    url = world.authorize_url(redirect_uri=redirect_uri)
    answer = world.client.get(url)
    assert answer.status_code == 400 and "Location" not in answer.headers
    page = answer.get_data(as_text=True)
    assert "did not register" in page and "Nothing from your account was shared" in page
    # the consent POST (a forged form) gets the same answer
    token = world.client.csrf_token("/account")
    forged = world.client.post(url, data={"csrf_token": token, "decision": "allow"})
    assert forged.status_code == 400 and "Location" not in forged.headers
    assert row_counts() == before


def test_unknown_client_and_missing_redirect_uri_are_refused_here(world):
    for url, words in (
        (world.authorize_url(client_id="nobody"), "not registered with us"),
        (world.authorize_url(client_id=None), "not registered with us"),
        (world.authorize_url(redirect_uri=None), "did not register"),
        (world.authorize_url(response_type='co"de\t'), "did not register"),  # Authlib would echo it
    ):
        answer = world.client.get(url)
        assert answer.status_code == 400 and words in answer.get_data(as_text=True), url
    assert row_counts()[1:] == (0, 0)


@pytest.mark.parametrize(
    ("changes", "error", "words"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request", "PKCE is required"),
        ({"code_challenge_method": None}, "invalid_request", "must be S256"),
        ({"code_challenge_method": "plain"}, "invalid_request", "must be S256"),
        ({"code_challenge": "short"}, "invalid_request", "Invalid 'code_challenge'"),
        ({"scope": f"{READ} {server.CREDENTIAL_UPSERT}"}, "invalid_scope", ""),  # registered without upsert
        ({"scope": "admin"}, "invalid_scope", ""),
        ({"scope": None}, "invalid_scope", ""),
        ({"response_type": "token"}, "unsupported_response_type", ""),
    ],
)
def test_bad_authorization_requests_go_back_to_the_app_with_the_error_and_state(world, changes, error, words):
    before = row_counts()
    url = world.authorize_url(**changes)
    for answer in (
        world.client.get(url),
        world.client.post(url, data={"csrf_token": world.client.csrf_token("/account"), "decision": "allow"}),
    ):
        assert answer.status_code == 302, answer.get_data(as_text=True)[:300]
        location = answer.headers["Location"]
        assert location.startswith(REDIRECT + "?")
        query = parse_qs(urlsplit(location).query)
        assert query["error"] == [error] and query["state"] == ["st-123"] and "code" not in query
        assert words in query.get("error_description", [""])[0]
    assert row_counts() == before


def test_scope_escalation_beyond_the_registration_is_refused(app, client, ctx):
    limiter.reset()
    narrow = client.post(f"{API}/register", json=registration(scope=READ)).json
    world = World.__new__(World)
    world.client, world.client_id, world.secret = client, narrow["client_id"], narrow["client_secret"]
    learner_with_certificates(0)
    sign_in(client, "pat@example.org")
    answer = client.get(world.authorize_url(scope=f"{READ} {PROFILE}"))
    assert answer.status_code == 302 and "error=invalid_scope" in answer.headers["Location"]
    answer = client.get(world.authorize_url(scope=READ))
    assert answer.status_code == 200  # what it registered is fine
    assert "your email address" not in answer.get_data(as_text=True)  # and the page lists only that


def test_consent_needs_login_csrf_and_a_decision(world):
    url = world.authorize_url()
    assert world.client.post(url, data={"decision": "allow"}).status_code == 400  # no CSRF token
    token = world.client.csrf_token("/account")
    for undecided in ({}, {"decision": "maybe"}, {"decision": ["allow", "deny"]}):
        assert world.client.post(url, data={"csrf_token": token, **undecided}).status_code == 400
    denied = world.client.post(url, data={"csrf_token": world.client.csrf_token("/account"), "decision": "deny"})
    assert denied.status_code == 302
    assert parse_qs(urlsplit(denied.headers["Location"]).query) == {
        "error": ["access_denied"],
        "error_description": ["The resource owner or authorization server denied the request"],
        "state": ["st-123"],
    }
    assert row_counts()[1:] == (0, 0)
    world.client.post("/logout", data={"csrf_token": world.client.csrf_token("/account")})
    anonymous = world.client.get(url)
    assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/login?next=")
    assert "code_challenge" in anonymous.headers["Location"]  # back to the same request after logging in


# ---- the token endpoint ------------------------------------------------------------------------------------------


def test_pkce_verifier_must_match(world):
    code, verifier = world.code()
    before = row_counts()
    wrong = world.exchange(code, pkce()[0])
    assert wrong.status_code == 400 and wrong.json == {
        "error": "invalid_grant",
        "error_description": "Code challenge failed.",
    }
    missing = world.exchange(code, None)
    assert missing.status_code == 400 and missing.json["error"] == "invalid_request"
    assert "code_verifier" in missing.json["error_description"]
    malformed = world.exchange(code, "x")
    assert malformed.status_code == 400 and "Invalid 'code_verifier'" in malformed.json["error_description"]
    assert row_counts() == before
    # the failed tries did not spend the code: the right verifier still works, once
    assert world.exchange(code, verifier).status_code == 200


def test_a_reused_code_is_refused_and_revokes_what_it_issued(world):
    code, verifier = world.code()
    first = world.exchange(code, verifier)
    assert first.status_code == 200
    access = first.json["access_token"]
    assert world.api("/profile", access).status_code == 200
    before = row_counts()
    again = world.exchange(code, verifier)
    assert again.status_code == 400 and again.json["error"] == "invalid_grant"
    assert "already used" in again.json["error_description"]
    assert row_counts() == before and live_tokens() == 0
    assert world.api("/profile", access).status_code == 401
    refreshed = world.client.post(
        f"{API}/token",
        data={"grant_type": "refresh_token", "refresh_token": first.json["refresh_token"]},
        headers=basic(world.client_id, world.secret),
    )
    assert refreshed.status_code == 400


def test_token_requests_with_the_wrong_client_redirect_or_age_are_refused(world):
    code, verifier = world.code()
    before = row_counts()
    bad_secret = world.exchange(code, verifier, secret="wrong")
    assert bad_secret.status_code == 401 and bad_secret.json["error"] == "invalid_client"
    other = world.client.post(f"{API}/register", json=registration(client_name="Other")).json
    stolen = world.client.post(
        f"{API}/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier},
        headers=basic(other["client_id"], other["client_secret"]),
    )
    assert stolen.status_code == 400 and "another client" in stolen.json["error_description"]
    before = row_counts()
    moved = world.exchange(code, verifier, redirect_uri="https://backpack.example/other")
    assert moved.status_code == 400 and moved.json["error_description"] == "Invalid 'redirect_uri' in request."
    unknown = world.exchange("x" * 43, verifier)
    assert unknown.status_code == 400 and unknown.json["error"] == "invalid_grant"
    huge = world.exchange("x" * 10_000, verifier)
    assert huge.status_code == 400 and huge.json["error"] == "invalid_grant"
    wrong_grant = world.client.post(
        f"{API}/token",
        data={"grant_type": "password", "username": "a", "password": "b"},
        headers=basic(world.client_id, world.secret),
    )
    assert wrong_grant.status_code == 400 and wrong_grant.json["error"] == "unsupported_grant_type"
    odd_grant = world.client.post(
        f"{API}/token", data={"grant_type": 'a"\t\u00e9'}, headers=basic(world.client_id, world.secret)
    )
    assert odd_grant.status_code == 400 and odd_grant.json["error"] == "unsupported_grant_type"
    too_big = world.client.post(
        f"{API}/token",
        data={"grant_type": "authorization_code", "code": "x" * 20_000},
        headers=basic(world.client_id, world.secret),
    )
    assert too_big.status_code == 413 and too_big.json["error"] == "invalid_request"
    assert row_counts() == before
    db.session.execute(update(OAuthAuthorizationCode).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    expired = world.exchange(code, verifier)
    assert expired.status_code == 400 and "expired" in expired.json["error_description"]
    assert row_counts() == before and live_tokens() == 0


def test_refresh_rotates_refuses_escalation_and_a_replay_ends_the_connection(world):
    tokens = world.tokens()

    def refresh(refresh_token, **extra):
        return world.client.post(
            f"{API}/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh_token, **extra},
            headers=basic(world.client_id, world.secret),
        )

    before = row_counts()
    escalated = refresh(tokens["refresh_token"], scope=f"{READ} {PROFILE} {server.PROFILE_UPDATE}")
    assert escalated.status_code == 400 and escalated.json["error"] == "invalid_scope"
    assert row_counts() == before and world.api("/profile", tokens["access_token"]).status_code == 200
    narrowed = refresh(tokens["refresh_token"], scope=READ)
    assert narrowed.status_code == 200 and narrowed.json["scope"] == READ
    assert world.api("/profile", narrowed.json["access_token"]).status_code == 403
    assert world.api("/credentials", narrowed.json["access_token"]).status_code == 200
    replay = refresh(tokens["refresh_token"])  # the rotated-out refresh token, presented again
    assert replay.status_code == 400 and "already used or revoked" in replay.json["error_description"]
    assert live_tokens() == 0
    assert world.api("/credentials", narrowed.json["access_token"]).status_code == 401


def test_revocation_endpoint_follows_rfc_7009(world):
    tokens = world.tokens()
    revoke = lambda data, headers=None: world.client.post(  # noqa: E731
        f"{API}/revoke", data=data, headers=headers or basic(world.client_id, world.secret)
    )
    assert revoke({"token": "not-a-token"}).status_code == 200  # unknown: 200, nothing to learn
    assert revoke({"token": tokens["access_token"]}, basic(world.client_id, "wrong")).status_code == 401
    assert revoke({}).json["error"] == "invalid_request"
    assert (
        revoke({"token": tokens["access_token"], "token_type_hint": "bogus"}).json["error"] == "unsupported_token_type"
    )
    assert live_tokens() == 1
    assert revoke({"token": tokens["access_token"], "token_type_hint": "access_token"}).status_code == 200
    assert live_tokens() == 0 and world.api("/profile", tokens["access_token"]).status_code == 401
    assert revoke({"token": tokens["access_token"]}).status_code == 200  # twice: still 200


# ---- the resource endpoints --------------------------------------------------------------------------------------


def test_api_errors_are_imsx_status_info(world):
    tokens = world.tokens()
    access = tokens["access_token"]

    def imsx(answer, status, minor):
        assert answer.status_code == status, answer.get_data(as_text=True)
        body = answer.json
        assert body["imsx_codeMajor"] in ("failure", "unsupported") and body["imsx_severity"] == "error"
        assert body["imsx_codeMinor"]["imsx_codeMinorField"][0]["imsx_codeMinorFieldValue"] == minor
        assert body["imsx_description"]
        return body

    imsx(world.client.get(f"{API}/credentials"), 401, "unauthorizedrequest")
    assert world.client.get(f"{API}/credentials").headers["WWW-Authenticate"] == 'Bearer realm="Open Badges API"'
    assert 'error="invalid_token"' in world.api("/profile", "nope").headers["WWW-Authenticate"]
    imsx(world.api("/credentials", "nope"), 401, "unauthorizedrequest")
    imsx(world.api("/credentials", "x" * 5000), 401, "unauthorizedrequest")
    imsx(world.client.get(f"{API}/profile", headers={"Authorization": f"Basic {access}"}), 401, "unauthorizedrequest")
    for query in (
        "limit=0",
        "limit=-1",
        "limit=abc",
        "limit=1e3",
        "limit=٣",
        "offset=-1",
        "offset=x",
        "since=yesterday",
        "since=2026-13-45T00:00:00Z",
    ):
        body = imsx(world.api("/credentials?" + query, access), 400, "invalid_query_parameter")
        assert query.split("=")[0] in body["imsx_description"], (query, body)
    assert imsx(world.client.post(f"{API}/credentials", json={}), 405, "not_allowed")["imsx_codeMajor"] == "unsupported"
    imsx(world.client.put(f"{API}/profile", json={}), 405, "not_allowed")
    imsx(world.client.delete(f"{API}/profile"), 405, "not_allowed")
    imsx(world.client.get(f"{API}/nothing-here"), 404, "unknown")
    with_profile_only = world.client.post(f"{API}/register", json=registration(scope=PROFILE)).json
    world.client_id, world.secret = with_profile_only["client_id"], with_profile_only["client_secret"]
    profile_token = world.exchange(*world.code(scope=PROFILE)).json["access_token"]
    imsx(world.api("/credentials", profile_token), 403, "forbidden")
    challenge = world.api("/credentials", profile_token).headers["WWW-Authenticate"]
    assert challenge == f'Bearer realm="Open Badges API", error="insufficient_scope", scope="{READ}"'


def test_credentials_paging_since_and_what_is_left_out(app, client, ctx, prebuilt):
    from credentials.models import RevocationReason
    from credentials.services import revoke

    limiter.reset()
    world = World(client, prebuilt, certificates=5)
    access = world.tokens()["access_token"]
    everything = world.api("/credentials?limit=100", access)
    assert everything.headers["X-Total-Count"] == "5" and len(everything.json["credential"]) == 5
    assert set(parse_links(everything.headers["Link"])) == {"first", "last"}  # complete: no next, no prev
    huge = world.api("/credentials?limit=100000", access)
    assert "limit=100&" in huge.headers["Link"]  # served with the largest page we give
    middle = world.api("/credentials?limit=2&offset=2", access)
    assert [c["id"] for c in middle.json["credential"]] == [c["id"] for c in everything.json["credential"][2:4]]
    links = parse_links(middle.headers["Link"])
    assert links["next"].endswith("limit=2&offset=4") and links["prev"].endswith("limit=2&offset=0")
    assert links["last"].endswith("limit=2&offset=4") and links["first"].endswith("limit=2&offset=0")
    beyond = world.api("/credentials?limit=2&offset=50", access)
    assert beyond.json == {"credential": []} and parse_links(beyond.headers["Link"])["prev"].endswith("offset=4")
    future = world.api("/credentials?since=2999-01-01T00:00:00Z", access)
    assert future.headers["X-Total-Count"] == "0" and future.json == {"credential": []}
    assert "since=2999-01-01T00%3A00%3A00Z" in future.headers["Link"]
    certificate = user_certificates(world.user)[0]
    revoke(world.user, certificate, reason=RevocationReason.HOLDER_REQUEST, note="Asked to.", now=utcnow())
    db.session.commit()
    after = world.api("/credentials?limit=100", access)
    assert after.headers["X-Total-Count"] == "4"
    assert format_id(certificate) not in json.dumps(after.json)


def test_discovery_is_public_and_cacheable(client):
    answer = client.get(f"{API}/discovery")
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "public, max-age=300"
    sdd = answer.json
    assert "Set-Cookie" not in answer.headers
    scopes = sdd["components"]["securitySchemes"]["OAuth2ACG"]["flows"]["authorizationCode"]["scopes"]
    assert list(scopes) == list(server.SPEC_SCOPES)
    assert "405" in scopes[server.CREDENTIAL_UPSERT] and "405" in scopes[server.PROFILE_UPDATE]
    assert sdd["paths"]["/credentials"]["get"]["operationId"] == "getCredentials"
    assert client.get("/privacy/connected-apps").status_code == 200


# ---- the account page ------------------------------------------------------------------------------------------


def test_disconnect_needs_csrf_and_a_second_click_changes_nothing(world):
    tokens = world.tokens()
    account = world.client.get("/account").get_data(as_text=True)
    assert "Example Backpack" in account and "See your valid course and program certificates" in account
    action = f"/account/connected-apps/{world.client_id}/disconnect"
    assert world.client.post(action).status_code == 400  # no CSRF token
    assert live_tokens() == 1
    token = csrf_of(account)
    first = world.client.post(action, data={"csrf_token": token})
    assert first.status_code == 303 and first.headers["Location"].endswith("/account#apps-h")
    assert world.api("/credentials", tokens["access_token"]).status_code == 401
    assert "is disconnected" in world.client.get("/account").get_data(as_text=True)
    second = world.client.post(action, data={"csrf_token": token}, follow_redirects=True)
    assert "not connected to your account" in second.get_data(as_text=True)
    assert world.client.post("/account/connected-apps/nobody/disconnect", data={"csrf_token": token}).status_code == 303
    # another learner cannot disconnect this learner's app (nothing of theirs is connected)
    assert live_tokens() == 0


def audit_rows() -> list[tuple]:
    return [
        (e.action, e.actor_id, e.actor_label, e.target_type, e.target_id, e.summary, e.detail)
        for e in db.session.scalars(select(AuditEvent).where(AuditEvent.action.like("oauth.%")).order_by(AuditEvent.id))
    ]


def test_connecting_and_disconnecting_are_both_audited(world):
    url = world.authorize_url()
    # refusals and a denial connect nothing, so they write no audit row
    assert world.client.post(url, data={"decision": "allow"}).status_code == 400  # no CSRF token
    denied = world.client.post(url, data={"csrf_token": world.client.csrf_token("/account"), "decision": "deny"})
    assert denied.status_code == 302 and "error=access_denied" in denied.headers["Location"]
    assert audit_rows() == []
    world.code(scope=READ)
    row = ("oauth.connected", world.user.id, "pat@example.org", "oauth_client", world.client_id)
    first = (
        *row,
        f"pat@example.org: Example Backpack ({READ})",
        {"after": {"client_name": "Example Backpack", "scopes": [READ], "redirect_uri": REDIRECT}},
    )
    assert audit_rows() == [first]
    world.tokens()  # connects again with both scopes: a second row; exchanging the code adds none
    second = (
        *row,
        f"pat@example.org: Example Backpack ({READ} {PROFILE})",
        {"after": {"client_name": "Example Backpack", "scopes": [READ, PROFILE], "redirect_uri": REDIRECT}},
    )
    assert audit_rows() == [first, second]
    token = world.client.csrf_token("/account")
    answer = world.client.post(f"/account/connected-apps/{world.client_id}/disconnect", data={"csrf_token": token})
    assert answer.status_code == 303
    db.session.expire_all()
    assert audit_rows()[2:] == [
        (
            "oauth.disconnected",
            world.user.id,
            "pat@example.org",
            "oauth_client",
            world.client_id,
            "pat@example.org: Example Backpack",
            {},
        )
    ]


def test_another_learners_disconnect_does_not_touch_this_connection(world, other_client):
    tokens = world.tokens()
    make_user(email="sam@example.org")
    sign_in(other_client, "sam@example.org")
    token = other_client.csrf_token("/account")
    answer = other_client.post(f"/account/connected-apps/{world.client_id}/disconnect", data={"csrf_token": token})
    assert answer.status_code == 303
    assert world.api("/credentials", tokens["access_token"]).status_code == 200


def test_a_deactivated_learners_tokens_stop_at_once(world):
    tokens = world.tokens()
    world.user.active = False
    db.session.commit()
    assert world.api("/profile", tokens["access_token"]).status_code == 401


def test_two_requests_racing_with_one_code_get_one_token(app, client, ctx, prebuilt):
    """The same code exchanged twice at once over real connections: the conditional UPDATE lets one through; the
    other is a replay, refused, and (RFC 6749 §4.1.2) the tokens the code gave are revoked."""
    import threading

    limiter.reset()
    world = World(client, prebuilt)
    code, verifier = world.code()
    with served(app) as base:
        db.session.remove()
        start, answers = threading.Barrier(2), []

        def post() -> None:
            start.wait()
            answer = requests.post(
                f"{base}{API}/token",
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": REDIRECT,
                    "code_verifier": verifier,
                },
                auth=(world.client_id, world.secret),
                timeout=TIMEOUT,
            )
            answers.append((answer.status_code, answer.json()))

        racers = [threading.Thread(target=post) for _ in range(2)]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join()
    answers.sort(key=lambda a: a[0])
    assert [status for status, _ in answers] == [200, 400], answers
    assert "already used" in answers[1][1]["error_description"]
    assert row_counts()[2] == 1 and live_tokens() == 0


def test_a_client_registered_for_client_secret_post_must_use_it(app, client, ctx, prebuilt):
    limiter.reset()
    world = World(client, prebuilt)
    posted = client.post(f"{API}/register", json=registration(token_endpoint_auth_method="client_secret_post")).json
    assert posted["token_endpoint_auth_method"] == "client_secret_post"
    world.client_id, world.secret = posted["client_id"], posted["client_secret"]
    code, verifier = world.code()
    as_basic = world.exchange(code, verifier)  # registered for post, sent as basic: refused, code not spent
    assert as_basic.status_code == 401 and as_basic.json["error"] == "invalid_client"
    as_post = client.post(
        f"{API}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
            "client_id": world.client_id,
            "client_secret": world.secret,
        },
    )
    assert as_post.status_code == 200 and as_post.json["token_type"] == "Bearer"


def test_the_daily_prune_deletes_only_what_ended_more_than_a_day_ago(world):
    from obapi import services

    live = world.tokens()
    world.tokens()
    now = utcnow()
    ended = db.session.scalars(select(OAuthToken).order_by(OAuthToken.id)).all()[1]
    ended.revoked_at = now - timedelta(days=2)
    old_code = db.session.scalars(select(OAuthAuthorizationCode).order_by(OAuthAuthorizationCode.id)).first()
    old_code.expires_at = now - timedelta(days=2)
    db.session.commit()
    assert row_counts()[1:] == (2, 2)
    assert services.prune(now=now) == (1, 1)
    db.session.commit()
    assert row_counts()[1:] == (1, 1)
    assert world.api("/profile", live["access_token"]).status_code == 200  # the live one (its code gone) still works
    assert services.prune(now=now + timedelta(days=92)) == (1, 1)  # its refresh token ended 90 days in
