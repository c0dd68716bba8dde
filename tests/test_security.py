"""CSRF, security headers, request size, rate limits, the `next` helper, and the authorization walk."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from werkzeug.routing import IntegerConverter

from accounts.models import Role, User
from accounts.redirects import safe_next
from core.extensions import db
from tests.factories import login, make_employer, make_user

# endpoints anyone may use without logging in
PUBLIC = {
    "static",
    "core.index",
    "core.health",
    "core.help",
    "accounts.login",
    "accounts.register",
    "accounts.forgot_password",
    "accounts.reset_password",
    "accounts.verify_email",
    "accounts.set_language",  # the language switcher: a GET only sets a cookie
    "notifications.unsubscribe",
    "courses.catalog",
    "courses.course",
    "courses.program_list",
    "courses.program",
    "courses.media",
    "skills.explorer",
    "skills.skill",
    "skills.occupation",
    "credentials.verify",
    "credentials.verify_certificate",
    "credentials.api_certificate",
    "credentials.openapi",
    "credentials.credential_json",
    "credentials.status_list",
    "credentials.did_json",
    "credentials.issuer_profile",
    "credentials.api_verify",
    "credentials.verify_upload",
    "credentials.badge_svg",
    "credentials.badge_png",
    "orgs.about",
    "orgs.verify_email",  # a signed link; it only confirms the address it was sent to
    "orgs.join",  # the consent page explains and asks the visitor to log in; joining needs an account
    "orgs.join_with_code",
    "orgs.join_code",
    "credentials.certificate_png",  # the verify page's Open Graph image: unfurlers have no account
    "credentials.issuer_about",
    # the VC-API exchange a wallet posts to (no session: the single-use challenge is the authority) and the VCALM
    # interaction URL that names it (tests/test_wallet.py covers both)
    "credentials.wallet_exchange",
    "credentials.wallet_interaction",
    # the Open Badges API (obapi/): discovery and open client registration are public by the spec; the token and
    # revocation endpoints authenticate the app by its secret, the resources by a bearer token (checked below and
    # in tests/test_obapi.py); the page about what connected apps see is public
    "obapi.discovery",
    "obapi.register",
    "obapi.token",
    "obapi.revoke",
    "obapi.get_credentials",
    "obapi.get_profile",
    "obapi.upsert_credential",
    "obapi.put_profile",
    "obapi.privacy",
}


def test_post_without_csrf_token_is_refused_and_writes_nothing(client, ctx):
    response = client.post(
        "/register",
        data={
            "name": "Eve",
            "email": "eve@example.org",
            "password": "violet tractor umbrella",
            "confirm": "violet tractor umbrella",
        },
    )
    assert response.status_code == 400
    assert "form expired" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(User)) == 0


def test_post_with_a_forged_csrf_token_is_refused(client, ctx):
    make_user(email="dana@example.org")
    response = client.post("/login", data={"csrf_token": "forged", "email": "dana@example.org", "password": "x" * 12})
    assert response.status_code == 400


def test_security_headers_on_every_response(client):
    for path in ("/", "/login", "/does-not-exist", "/static/css/app.css"):
        with client.get(path) as response:
            headers = response.headers
        csp = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
        assert "Strict-Transport-Security" not in headers


def test_hsts_when_served_over_https(client):
    response = client.get("/", base_url="https://localhost")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_templates_have_no_inline_script_or_style(client):
    html = client.get("/register").get_data(as_text=True)
    assert "<script" not in html
    assert " style=" not in html and "<style" not in html


def test_ten_megabyte_body_is_refused_with_413_and_writes_nothing(client, ctx):
    token = client.csrf_token("/register")
    big = "x" * (10 * 1024 * 1024)
    response = client.post(
        "/register",
        data={
            "csrf_token": token,
            "name": big,
            "email": "big@example.org",
            "password": "violet tractor umbrella",
            "confirm": "violet tractor umbrella",
        },
    )
    assert response.status_code == 413
    assert "larger than we accept" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(User)) == 0


def test_login_is_rate_limited(client, ctx):
    make_user(email="dana@example.org")
    token = client.csrf_token("/login")
    statuses = [  # a different account each time: this is the per-address limit, not the per-account one
        client.post(
            "/login", data={"csrf_token": token, "email": f"dana{n}@example.org", "password": "wrong password!"}
        ).status_code
        for n in range(12)
    ]
    assert statuses[:10] == [422] * 10
    assert statuses[10] == 429
    assert "too many times" in client.post("/login", data={"csrf_token": token}).get_data(as_text=True)


def test_password_reset_is_rate_limited(client, ctx):
    token = client.csrf_token("/forgot-password")
    statuses = [
        client.post("/forgot-password", data={"csrf_token": token, "email": "x@example.org"}).status_code
        for _ in range(6)
    ]
    assert statuses[:5] == [302] * 5
    assert statuses[5] == 429


HOSTILE_NEXT = [
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/%09/evil.example",
    "/%2F/evil.example",
    "/%5Cevil.example",
    "https://evil.example/",
    "http:/evil.example",
    "javascript:alert(1)",
    "data:text/html,hi",
    "evil.example",
    "/path\r\nSet-Cookie: x=1",
    "/\x00",
    "/%0d%0aLocation: x",
    " /account",
    "",
    None,
    "/" + "a" * 3000,
    "/\t/evil.example",
    "/%20/evil.example",
]


@pytest.mark.parametrize("target", HOSTILE_NEXT)
def test_safe_next_refuses_hostile_targets(target):
    assert safe_next(target) is None


@pytest.mark.parametrize("target", ["/", "/account", "/courses/ai-literacy?page=2", "/a/b#frag", "/search?q=a%20b"])
def test_safe_next_keeps_same_site_paths(target):
    assert safe_next(target) == target


def _url_for_rule(rule) -> str:
    values = dict(rule.defaults or {})
    for arg in rule.arguments - set(values):
        values[arg] = 1 if isinstance(rule._converters[arg], IntegerConverter) else "x"
    return rule.build(values, append_unknown=False)[1]


def _protected_rules(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC:
            continue
        method = "GET" if "GET" in rule.methods else "POST"
        yield rule, method


STAFF_PREFIXES = ("/admin", "/studio")


def test_every_staff_route_declares_its_permission(app):
    """A route under /admin or /studio without @permission_required fails here, whatever its body checks."""
    staff = [r for r in app.url_map.iter_rules() if r.rule.startswith(STAFF_PREFIXES)]
    assert len(staff) >= 40
    missing = [r.endpoint for r in staff if not callable(getattr(app.view_functions[r.endpoint], "permission", None))]
    assert not missing, f"add @permission_required(<predicate>) to {sorted(set(missing))}"
    for rule in staff:  # and the declared predicate is a staff one: a learner does not pass it
        predicate = app.view_functions[rule.endpoint].permission
        learner = User(email="l@example.org", name="L", legal_name="L", password_hash="x", active=True)
        assert predicate(learner) is False, rule.endpoint


def test_no_module_uses_the_old_role_decorator():
    """One way to say who may do what: predicates through permission_required/authorize, never a role list."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    packages = {
        p.split(".")[0] for p in tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    }
    sources = [path for package in sorted(packages) for path in (root / package).rglob("*.py")]
    assert len(sources) > 50
    offenders = [
        str(path.relative_to(root)) for path in sources if "roles_required" in path.read_text(encoding="utf-8")
    ]
    assert not offenders, offenders


