"""Who may do what: the predicates themselves, the decorator and `authorize`, and the navigation that shows a
link exactly when the page behind it answers.

tests/test_security.py walks every URL for anonymous visitors and for learners and employers; this file checks
the predicates one by one and follows every link of base.html as each kind of person sees it.
"""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from flask_login import AnonymousUserMixin
from werkzeug.exceptions import NotFound

from accounts import permissions as account_permissions
from accounts.models import Role, User
from accounts.permissions import authorize, can_change_account, permission_required
from courses import permissions as course_permissions
from credentials import permissions as credential_permissions
from insights import permissions as insight_permissions
from orgs import permissions as org_permissions
from orgs.models import Membership, Organization, OrgRole, OrgStatus
from tests.factories import add_staff, login, make_org, make_user, sign_in
from tests.test_security import PUBLIC

# every staff capability: a page or action as a whole, asked with the signed-in user only
STAFF_PREDICATES = [
    account_permissions.can_manage_users,
    account_permissions.can_read_audit_log,
    account_permissions.can_manage_jobs,
    course_permissions.can_author_courses,
    credential_permissions.can_manage_certificates,
    credential_permissions.can_edit_branding,
    insight_permissions.can_view_insights,
    insight_permissions.can_view_learner_records,
    org_permissions.can_manage_orgs,
]


def _user(role: Role, user_id: int = 1) -> User:
    return User(
        id=user_id, email=f"u{user_id}@example.org", name="U", legal_name="U", password_hash="x", role=role, active=True
    )


# ---- the predicates, without a request or a database -------------------------------------------------------


@pytest.mark.parametrize("predicate", STAFF_PREDICATES, ids=lambda p: p.__name__)
@pytest.mark.nodb
def test_staff_capabilities_belong_to_admins_only(predicate):
    assert predicate(_user(Role.ADMIN)) is True
    assert predicate(_user(Role.LEARNER)) is False
    assert predicate(AnonymousUserMixin()) is False
    assert predicate(None) is False


@pytest.mark.nodb
def test_nobody_changes_their_own_account():
    admin, other_admin, learner = _user(Role.ADMIN, 1), _user(Role.ADMIN, 2), _user(Role.LEARNER, 3)
    assert can_change_account(admin, other_admin) is True
    assert can_change_account(admin, learner) is True
    assert can_change_account(admin, admin) is False  # no lock-out by demoting or deactivating oneself
    assert can_change_account(learner, admin) is False
    assert can_change_account(AnonymousUserMixin(), learner) is False


@pytest.mark.nodb
def test_certificates_download_for_the_holder_and_certificate_staff():
    from credentials.models import Certificate

    certificate = Certificate(user_id=3)
    assert credential_permissions.can_download(_user(Role.LEARNER, 3), certificate) is True
    assert credential_permissions.can_download(_user(Role.LEARNER, 4), certificate) is False
    assert credential_permissions.can_download(_user(Role.ADMIN, 1), certificate) is True
    assert credential_permissions.can_download(AnonymousUserMixin(), certificate) is False


def _membership(role: OrgRole, status: OrgStatus, org_id: int = 7) -> tuple[Organization, Membership]:
    org = Organization(id=org_id, status=status)
    return org, Membership(organization_id=org_id, organization=org, user_id=1, role=role)


@pytest.mark.parametrize(
    ("role", "status", "see", "use", "manage", "staff", "resend"),
    [
        (OrgRole.OWNER, OrgStatus.APPROVED, True, True, True, True, True),
        (OrgRole.MANAGER, OrgStatus.APPROVED, True, True, True, False, False),
        (OrgRole.VIEWER, OrgStatus.APPROVED, True, True, False, False, False),
        (OrgRole.OWNER, OrgStatus.PENDING, True, False, False, False, True),
        (OrgRole.MANAGER, OrgStatus.PENDING, True, False, False, False, False),
    ],
)
@pytest.mark.nodb
def test_organization_predicates_follow_role_and_approval(role, status, see, use, manage, staff, resend):
    org, membership = _membership(role, status)
    assert org_permissions.can_see_org(membership) is see
    assert org_permissions.can_use_org(org, membership) is use
    assert org_permissions.can_manage_org(org, membership) is manage
    assert org_permissions.can_manage_staff(org, membership) is staff
    assert org_permissions.can_resend_verification(membership) is resend


@pytest.mark.nodb
def test_outsiders_and_members_of_another_organization_get_nothing():
    org, _ = _membership(OrgRole.OWNER, OrgStatus.APPROVED, org_id=7)
    _, elsewhere = _membership(OrgRole.OWNER, OrgStatus.APPROVED, org_id=8)
    for membership in (None, elsewhere):
        assert org_permissions.can_use_org(org, membership) is False
        assert org_permissions.can_manage_org(org, membership) is False
        assert org_permissions.can_manage_staff(org, membership) is False
    assert org_permissions.can_see_org(None) is False
    assert org_permissions.can_resend_verification(None) is False


@pytest.mark.nodb
def test_bulk_verification_for_admins_and_members_of_an_approved_organization():
    _, approved = _membership(OrgRole.VIEWER, OrgStatus.APPROVED)
    _, pending = _membership(OrgRole.OWNER, OrgStatus.PENDING)
    learner = _user(Role.LEARNER)
    assert org_permissions.can_bulk_verify(_user(Role.ADMIN), []) is True
    assert org_permissions.can_bulk_verify(learner, [approved]) is True
    assert org_permissions.can_bulk_verify(learner, [pending]) is False
    assert org_permissions.can_bulk_verify(learner, []) is False


# ---- the decorator and authorize() -------------------------------------------------------------------------


@pytest.mark.nodb
def test_the_decorator_keeps_its_predicate_on_the_view(app):
    assert app.view_functions["admin_users.list_users"].permission is account_permissions.can_manage_users
    assert app.view_functions["studio.index"].permission is course_permissions.can_author_courses
    assert app.view_functions["insights.dashboard"].permission is insight_permissions.can_view_insights
    assert app.view_functions["audit.audit_log"].permission is account_permissions.can_read_audit_log
    assert app.view_functions["admin_jobs.list_jobs"].permission is account_permissions.can_manage_jobs
    assert app.view_functions["orgs.queue"].permission is org_permissions.can_manage_orgs


def test_anonymous_visitors_are_sent_to_login_and_come_back(client, ctx):
    make_user(email="admin@example.org", role=Role.ADMIN)
    response = client.get("/admin/audit/?q=role")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/admin/audit/?q%3Drole"
    api = client.get("/admin/audit/", headers={"Accept": "application/json"})
    assert api.status_code == 401 and api.json["error"] == "Please log in"
    back = login(client, "admin@example.org", next="/admin/audit/?q=role")
    assert back.status_code == 302 and back.headers["Location"] == "/admin/audit/?q=role"


def test_the_login_redirect_never_leaves_the_site(client, ctx):
    make_user(email="admin@example.org", role=Role.ADMIN)
    response = login(client, "admin@example.org", next="//evil.example/admin")
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).netloc in ("", "localhost")
    assert "evil" not in response.headers["Location"]


def test_signed_in_without_the_permission_is_403_and_nothing_runs(client, ctx):
    from sqlalchemy import select

    from core.extensions import db

    make_user(email="ada@example.org", role=Role.ADMIN)
    learner = make_user(email="lee@example.org")
    sign_in(client, "lee@example.org")
    target = db.session.scalar(select(User).where(User.email == "ada@example.org"))
    response = client.submit(f"/admin/users/{target.id}/role", {"role": "learner"}, page="/account")
    assert response.status_code == 403
    assert "does not have permission" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, target.id).role is Role.ADMIN and learner.role is Role.LEARNER


@pytest.mark.nodb
def test_authorize_answers_403_or_404_and_sends_strangers_to_login(app):
    from werkzeug.exceptions import Forbidden

    @permission_required(lambda user: True)
    def anyone_signed_in():
        return "ok"

    with app.test_request_context("/x"):
        authorize(True)  # allowed: nothing happens, even for an anonymous visitor
        with pytest.raises(Exception) as anonymous:
            authorize(False)
        assert anonymous.value.response.status_code == 302
        assert anonymous.value.response.headers["Location"].startswith("/login?next=")
        with pytest.raises(Exception) as decorated:
            anyone_signed_in()
        assert decorated.value.response.status_code == 302
    with app.test_request_context("/x"):
        from flask_login import login_user

        login_user(_user(Role.LEARNER))
        with pytest.raises(Forbidden):
            authorize(False)
        with pytest.raises(NotFound):
            authorize(False, hide=True)
        assert anyone_signed_in() == "ok"