def test_every_non_public_endpoint_refuses_anonymous_users(app, client):
    rules = list(_protected_rules(app))
    assert len(rules) >= 7
    token = client.csrf_token("/login")
    for rule, method in rules:
        url = _url_for_rule(rule)
        response = client.open(url, method=method, data={"csrf_token": token} if method == "POST" else None)
        assert response.status_code == 302, (rule.endpoint, response.status_code)
        assert response.headers["Location"].startswith("/login"), rule.endpoint
        json_response = client.open(
            url,
            method=method,
            headers={"Accept": "application/json"},
            data={"csrf_token": token} if method == "POST" else None,
        )
        assert json_response.status_code == 401, rule.endpoint
        assert json_response.is_json


@pytest.mark.parametrize("employer", [False, True])
def test_admin_endpoints_refuse_learners_and_employers(app, client, ctx, employer):
    if employer:  # the owner of an approved organization
        make_employer("someone@example.org")
    else:
        make_user(email="someone@example.org")
    login(client, "someone@example.org")
    token = client.csrf_token("/account")
    admin_rules = [(r, m) for r, m in _protected_rules(app) if r.rule.startswith(STAFF_PREFIXES)]
    assert {r.rule.split("/")[1] for r, _ in admin_rules} == {"admin", "studio"}
    for rule, method in admin_rules:
        response = client.open(
            _url_for_rule(rule), method=method, data={"csrf_token": token} if method == "POST" else None
        )
        assert response.status_code == 403, rule.endpoint
        assert "does not have permission" in response.get_data(as_text=True)