def test_an_organization_page_is_404_to_outsiders_and_a_login_to_strangers(client, ctx):
    owner = make_user(email="owner@example.org")
    org = make_org(owner)
    make_user(email="outsider@example.org", role=Role.ADMIN)  # site admins are outsiders to an organization too
    anonymous = client.get(f"/organizations/{org.slug}/candidates")
    assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/login")
    sign_in(client, "outsider@example.org")
    for path in (f"/organizations/{org.slug}", f"/organizations/{org.slug}/candidates", "/organizations/nope"):
        assert client.get(path).status_code == 404, path


# ---- the navigation: each link shown answers; each protected page whose link is hidden refuses ---------------


class _Links(HTMLParser):
    """The hrefs inside <header> and <footer> (base.html's navigation), in order."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("header", "footer"):
            self.depth += 1
        elif tag == "a" and self.depth:
            href = dict(attrs).get("href")
            if href and not href.startswith("#"):
                self.links.append(href)

    def handle_endtag(self, tag):
        if tag in ("header", "footer"):
            self.depth -= 1


def _nav_links(client) -> set[str]:
    response = client.get("/help")
    assert response.status_code == 200
    parser = _Links()
    parser.feed(response.get_data(as_text=True))
    return set(parser.links)


def _endpoint(app, path: str) -> str:
    endpoint, _ = app.url_map.bind("localhost").match(urlsplit(path).path, method="GET")
    return endpoint


PEOPLE = ["anonymous", "learner", "org viewer", "org manager", "pending org owner", "two orgs", "admin"]


@pytest.fixture
def people(app, ctx):
    """One signed-in client per kind of person (the anonymous one never logs in)."""
    from tests.conftest import Client

    make_user(email="learner@example.org")
    make_user(email="admin@example.org", role=Role.ADMIN)
    acme = make_org(make_user(email="owner@example.org"), name="Acme Staffing")
    add_staff(acme, make_user(email="viewer@example.org"), OrgRole.VIEWER)
    add_staff(acme, make_user(email="manager@example.org"), OrgRole.MANAGER)
    make_org(make_user(email="pending@example.org"), name="Pending Works", status=OrgStatus.PENDING)
    both = make_user(email="both@example.org")
    add_staff(acme, both, OrgRole.VIEWER)
    make_org(both, name="Second Board")
    emails = {
        "learner": "learner@example.org",
        "org viewer": "viewer@example.org",
        "org manager": "manager@example.org",
        "pending org owner": "pending@example.org",
        "two orgs": "both@example.org",
        "admin": "admin@example.org",
    }
    app.test_client_class = Client
    clients = {}
    for who in PEOPLE:
        clients[who] = app.test_client()
        if who in emails:
            assert login(clients[who], emails[who]).status_code == 302
    return clients


def test_every_navigation_link_answers_and_every_hidden_protected_page_refuses(app, people):
    shown = {who: _nav_links(client) for who, client in people.items()}
    every_link = set().union(*shown.values())
    # the staff links are really there for the admin and really absent for everyone else
    staff_pages = {"/admin/organizations", "/admin/certificates", "/studio/", "/admin/insights", "/admin/users/"}
    staff_pages |= {"/admin/audit/", "/admin/jobs/"}
    assert staff_pages <= shown["admin"]
    assert all(not staff_pages & shown[who] for who in PEOPLE if who != "admin")
    assert "/verify/bulk" in shown["org viewer"] and "/verify/bulk" not in shown["pending org owner"]
    checked = 0
    for who, client in people.items():
        for link in sorted(shown[who]):
            # a link may redirect (the language switcher goes back to the page), but never to the login page
            response = client.get(link, follow_redirects=True)
            assert response.status_code == 200, (who, link, response.status_code)
            assert link.startswith("/login") or response.request.path != "/login", (who, link)
            checked += 1
        for link in sorted(every_link - shown[who]):
            endpoint = _endpoint(app, link)
            if endpoint in PUBLIC:
                continue  # e.g. "Log in", hidden once signed in, is not a protected page
            response = client.get(link)
            if who == "two orgs" and endpoint == "orgs.home" and response.status_code == 200:
                # a member of several organizations gets one link to the list of them instead of one each
                assert f'href="{link}"' in client.get("/organizations").get_data(as_text=True), link
                continue
            if who == "anonymous":
                assert response.status_code == 302 and response.headers["Location"].startswith("/login"), link
            else:
                assert response.status_code in (403, 404), (who, link, response.status_code)
            checked += 1
    assert checked > 60


def test_the_admin_sees_every_staff_link_in_the_phone_menu_too(people):
    html = people["admin"].get("/help").get_data(as_text=True)
    menu = html.split('class="nav-menu-list"', 1)[1].split("</ul>", 1)[0]
    for label in ("Organizations", "Certificates", "Studio", "Insights", "Users", "Audit log", "Jobs"):
        assert f">{label}</a>" in menu, label
    learner_html = people["learner"].get("/help").get_data(as_text=True)
    for label in ("Studio", "Insights", "Audit log", "Jobs", ">Users<"):
        assert label not in learner_html, label


STAFF_LINKS = {  # the room whose predicates decide, and the navigation links those predicates govern
    "accounts.permissions": {"Users": "/admin/users/", "Audit log": "/admin/audit/", "Jobs": "/admin/jobs/"},
    "courses.permissions": {"Studio": "/studio/"},
    "credentials.permissions": {"Certificates": "/admin/certificates"},
    "insights.permissions": {"Insights": "/admin/insights"},
    "orgs.permissions": {"Organizations": "/admin/organizations"},
}


@pytest.mark.parametrize("room", sorted(STAFF_LINKS))
def test_link_and_page_ask_the_same_predicate(app, people, monkeypatch, room):
    """Grant one room's staff capabilities to a learner: exactly that room's links appear, and they answer.

    Were a link guarded by another room's predicate (Studio shown to whoever may manage users), the learner
    would see a link that refuses, or reach a page without its link.
    """
    import importlib

    module = importlib.import_module(room)
    monkeypatch.setattr(module, "is_admin", lambda user: getattr(user, "email", None) == "learner@example.org")
    client = people["learner"]
    shown = _nav_links(client)
    for other, links in STAFF_LINKS.items():
        for label, path in links.items():
            status = client.get(path).status_code
            if other == room:
                assert path in shown and status == 200, (label, status)
            else:
                assert path not in shown and status == 403, (label, status)


def test_the_certificates_page_links_to_branding_for_those_who_may_edit_it(app, people, monkeypatch):
    # the help page sends admins to "Certificates › Branding": the link is there, and it answers
    html = people["admin"].get("/admin/certificates").get_data(as_text=True)
    assert 'href="/admin/branding">Certificate branding</a>' in html
    assert people["admin"].get("/admin/branding").status_code == 200
    # someone who may manage certificates but not the branding sees no link to a page that would refuse them
    monkeypatch.setitem(app.jinja_env.globals, "can_edit_branding", lambda user: False)
    assert "/admin/branding" not in people["admin"].get("/admin/certificates").get_data(as_text=True)


# ---- one button-only form ----------------------------------------------------------------------------------


def _all_form_classes():
    import importlib
    import pkgutil

    from flask_wtf import FlaskForm

    for package in ("core", "accounts", "skills", "courses", "credentials", "orgs", "insights", "notifications"):
        module = importlib.import_module(package)
        for info in pkgutil.iter_modules(module.__path__):
            if info.name == "forms" or info.name.endswith("_forms"):
                importlib.import_module(f"{package}.{info.name}")
    found, stack = [], list(FlaskForm.__subclasses__())
    while stack:
        cls = stack.pop()
        found.append(cls)
        stack.extend(cls.__subclasses__())
    return [c for c in found if c.__module__.split(".")[0] != "tests"]


@pytest.mark.nodb
def test_button_only_posts_share_one_form():
    """A form with nothing but a submit button (and its CSRF token) is core.forms.ButtonForm, not a copy."""
    from wtforms import SubmitField
    from wtforms.fields.core import UnboundField

    from core.forms import ButtonForm

    forms = _all_form_classes()
    assert ButtonForm in forms and len(forms) > 20
    copies = []
    for cls in forms:
        fields = [getattr(cls, name) for name in dir(cls) if isinstance(getattr(cls, name, None), UnboundField)]
        if cls is not ButtonForm and all(f.field_class is SubmitField for f in fields):
            copies.append(f"{cls.__module__}.{cls.__name__}")
    assert not copies, f"use core.forms.ButtonForm instead of {copies}"


def test_a_button_without_its_csrf_token_changes_nothing(client, ctx):
    from sqlalchemy import select

    from core.extensions import db

    user = make_user(email="lee@example.org")
    sign_in(client, "lee@example.org")
    version = db.session.scalar(select(User.session_version).where(User.id == user.id))
    assert client.post("/account/logout-everywhere").status_code == 400
    assert db.session.scalar(select(User.session_version).where(User.id == user.id)) == version
    assert client.get("/account").status_code == 200  # still signed in