def test_error_pages_are_friendly(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "We could not find that page" in response.get_data(as_text=True)
    assert client.get("/no/such/page", headers={"Accept": "application/json"}).json["status"] == 404
    assert client.delete("/login").status_code == 405


def test_server_error_page_rolls_back_and_hides_details(app, ctx):
    from core import create_app

    other = create_app({k: app.config[k] for k in ("APP_ENV", "SECRET_KEY", "SQLALCHEMY_DATABASE_URI")})

    @other.get("/__boom")
    def boom():
        db.session.add(User(email="half@example.org", name="Half", legal_name="Half", password_hash="x"))
        db.session.flush()
        raise RuntimeError("secret internal detail")

    response = other.test_client().get("/__boom")
    with other.app_context():
        db.engine.dispose()
    assert response.status_code == 500
    body = response.get_data(as_text=True)
    assert "Nothing was saved" in body and "secret internal detail" not in body
    assert db.session.scalar(select(func.count()).select_from(User)) == 0


@pytest.mark.parametrize(
    "path",
    ["/courses?q=%00", "/courses/%00", "/skills/%00", "/occupations/a%00b", "/admin/users/?q=%00", "/verify/%00"],
)
def test_nul_bytes_are_refused_with_400(client, path):
    assert client.get(path).status_code == 400


def test_nul_byte_in_a_form_is_refused_and_writes_nothing(client, ctx):
    token = client.csrf_token("/register")
    response = client.post(
        "/register",
        data={
            "csrf_token": token,
            "name": "Eve\x00",
            "email": "eve@example.org",
            "password": "violet tractor umbrella",
            "confirm": "violet tractor umbrella",
        },
    )
    assert response.status_code == 400
    assert db.session.scalar(select(func.count()).select_from(User)) == 0


def test_huge_numbers_in_urls_and_pages_are_not_server_errors(client, ctx):
    make_user(email="admin@example.org", role=Role.ADMIN)
    login(client, "admin@example.org")
    assert client.get("/courses/x/y/quiz/attempts/99999999999999999999").status_code == 404
    assert client.get("/admin/users/?page=99999999999999999999").status_code == 200
    assert client.get("/admin/users/?page=-5").status_code == 200


def test_open_badges_api_refuses_callers_without_credentials(app, client):
    """The API endpoints taken out of the login walk above answer anonymous callers 401 in their own shapes."""
    for path in ("/ims/ob/v3p0/credentials", "/ims/ob/v3p0/profile"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.json["imsx_codeMinor"]["imsx_codeMinorField"][0]["imsx_codeMinorFieldValue"] == (
            "unauthorizedrequest"
        )
        assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    for path in ("/ims/ob/v3p0/token", "/ims/ob/v3p0/revoke"):
        response = client.post(path, data={"grant_type": "authorization_code", "code": "x", "token": "x"})
        assert response.status_code == 401 and response.json["error"] == "invalid_client", path
    for method, path in (("POST", "/ims/ob/v3p0/credentials"), ("PUT", "/ims/ob/v3p0/profile")):
        assert client.open(path, method=method).status_code == 405
