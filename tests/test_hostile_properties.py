"""Hostile input, property-based: every POST route and JSON endpoint, random and boundary values.

For each POST route in app.url_map a learner, employer, admin or visitor (whichever the route is for) posts
random, huge, unicode, invalid-UTF-8, duplicated, missing and out-of-range values with a valid CSRF token.
Properties: never a 5xx, and a 4xx answer writes no row in any table.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from itsdangerous import BadSignature
from sqlalchemy import func, select

from accounts.models import Role, User
from core.database import utcnow
from core.extensions import db, limiter
from tests.factories import (
    enroll,
    load_test_framework,
    login,
    make_certificate,
    make_cohort,
    make_course,
    make_employer,
    make_user,
)

pytestmark = pytest.mark.slow

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

# ---- values ---------------------------------------------------------------------------------------

BOUNDARY = [
    "",
    " ",
    "\t\r\n",
    "0",
    "-1",
    "1",
    "2147483647",
    "2147483648",
    "-2147483649",
    "9223372036854775808",
    "99999999999999999999999999999999",
    "1e309",
    "-0",
    "NaN",
    "Infinity",
    "0x1f",
    "1_000",
    " 7 ",
    "٣",  # an Arabic-Indic digit: int() accepts it
    "true",
    "null",
    "[]",
    "{}",
    '{"a": [1, {"b": null}]}',
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "javascript:alert(1)",
    "' OR '1'='1' --",
    '"; DROP TABLE users; --',
    "%_\\",
    "\\",
    "../../../../etc/passwd",
    '=HYPERLINK("http://evil.example")',
    "@SUM(1+1)",
    "\u202eevil\u202c",  # right-to-left override
    "مرحبا بالعالم",
    "שלום",
    "👩🏽‍💻🏳️‍🌈" * 30,
    "\ufeffBOM",
    "\u200b\u200d\u2060",
    "e\u0301" * 100,  # combining accents
    "\U0010ffff",
    "\x7f",
    "\x00",
    "a\x00b",
    "ﷺ" * 500,
    "A" * 121,
    "A" * 2001,
    "Z" * 100_001,
    "admin",
    "employer",
    "learner",
    "valid",
    "revoked",
    "up",
    "down",
    "delete",
]

# invalid UTF-8 (incl. encoded surrogates and overlongs): only bytes can carry these
BAD_BYTES = [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xed\xbf\xbf", b"abc\xe2\x82", b"\x80" * 10]

# every code point but the surrogates: the same set, and the same examples, as st.characters(codec="utf-8"), whose
# first use in a process without a warm .hypothesis/ folder (a fresh clone) walks all 1.1 million code points
# through the codec (~3 s of CPU)
unicode_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=200)


def values(good: str | None):
    options = [st.sampled_from(BOUNDARY), unicode_text, st.integers(-(2**80), 2**80).map(str)]
    if good is not None:
        options.append(st.just(good))
    return st.one_of(*options)


def field_value(good: str | None):
    """One field: missing, one value, the same key repeated, or undecodable bytes."""
    one = values(good)
    return st.one_of(
        st.none(),
        one,
        one,
        st.lists(one, min_size=2, max_size=3),
        st.sampled_from(BAD_BYTES) | st.binary(max_size=40),
    )


def payload(fields: dict[str, str | None]):
    """Pairs (key, value) for the given fields plus, sometimes, keys nobody asked for."""
    extra_key = st.one_of(
        st.sampled_from(["id", "role", "user_id", "__proto__", "q-1", "q-x", "a" * 300]), unicode_text
    )
    return st.tuples(
        st.fixed_dictionaries({name: field_value(good) for name, good in fields.items()}),
        st.lists(st.tuples(extra_key, values(None)), max_size=2),
    )


def file_value():
    return st.one_of(
        st.none(),
        st.binary(max_size=300),
        st.sampled_from(
            [
                b"",
                b"%PDF-1.7\n%%EOF",
                b"<svg xmlns='http://www.w3.org/2000/svg'/>",
                b'<!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><x>&b;</x>',
                b"PK\x03\x04" + b"\x00" * 40,
                b"\x89PNG\r\n\x1a\n" + b"\x00" * 30,
                b"id,name\n=cmd|' /C calc'!A0,\"x\"\n",
                b"\xef\xbb\xbf" + b"A" * 28 + b"\n",
                json.dumps({"@context": 5, "type": [{}], "validFrom": "2026-13-45T99:99:99Z"}).encode(),
                b"[" * 5000,
                b'"\xff"',
            ]
        ),
        unicode_text.map(str.encode),
    )


# ---- the routes -------------------------------------------------------------------------------------


@dataclass
class Route:
    role: Role | None  # None: a visitor
    url: str
    fields: dict[str, str | None] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    studio: bool = False  # needs the studio draft open (as any visit to the editor opens it)


@dataclass
class World:
    users: dict
    route_values: dict
    reset_token: str
    quiz_questions: list


QUESTIONS = "? Is it?\n* yes\n- no\n> Because."


def routes(w: World) -> dict[str, Route]:
    v = w.route_values
    c = v["slug"]
    admin, learner, employer = Role.ADMIN, Role.LEARNER, "employer"  # employer: owner of an approved organization
    o = f"/organizations/{v['org']}"
    co = f"{o}/cohorts/{v['cohort_id']}"
    answer_fields = {f"q-{position}": token for position, token in w.quiz_questions}
    meta = {"title": "T", "summary": "S", "audience": "A", "estimated_minutes": "30", "validity_months": "12"}
    program_meta = {"title": "T", "purpose": "P", "audience": "A", "normal_weeks": "6"}
    return {
        "accounts.change_password": Route(
            learner,
            "/account/password",
            {"pw-current_password": "correct horse battery staple", "pw-password": None, "pw-confirm": None},
        ),
        "accounts.forgot_password": Route(None, "/forgot-password", {"email": "lee@example.org"}),
        "accounts.login": Route(
            None, "/login", {"email": "lee@example.org", "password": None, "remember": "y", "next": "/account"}
        ),
        "accounts.logout": Route(learner, "/logout"),
        "accounts.logout_everywhere": Route(learner, "/account/logout-everywhere"),
        "accounts.profile": Route(learner, "/account", {"name": "Lee", "legal_name": "Lee Learner"}),
        "accounts.register": Route(
            None,
            "/register",
            {"name": "Ren", "email": "ren@example.org", "password": "violet tractor umbrella", "confirm": None},
        ),
        "accounts.resend_verification": Route(learner, "/account/verify-email"),
        "accounts.save_language": Route(learner, "/account/language", {"lang-locale": "es"}),
        "accounts.set_language": Route(learner, "/language/es", {"next": "/account"}),
        "admin_jobs.retry": Route(admin, f"/admin/jobs/{v['job_id']}/retry"),
        "notifications.preferences": Route(
            learner, "/account/notifications", {"tips": "y", "reminders": "y", "nudges": "y", "employer_alerts": "y"}
        ),
        "notifications.unsubscribe": Route(
            None, f"/unsubscribe/{v['unsubscribe_token']}", {"List-Unsubscribe": "One-Click"}
        ),
        "accounts.reset_password": Route(
            None, f"/reset-password/{w.reset_token}", {"password": "violet tractor umbrella", "confirm": None}
        ),
        "admin_certificates.decide_name_correction": Route(
            admin, f"/admin/name-corrections/{v['request_id']}", {"note": "ok", "approve": "1", "reject": "1"}
        ),
        "admin_certificates.branding": Route(
            admin,
            "/admin/branding",
            {
                "issuer_address": "1 Main St",
                "signatory_name": "Grace Hopper",
                "signatory_title": "Director",
                "seal_alt": "Seal",
                "remove_seal": "y",
                "remove_signature": "y",
            },
            files=("seal", "signature"),
        ),
        "admin_certificates.reinstate": Route(admin, f"/admin/certificates/{v['public_id']}/reinstate"),
        "admin_certificates.reissue": Route(admin, f"/admin/certificates/{v['public_id']}/reissue"),
        "admin_certificates.revoke": Route(
            admin, f"/admin/certificates/{v['public_id']}/revoke", {"reason": "other", "note": "n"}
        ),
        "admin_certificates.suspend": Route(
            admin,
            f"/admin/certificates/{v['public_id']}/suspend",
            {"suspension_reason": "Under review.", "suspended_until": ""},
        ),
        "admin_certificates.lift_suspension": Route(admin, f"/admin/certificates/{v['public_id']}/lift-suspension"),
        "admin_users.change_role": Route(admin, f"/admin/users/{v['target_id']}/role", {"role": "admin"}),
        "admin_users.deactivate": Route(admin, f"/admin/users/{v['target_id']}/deactivate"),
        "admin_users.reactivate": Route(admin, f"/admin/users/{v['target_id']}/reactivate"),
        "courses.attempt": Route(learner, f"/courses/{c}/module-1/quiz/attempts/1", answer_fields),
        "courses.enroll_program": Route(learner, f"/programs/{v['program']}/enroll"),
        "courses.complete_lesson": Route(learner, f"/courses/{c}/module-1/lesson-1-1/complete"),
        "courses.enroll": Route(learner, f"/courses/{c}/enroll"),
        "courses.renew": Route(learner, f"/courses/{c}/renew"),
        "courses.start_quiz": Route(learner, f"/courses/{c}/module-2/quiz/start"),
        "credentials.api_verify": Route(None, "/api/v1/verify", files=("file",)),
        "credentials.name_correction": Route(
            learner, "/certificates/name-correction", {"requested_name": "Lee Q. Learner", "reason": "typo"}
        ),
        "credentials.verify_upload": Route(None, "/verify/credential", files=("file",)),
        "credentials.add_to_wallet": Route(learner, f"/certificates/{v['wallet_public_id']}/wallet"),
        "credentials.add_record_to_wallet": Route(learner, "/certificates/record/wallet"),
        "credentials.wallet_exchange": Route(None, f"/wallet/exchanges/{v['exchange_id']}", files=("file",)),
        # the Open Badges API: registration takes a JSON body; the token and revocation endpoints take forms with
        # the app's secret; the consent form is the learner's
        "obapi.register": Route(None, "/ims/ob/v3p0/register", files=("file",)),
        "obapi.authorize": Route(learner, f"/ims/ob/v3p0/authorize?{v['ob_authorize_query']}", {"decision": "allow"}),
        "obapi.token": Route(
            None,
            "/ims/ob/v3p0/token",
            {
                "grant_type": "authorization_code",
                "code": v["ob_code"],
                "code_verifier": v["ob_verifier"],
                "redirect_uri": "https://backpack.example/cb",
                "refresh_token": v["ob_refresh"],
                "client_id": v["ob_client_id"],
                "client_secret": v["ob_secret"],
                "scope": "",
            },
        ),
        "obapi.revoke": Route(
            None,
            "/ims/ob/v3p0/revoke",
            {
                "token": v["ob_access"],
                "token_type_hint": "access_token",
                "client_id": v["ob_client_id"],
                "client_secret": v["ob_secret"],
            },
        ),
        "obapi.upsert_credential": Route(None, "/ims/ob/v3p0/credentials"),
        "obapi.disconnect": Route(learner, f"/account/connected-apps/{v['ob_client_id']}/disconnect"),
        "orgs.bulk_verify": Route(
            employer, "/verify/bulk", {"show": "1", "download": "1", "ids": "A" * 28}, files=("file",)
        ),
        "orgs.remove_candidate": Route(employer, f"{o}/candidates/{v['candidate_id']}/remove"),
        "orgs.save_candidate": Route(employer, f"{o}/candidates", {"certificate_id": v["public_id"], "note": "role"}),
        "orgs.create": Route(
            learner,
            "/organizations/new",
            {"name": "Lee's Shop", "kind": "employer", "website": "https://shop.example", "contact_email": "l@shop.us"},
        ),
        "orgs.resend": Route(employer, f"{o}/resend"),
        "orgs.add_staff": Route(employer, f"{o}/staff", {"email": "tom@example.org", "role": "viewer"}),
        "orgs.remove_staff": Route(employer, f"{o}/staff/{v['staff_id']}/remove"),
        "orgs.decide": Route(admin, f"/admin/organizations/{v['org_id']}/decide", {"note": "ok", "approve": "1"}),
        "orgs.add_domain": Route(admin, "/admin/organizations/domains", {"domain": "dol.gov"}),
        "orgs.remove_domain": Route(admin, f"/admin/organizations/domains/{v['domain_id']}/remove"),
        "orgs.new_cohort": Route(
            employer,
            f"{o}/cohorts/new",
            {"name": "C", "starts_on": "2026-01-01", "ends_on": "2026-06-01", "due_on": None, "course_ids": "1"},
        ),
        "orgs.edit_cohort": Route(
            employer,
            f"{co}/edit",
            {"name": "C", "starts_on": "2026-01-01", "ends_on": "2026-06-01", "due_on": None, "course_ids": "1"},
        ),
        "orgs.invite_email": Route(employer, f"{co}/invite", {"email": "new@example.org", "name": "New"}),
        "orgs.new_link": Route(employer, f"{co}/links", {"kind": "code"}),
        "orgs.roster_check": Route(employer, f"{co}/roster", files=("file",)),
        "orgs.roster_confirm": Route(employer, f"{co}/roster/confirm", {"roster": v["roster"]}),
        "orgs.remind": Route(employer, f"{co}/remind"),
        "orgs.archive_cohort": Route(employer, f"{co}/archive"),
        "orgs.unarchive_cohort": Route(employer, f"{co}/unarchive"),
        "orgs.join": Route(learner, f"/join/{v['join_token']}", {"shown": v["consent"]}),
        "orgs.join_with_code": Route(learner, f"/join/code/{v['join_code']}", {"shown": v["consent"]}),
        "orgs.join_code": Route(learner, "/join", {"code": v["join_code"]}),
        "orgs.leave": Route(learner, f"{o}/leave".replace("/organizations/", "/account/organizations/")),
        "studio.add_module": Route(
            admin,
            f"/studio/{c}/modules",
            {"module-revision": "REV", "module-title": "M", "module-summary": "", "module-skills": "AIL-01"},
            studio=True,
        ),
        "studio.discard": Route(admin, f"/studio/{c}/discard", {"revision": "REV"}, studio=True),
        "studio.import_zip": Route(admin, "/studio/import", files=("file",)),
        "studio.lesson": Route(
            admin,
            f"/studio/{c}/modules/0/lessons/0",
            {"revision": "REV", "title": "L", "minutes": "5", "body": "## Hi", "preview": "1", "save": "1"},
            studio=True,
        ),
        "studio.lesson_action": Route(admin, f"/studio/{c}/modules/0/lessons/0/down", {"revision": "REV"}, studio=True),
        "studio.module": Route(
            admin, f"/studio/{c}/modules/0", {"revision": "REV", "title": "M", "goals": "G1"}, studio=True
        ),
        "studio.module_action": Route(admin, f"/studio/{c}/modules/0/down", {"revision": "REV"}, studio=True),
        "studio.new": Route(admin, "/studio/new", {"revision": "0", "slug": "new-course", **meta}),
        "studio.publish": Route(admin, f"/studio/{c}/publish", {"revision": "REV"}, studio=True),
        "studio.quiz": Route(
            admin,
            f"/studio/{c}/modules/0/quiz",
            {
                "revision": "REV",
                "title": "Q",
                "pass_mark": "70",
                "max_attempts": "3",
                "cooldown_minutes": "0",
                "questions": QUESTIONS,
            },
            studio=True,
        ),
        "studio.save_meta": Route(
            admin,
            f"/studio/{c}/meta",
            {"meta-revision": "REV", **{f"meta-{k}": val for k, val in meta.items()}},
            studio=True,
        ),
        "studio.save_tags": Route(
            admin,
            f"/studio/{c}/tags",
            {"tags-revision": "REV", "tags-skills": "AIL-01", "tags-goals": "G1", "tags-occupations": "43-4051.00"},
            studio=True,
        ),
        "studio.set_status": Route(admin, f"/studio/{c}/status/archived"),
        "studio.new_program": Route(
            admin,
            "/studio/programs/new",
            {"slug": "new-program", "courses": c, "occupations": "43-4051.00", **program_meta},
        ),
        "studio.edit_program": Route(
            admin,
            f"/studio/programs/{v['program']}",
            {"seen": v["program_hash"], "courses": c, "occupations": "43-4051.00", **program_meta},
        ),
        "studio.move_program_course": Route(admin, f"/studio/programs/{v['program']}/courses/0/down"),
        "studio.program_status": Route(admin, f"/studio/programs/{v['program']}/status/archived"),
        "studio.upload_image": Route(
            admin, "/studio/media", {"alt_text": "A picture", "next": f"/studio/{c}"}, files=("file",)
        ),
    }


def build_world(client) -> World:
    from accounts import services as account_services
    from core.queue import Job
    from courses import services as course_services
    from credentials.services import request_name_change
    from notifications.services import unsubscribe_token
    from orgs import roster
    from orgs import services as org_services
    from orgs.models import InvitationKind, OrgRole

    load_test_framework()
    admin = make_user(email="admin@example.org", name="Ada Admin", role=Role.ADMIN)
    learner = make_user(email="lee@example.org", name="Lee Learner")
    employer, org = make_employer("emma@example.org", name="Emma Employer")
    target = make_user(email="tom@example.org", name="Tom Target")
    course = make_course("ai-basics")
    certificate = make_certificate(target, course)
    enrollment = enroll(learner, course)
    quiz = course.modules[0].quiz
    attempt = course_services.start_attempt(enrollment, course_services.load_quiz(quiz.id), now=utcnow())
    tokens = {(qid, cid): token for token, (qid, cid) in attempt.tokens.items()}
    questions = [(position, tokens[(qid, cids[0])]) for position, (qid, cids) in enumerate(attempt.layout, 1)]
    name_request = request_name_change(target, requested_name="Thomas Target", reason="typo", now=utcnow())
    row, _ = org_services.save_candidate(employer, org, certificate, note="first", now=utcnow())
    cohort = make_cohort(org, [course])
    _, join_token = org_services.open_link(employer, cohort, InvitationKind.LINK, now=utcnow())
    _, join_code = org_services.open_link(employer, cohort, InvitationKind.CODE, now=utcnow())
    domain = org_services.add_auto_domain(admin, "example.gov", now=utcnow())
    staff = org_services.add_staff(employer, org, email="admin@example.org", role=OrgRole.VIEWER, now=utcnow())
    reset = account_services.request_password_reset(
        email="tom@example.org", now=utcnow(), secret_key=client.application.config["SECRET_KEY"], max_age=3600
    )
    from courses.models import CourseStatus
    from courses.programs import ProgramSpec, apply_program

    program, _ = apply_program(
        ProgramSpec("a-pathway", "A pathway", "P.", "A.", 4, [], [course.slug]),
        now=utcnow(),
        status=CourseStatus.PUBLISHED,
    )
    from credentials.wallet import open_exchange

    wallet_certificate = make_certificate(learner, make_course("ai-wallet"))
    exchange = open_exchange(learner, wallet_certificate, now=utcnow())
    ob = open_badges_connection(learner)
    db.session.commit()
    return World(
        users={Role.ADMIN: admin.id, Role.LEARNER: learner.id, "employer": employer.id},
        route_values={
            "slug": course.slug,
            "public_id": certificate.public_id,
            "request_id": name_request.id,
            "candidate_id": row.id,
            "org": org.slug,
            "org_id": org.id,
            "cohort_id": cohort.id,
            "domain_id": domain.id,
            "join_token": join_token,
            "join_code": join_code,
            "consent": org_services.consent_text(cohort),
            "staff_id": staff.id,
            "roster": roster.to_token(
                roster.parse(b"ana@example.org,Ana\n"),
                cohort_id=cohort.id,
                secret_key=client.application.config["SECRET_KEY"],
            ),
            "target_id": target.id,
            "program": program.slug,
            "program_hash": program.content_hash,
            "job_id": db.session.scalar(select(Job.id).order_by(Job.id).limit(1)),
            "unsubscribe_token": unsubscribe_token(target.id, "reminders"),
            "wallet_public_id": wallet_certificate.public_id,
            "exchange_id": exchange.public_id,
            **ob,
        },
        reset_token=reset.token,
        quiz_questions=questions,
    )


def open_badges_connection(learner) -> dict:
    """An app registered with the Open Badges API, a code waiting for its token request, and a live token pair."""
    import base64
    import hashlib
    import secrets
    from datetime import timedelta
    from urllib.parse import urlencode

    from obapi import server
    from obapi.models import OAuthAuthorizationCode, OAuthClient, OAuthToken, digest

    now = utcnow()
    values = {name: secrets.token_urlsafe(32) for name in ("ob_secret", "ob_code", "ob_access", "ob_refresh")}
    values["ob_client_id"], values["ob_verifier"] = secrets.token_urlsafe(24), secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(values["ob_verifier"].encode()).digest()).rstrip(b"=")
    scope = f"{server.CREDENTIAL_READ} {server.PROFILE_READ}"
    client = OAuthClient(
        client_id=values["ob_client_id"],
        client_secret_hash=digest(values["ob_secret"]),
        name="Backpack",
        client_uri="https://backpack.example/",
        redirect_uris=json.dumps(["https://backpack.example/cb"]),
        scope=scope,
        token_endpoint_auth_method="client_secret_post",
        client_metadata="{}",
    )
    db.session.add(client)
    db.session.flush()
    common = {"client_id": client.id, "user_id": learner.id, "scope": scope}
    db.session.add(
        OAuthAuthorizationCode(
            **common,
            code_hash=digest(values["ob_code"]),
            redirect_uri="https://backpack.example/cb",
            code_challenge=challenge.decode(),
            code_challenge_method="S256",
            expires_at=now + timedelta(minutes=5),
        )
    )
    db.session.add(
        OAuthToken(
            **common,
            access_token_hash=digest(values["ob_access"]),
            refresh_token_hash=digest(values["ob_refresh"]),
            access_expires_at=now + timedelta(hours=1),
            refresh_expires_at=now + timedelta(days=90),
        )
    )
    values["ob_authorize_query"] = urlencode(
        {
            "response_type": "code",
            "client_id": values["ob_client_id"],
            "redirect_uri": "https://backpack.example/cb",
            "scope": scope,
            "state": "s",
            "code_challenge": challenge.decode(),
            "code_challenge_method": "S256",
        }
    )
    return values


def shared_world(prebuilt, client) -> World:
    """build_world's rows, built once per module and copied back for each test (tests/conftest.py, prebuilt)."""
    return prebuilt(lambda: build_world(client), key="tests.test_hostile_properties.build_world")


def test_every_post_route_is_covered(app, client, ctx, prebuilt):
    """A new POST route must be added here, or the hostile-input properties silently skip it."""
    world = shared_world(prebuilt, client)
    posts = {r.endpoint for r in app.url_map.iter_rules() if "POST" in r.methods}
    assert posts == set(routes(world))


# ---- the harness -------------------------------------------------------------------------------------


_ROW_COUNTS: list[str] = []
_COUNTING: list = []  # the DBAPI connection row_counts reads through while a module asking for it runs


@pytest.fixture(scope="module", autouse=True)
def counting_connection(app) -> Iterator[None]:
    """One connection of the suite's database kept for row_counts while the module runs (a module that imports
    row_counts imports this fixture too), in autocommit on PostgreSQL: each count is one statement on it, where a
    pooled connection per count added the pool's checkout and return, and on PostgreSQL a BEGIN and a ROLLBACK
    round trip. Every count still reads what is committed at that moment."""
    with app.app_context():
        connection, dialect = db.engine.raw_connection(), db.engine.dialect.name
    if dialect == "postgresql":
        connection.driver_connection.autocommit = True
    _COUNTING.append(connection)
    try:
        yield
    finally:
        _COUNTING.remove(connection)
        connection.invalidate()  # closed for good, not handed back to the pool in autocommit


def row_counts() -> tuple[int, ...]:
    """The number of rows in every table, in one statement.

    A plain SQL string built once: composing and compiling ~50 SQLAlchemy subqueries on every call cost more
    CPU than the posts they bracket (a third of this file's time).
    """
    if not _ROW_COUNTS:
        # names from our own models, not input
        counts = ", ".join(f'(SELECT count(*) FROM "{t.name}")' for t in db.metadata.sorted_tables)  # noqa: S608
        _ROW_COUNTS.append(f"SELECT {counts}")
    if not _COUNTING:
        with db.engine.connect() as connection:
            return tuple(connection.exec_driver_sql(_ROW_COUNTS[0]).one())
    cursor = _COUNTING[-1].driver_connection.cursor()
    try:
        cursor.execute(_ROW_COUNTS[0])
        (row,) = cursor.fetchall()
    finally:
        cursor.close()
    return tuple(row)


_IDENTIFIERS: dict[tuple, str] = {}


def _login_identifier(client, user_id: int) -> str:
    """The session identifier Flask-Login gives a login from this client, learnt from one real login.

    Flask-Login hashes only the client's address and user agent, so it is kept per pair: later tests take it from
    here and let Session.prepare sign them in as it does after any post that logged out (a real login followed
    by prepare's own was two logins and three requests per test)."""
    key = (client.environ_base.get("REMOTE_ADDR"), client.environ_base.get("HTTP_USER_AGENT"))
    if key not in _IDENTIFIERS:
        email = db.session.get(User, user_id).email
        assert login(client, email).status_code == 302
        with client.session_transaction() as session:
            _IDENTIFIERS[key] = session["_id"]
    return _IDENTIFIERS[key]


def csrf_secret_and_token(client, session) -> tuple[str, str]:
    """The client's CSRF secret (made and kept in ``session`` if it has none) and a token signed for it, as the
    next page the client fetched would hand out (flask_wtf.csrf.generate_csrf: a random secret in the session,
    the token its signed copy), without fetching a page: a page per new secret was a third of the harness's own
    cost. The token is also left where Client.submit looks for one."""
    import hashlib
    import os

    from itsdangerous import URLSafeTimedSerializer

    app = client.application
    secret = session.setdefault("csrf_token", hashlib.sha1(os.urandom(64)).hexdigest())  # noqa: S324 (as Flask-WTF)
    signer = URLSafeTimedSerializer(app.config.get("WTF_CSRF_SECRET_KEY") or app.secret_key, salt="wtf-csrf-token")
    token = signer.dumps(secret)
    client._csrf = (secret, token)
    return secret, token


def csrf_token(client) -> str:
    """A CSRF token for the client's session (csrf_secret_and_token), the one it already holds if its session
    still keeps the secret."""
    kept = client._csrf
    with client.session_transaction() as session:
        if kept and session.get("csrf_token") == kept[0]:
            return kept[1]
        return csrf_secret_and_token(client, session)[1]


class Session:
    """Puts the client back in the acting user's session before each example (a post may log out)."""

    def __init__(self, client, user_id: int | None) -> None:
        self.client, self.user_id = client, user_id
        self.identifier = None
        self.token: str | None = None
        self.session_id: str | None = None  # "<id>:<version>:<login token>" of the login the examples share
        self.secret: str | None = None  # the session's CSRF secret that self.token was signed for
        self.wrote = False
        with client.session_transaction() as session:
            session.clear()  # whoever the client was before
        if user_id is not None:
            self.identifier = _login_identifier(client, user_id)

    def prepare(self) -> str:
        limiter.reset()
        self.wrote = False  # True when this call wrote to the database (a new login)
        if self._still_signed_in():
            return self.token
        with self.client.session_transaction() as session:
            session.pop("_user_id", None)
            if self.user_id is not None:
                from accounts.services import start_login

                db.session.expire_all()  # a post may have bumped the version or ended the login
                user = db.session.get(User, self.user_id)
                token = start_login(user, now=utcnow())  # a post may have logged this login out
                db.session.commit()
                self.wrote = True
                self.session_id = f"{self.user_id}:{user.session_version}:{token}"
                session["_user_id"] = self.session_id
                session["_fresh"] = True
                session["_id"] = self.identifier
            # a logout clears the session, and with it the token's secret
            if self.token is None or session.get("csrf_token") != self.secret:
                self.secret, self.token = csrf_secret_and_token(self.client, session)
        return self.token

    def _still_signed_in(self) -> bool:
        """True when the last example left the client as prepare() would make it: the same login (which the app's
        own loader still accepts), fresh, with the CSRF secret the token was signed for. Then nothing is
        written: a new login row and its commit for every example were most of this harness's cost."""
        if self.token is None or (self.user_id is not None and self.session_id is None):
            return False
        cookie = self.client.get_cookie(self.client.application.config["SESSION_COOKIE_NAME"])
        if cookie is None:
            return False
        app = self.client.application
        try:
            session = app.session_interface.get_signing_serializer(app).loads(cookie.value)
        except BadSignature:  # unreadable: start over
            return False
        if session.get("csrf_token") != self.secret:  # the secret self.token was signed for
            return False
        if self.user_id is None:
            return "_user_id" not in session
        if (
            session.get("_user_id") != self.session_id
            or not session.get("_fresh")
            or session.get("_id") != self.identifier
        ):
            return False
        from accounts.services import load_session_user

        try:
            return load_session_user(self.session_id) is not None
        finally:
            db.session.rollback()  # the check's read transaction, not the test's


def draft_revision(slug: str, admin_id: int) -> str:
    """The revision the editor page would show, opening the draft as that page does."""
    from courses import studio
    from courses.models import Course

    db.session.expire_all()
    course = db.session.scalar(select(Course).where(Course.slug == slug))
    draft = studio.open_draft(course, db.session.get(User, admin_id), now=utcnow())
    db.session.commit()
    return str(draft.revision)


def send(client, route: Route, token: str, data: dict, extra: list, files: dict):
    prefix = next((k.split("-")[0] + "-" for k in route.fields if k.endswith("-revision")), "")
    pairs = [(f"{prefix}csrf_token", token)]
    for key, value in data.items():
        if value is None:
            continue
        for one in value if isinstance(value, list) else [value]:
            pairs.append((key, one))
    pairs += extra
    if route.url in ("/api/v1/verify", "/ims/ob/v3p0/register") or route.url.startswith("/wallet/exchanges/"):
        body = files.get("file")
        return client.post(route.url, data=body or b"", content_type="application/json")
    if route.files:
        form: dict = {}
        for key, value in pairs:
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            form.setdefault(key, []).append(value)
        for name, content in files.items():
            if content is not None:
                form[name] = (io.BytesIO(content), "upload.bin")
        return client.post(route.url, data=form, content_type="multipart/form-data")
    body = urlencode(pairs).encode()
    return client.post(route.url, data=body, content_type="application/x-www-form-urlencoded")


def run_route(client, endpoint: str, prebuilt):
    world = shared_world(prebuilt, client)
    route = routes(world)[endpoint]
    session = Session(client, world.users.get(route.role) if route.role else None)

    strategy = st.tuples(payload(route.fields), st.fixed_dictionaries({name: file_value() for name in route.files}))
    # The row counts the last example's post left, while nothing has written since: they are this example's
    # "before" then (counted once, after each post, instead of before it and again after a 4xx). Cleared as an
    # example starts, so an example that stopped early (a failure Hypothesis then shrinks) leaves none; a studio
    # route opens its draft (a write) before every post, so it counts before each post as ever.
    counted: list[tuple[int, ...] | None] = [None]

    @SETTINGS
    @given(strategy)
    def check(generated):
        (data, extra), files = generated
        known, counted[0] = counted[0], None
        token = session.prepare()
        if route.studio:  # opening the draft is the editor page's doing, not the post's
            revision = draft_revision(world.route_values["slug"], world.users[Role.ADMIN])
            data = {k: (revision if v == "REV" else v) for k, v in data.items()}
        before = known if known is not None and not session.wrote else row_counts()
        response = send(client, route, token, data, extra, files)
        assert response.status_code < 500, (endpoint, response.status_code, response.get_data(as_text=True)[:500])
        refused = 400 <= response.status_code < 500
        after = row_counts() if refused or not route.studio else None
        if refused:
            assert after == before, (endpoint, response.status_code)
        if not route.studio:
            counted[0] = after

    check()


POST_ENDPOINTS = sorted(
    routes(
        World(
            {},
            {
                k: 1
                for k in (
                    "slug",
                    "public_id",
                    "request_id",
                    "candidate_id",
                    "target_id",
                    "org",
                    "org_id",
                    "cohort_id",
                    "domain_id",
                    "join_token",
                    "join_code",
                    "consent",
                    "program",
                    "program_hash",
                    "job_id",
                    "unsubscribe_token",
                    "roster",
                    "staff_id",
                    "wallet_public_id",
                    "exchange_id",
                    "ob_authorize_query",
                    "ob_code",
                    "ob_verifier",
                    "ob_refresh",
                    "ob_access",
                    "ob_client_id",
                    "ob_secret",
                )
            },
            "t",
            [],
        )
    )
)


@pytest.mark.parametrize("endpoint", POST_ENDPOINTS)
def test_hostile_posts_never_fail_and_refusals_write_nothing(
    app, client, ctx, endpoint, tmp_path, monkeypatch, prebuilt
):
    monkeypatch.setitem(app.config, "UPLOAD_DIR", str(tmp_path / "uploads"))
    monkeypatch.setitem(app.config, "CERTIFICATE_DIR", str(tmp_path / "certificates"))
    run_route(client, endpoint, prebuilt)


# ---- JSON endpoints ----------------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    unicode_text,
    st.sampled_from(BOUNDARY),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(unicode_text, children, max_size=4),
    max_leaves=20,
)
CREDENTIAL_KEYS = [
    "@context",
    "type",
    "id",
    "name",
    "issuer",
    "validFrom",
    "validUntil",
    "credentialSubject",
    "credentialStatus",
    "proof",
]


def credential_like():
    """Objects shaped like a credential, with any key holding any type (the checks must not trust them)."""
    return st.dictionaries(st.sampled_from(CREDENTIAL_KEYS), json_values | st.sampled_from(SHAPED), max_size=10)


SHAPED = [
    ["https://www.w3.org/ns/credentials/v2", "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"],
    ["VerifiableCredential", "OpenBadgeCredential"],
    "2026-01-01T00:00:00Z",
    "2026-02-30T25:61:61Z",
    "9999-12-31T23:59:59+99:99",
    {"id": "did:web:localhost", "type": ["Profile"]},
    {"type": ["AchievementSubject"], "achievement": {"id": 1, "type": 2, "name": 3, "criteria": 4}},
    {"type": "BitstringStatusListEntry", "statusPurpose": "revocation", "statusListIndex": "99999999999"},
    {"type": "DataIntegrityProof", "cryptosuite": "eddsa-rdfc-2022", "proofValue": "z" + "1" * 90},
]


DUPLICATED_KEYS = [
    '{"@context": [], "@context": 5, "type": ["VerifiableCredential"], "type": {}}',
    '{"proof": {"type": "DataIntegrityProof"}, "proof": [1, 2], "issuer": "a", "issuer": null}',
    '{"credentialSubject": {"type": "AchievementSubject", "type": []}, "validFrom": 1, "validFrom": "x"}',
]


@SETTINGS
@given(
    body=st.one_of(
        json_values.map(json.dumps),
        credential_like().map(json.dumps),
        st.sampled_from(DUPLICATED_KEYS),
        st.binary(max_size=400),
    )
)
def test_api_verify_answers_any_body_with_a_verdict_never_a_server_error(app, client, body):
    limiter.reset()
    data = body.encode() if isinstance(body, str) else body
    response = client.post("/api/v1/verify", data=data, content_type="application/json")
    assert response.status_code in (200, 400), response.get_data(as_text=True)[:300]
    assert response.is_json
    assert response.json["verified"] is False


# ---- the Open Badges API ----------------------------------------------------------------------------------

REGISTRATION_KEYS = [
    "client_name",
    "client_uri",
    "logo_uri",
    "tos_uri",
    "policy_uri",
    "software_id",
    "software_version",
    "redirect_uris",
    "token_endpoint_auth_method",
    "grant_types",
    "response_types",
    "scope",
    "contacts",
    "jwks",
    "software_statement",
]
REGISTRATION_SHAPED = [
    ["https://backpack.example/cb"],
    ["http://127.0.0.1:9/cb", "https://x.example/#f", "https://u@x.example/", "https://x.example:99999/"],
    "https://backpack.example/",
    "https://purl.imsglobal.org/spec/ob/v3p0/scope/credential.readonly offline_access",
    "https://purl.imsglobal.org/spec/ob/v3p0/scope/credential.upsert",
    "client_secret_basic",
    ["authorization_code", "refresh_token"],
    ["code"],
    "Backpack",
]


@SETTINGS
@given(
    body=st.one_of(
        json_values.map(json.dumps),
        st.dictionaries(
            st.sampled_from(REGISTRATION_KEYS), json_values | st.sampled_from(REGISTRATION_SHAPED), max_size=13
        ).map(json.dumps),
        st.binary(max_size=300),
    )
)
def test_client_registration_answers_any_body_with_an_oauth_error_or_a_client(app, client, ctx, body):
    limiter.reset()
    before = row_counts()
    data = body.encode() if isinstance(body, str) else body
    response = client.post("/ims/ob/v3p0/register", data=data, content_type="application/json")
    assert response.status_code in (201, 400, 413), response.get_data(as_text=True)[:300]
    if response.status_code == 201:
        assert response.json["client_secret"] and response.json["redirect_uris"]
        return
    assert response.json["error"] in ("invalid_client_metadata", "invalid_redirect_uri", "invalid_request")
    assert response.json["error_description"].isascii()
    assert row_counts() == before


def test_authorization_requests_of_any_shape_answer_and_write_nothing(app, client, ctx):
    """GET /authorize only shows the consent page, sends the error back to a registered address, or refuses on
    our page: never a server error, never a row."""
    from obapi import server

    learner = make_user(email="lee@example.org")
    good = open_badges_connection(learner)
    db.session.commit()
    assert login(client, "lee@example.org").status_code == 302
    known = {
        "response_type": ["code", "token", "code token"],
        "client_id": [good["ob_client_id"]],
        "redirect_uri": ["https://backpack.example/cb", "https://backpack.example/cb/", "https://evil.example/cb"],
        "scope": [server.CREDENTIAL_READ, server.CREDENTIAL_UPSERT, f"{server.PROFILE_READ} offline_access"],
        "code_challenge": ["E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "x"],
        "code_challenge_method": ["S256", "plain", "s256"],
        "state": ["xyz"],
    }
    pairs = st.lists(
        st.sampled_from(sorted(known)).flatmap(
            lambda key: st.tuples(st.just(key), st.sampled_from(known[key]) | values(None))
        ),
        max_size=9,
    )
    before = row_counts()

    @SETTINGS
    @given(pairs)
    def check(pairs):
        limiter.reset()
        clean = [(k, v) for k, v in pairs if "\x00" not in v]
        response = client.get("/ims/ob/v3p0/authorize?" + urlencode(clean))
        assert response.status_code in (200, 302, 400), (clean, response.status_code)
        if response.status_code == 302:
            assert response.headers["Location"].startswith("https://backpack.example/cb?"), clean
        assert row_counts() == before

    check()


def test_api_reads_answer_any_query_and_token_with_data_or_imsx(app, client, ctx):
    learner = make_user(email="lee@example.org")
    good = open_badges_connection(learner)
    db.session.commit()
    authorization = st.one_of(
        st.just(f"Bearer {good['ob_access']}"),
        st.just(f"bearer {good['ob_access']}"),
        unicode_text.map(lambda s: "Bearer " + s),
        st.sampled_from(BOUNDARY).map(lambda s: "Bearer " + s),
        st.sampled_from(["", "Bearer", "Basic abc", "Bearer a b", f"Bearer {good['ob_access']} x"]),
    )
    query = st.lists(st.tuples(st.sampled_from(["limit", "offset", "since"]), values("2")), max_size=4)

    @SETTINGS
    @given(authorization, query, st.sampled_from(["/credentials", "/profile"]))
    def check(header, pairs, path):
        limiter.reset()
        clean = [(k, v) for k, v in pairs if "\x00" not in v]
        if any(ord(ch) < 32 or ord(ch) > 126 for ch in header):
            return  # not a header an HTTP client can send
        response = client.get(f"/ims/ob/v3p0{path}?" + urlencode(clean), headers={"Authorization": header})
        assert response.status_code in (200, 400, 401), (header, clean, response.get_data(as_text=True)[:300])
        assert response.is_json
        if response.status_code != 200:
            assert response.json["imsx_codeMajor"] == "failure" and response.json["imsx_description"]

    check()


@settings(SETTINGS, max_examples=40)
@given(credential=credential_like())
def test_credential_upload_page_reports_problems_never_a_server_error(app, client, credential):
    limiter.reset()
    token = csrf_token(client)
    response = client.post(
        "/verify/credential",
        data={"csrf_token": token, "file": (io.BytesIO(json.dumps(credential).encode()), "credential.json")},
        content_type="multipart/form-data",
    )
    assert response.status_code in (200, 422), response.get_data(as_text=True)[:300]


ID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZabcdefghjkmnpqrstvwxyzILOUilou-_ ."


@SETTINGS
@given(
    public_id=st.one_of(
        st.text(st.sampled_from(ID_ALPHABET), max_size=80),
        unicode_text.filter(lambda s: "/" not in s and "\x00" not in s),
        st.sampled_from(BOUNDARY).filter(lambda s: "/" not in s and "\x00" not in s and s.strip()),
    )
)
def test_certificate_api_answers_any_id_with_json(app, client, public_id):
    limiter.reset()
    from urllib.parse import quote

    response = client.get("/api/v1/certificates/" + quote(public_id, safe=""))
    assert response.status_code in (400, 404), (public_id, response.status_code)
    assert response.is_json and isinstance(response.json["message"], str)


def test_a_real_certificate_is_found_through_any_spelling_of_its_id(app, client, ctx):
    load_test_framework()
    certificate = make_certificate()
    public_id = certificate.public_id

    @SETTINGS
    @given(spelled=st.lists(st.sampled_from(["", "-", " ", "lower"]), min_size=len(public_id), max_size=len(public_id)))
    def check(spelled):
        limiter.reset()
        typed = "".join(
            ch.lower() if how == "lower" else ch + how for ch, how in zip(public_id, spelled, strict=True)
        ).strip()
        response = client.get("/api/v1/certificates/" + typed.replace(" ", "%20"))
        assert response.status_code == 200, typed
        assert response.json["status"] == "valid"

    check()


@SETTINGS
@given(rows=st.lists(st.tuples(unicode_text, st.one_of(st.none(), unicode_text)), min_size=0, max_size=8))
def test_bulk_csv_of_anything_is_read_or_refused_with_a_message(app, client, ctx, rows):
    import csv

    if db.session.scalar(select(func.count()).select_from(User)) == 0:
        make_employer("emma@example.org")
        login(client, "emma@example.org")
    out = io.StringIO()
    writer = csv.writer(out)
    for raw, name in rows:
        writer.writerow([raw] if name is None else [raw, name])
    token = csrf_token(client)
    before = row_counts()
    response = client.post(
        "/verify/bulk",
        data={"csrf_token": token, "file": (io.BytesIO(out.getvalue().encode()), "ids.csv"), "download": "1"},
        content_type="multipart/form-data",
    )
    assert response.status_code in (200, 422), response.get_data(as_text=True)[:300]
    assert row_counts() == before
    if response.mimetype == "text/csv":
        for line in list(csv.reader(io.StringIO(response.get_data(as_text=True))))[1:]:
            assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in line), line


def test_dates_out_of_range_in_dashboard_filters_are_refused_not_server_errors(app, client, ctx):
    make_user(email="admin@example.org", role=Role.ADMIN)
    login(client, "admin@example.org")

    @SETTINGS
    @given(
        start=st.one_of(st.none(), st.dates().map(str), st.sampled_from(["0001-01-01", "9999-12-31", "2026-02-30"])),
        end=st.one_of(st.none(), st.dates().map(str), st.sampled_from(["0001-01-01", "9999-12-31", "x"])),
        window=st.one_of(st.none(), st.integers(-(2**70), 2**70).map(str)),
        path=st.sampled_from(["/admin/insights", "/admin/xapi.jsonl", "/admin/insights/charts/course.svg"]),
    )
    def check(start, end, window, path):
        params = {k: v for k, v in (("from", start), ("to", end), ("window", window)) if v is not None}
        response = client.get(path, query_string=params)
        assert response.status_code in (200, 400, 404), (path, params, response.status_code)

    check()


def test_tampered_real_credentials_get_a_verdict_never_a_server_error(app, client, ctx):
    """A genuine signed credential with one part replaced by anything: the proof check must fail cleanly."""
    load_test_framework()
    certificate = make_certificate()
    from credentials.ids import format_public_id

    genuine = client.get(f"/credentials/{format_public_id(certificate.public_id)}.json").json
    paths = []

    def walk(node, path):
        paths.append(path)
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, (*path, key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, (*path, index))

    walk(genuine, ())

    @settings(SETTINGS, max_examples=40)
    @given(path=st.sampled_from(paths[1:]), value=json_values | st.sampled_from(SHAPED), delete=st.booleans())
    def check(path, value, delete):
        limiter.reset()
        document = json.loads(json.dumps(genuine))
        node = document
        for key in path[:-1]:
            node = node[key]
        if delete and isinstance(node, dict):
            del node[path[-1]]
        else:
            node[path[-1]] = value
        response = client.post("/api/v1/verify", data=json.dumps(document), content_type="application/json")
        assert response.status_code == 200, (path, value, response.get_data(as_text=True)[:300])
        if document != genuine:
            assert response.json["verified"] is False, (path, value)

    limiter.reset()
    assert client.post("/api/v1/verify", json=genuine).json["verified"] is True
    check()


# ---- blank-node graphs and moved IRIs in genuine credentials (issue 12, items 1 and 2) -----------------

# the expanded IRI of each top-level term (VC 2.0 and OB 3.0 contexts): the same quads under another key
EXPANDED = {
    "validUntil": ("https://www.w3.org/2018/credentials#validUntil", "http://www.w3.org/2001/XMLSchema#dateTime"),
    "validFrom": ("https://www.w3.org/2018/credentials#validFrom", "http://www.w3.org/2001/XMLSchema#dateTime"),
    "name": ("https://schema.org/name", None),
    "awardedDate": ("https://purl.imsglobal.org/spec/vc/ob/vocab.html#awardedDate", None),
    "credentialStatus": ("https://www.w3.org/2018/credentials#credentialStatus", "@id"),
    "issuer": ("https://www.w3.org/2018/credentials#issuer", "@id"),
}


def blank_node_graph():
    """Up to 10 blank nodes with random links between them, under a random key, with random ids."""
    return st.integers(1, 10).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.sets(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=n * n),
            st.sampled_from(["https://example.org/knows", "knows", "@graph", "@included", "credentialSubject"]),
            st.booleans(),
        )
    )


def attach_graph(document: dict, generated) -> dict:
    n, edges, key, inside_subject = generated
    nodes = [
        {"id": f"_:b{i}", "https://example.org/knows": [{"id": f"_:b{j}"} for a, j in sorted(edges) if a == i]}
        for i in range(n)
    ]
    target = document["credentialSubject"] if inside_subject and key != "credentialSubject" else document
    if key == "credentialSubject":
        target[key] = {**target[key], "https://example.org/knows": nodes}
    else:
        target[key] = nodes
    return document


def move_to_iri(document: dict, term: str, typed: bool) -> dict:
    iri, datatype = EXPANDED[term]
    value = document.pop(term)
    if datatype == "@id" and isinstance(value, dict):
        document[iri] = value
    elif datatype == "@id":
        document[iri] = {"@id": value}
    else:
        document[iri] = {"@value": value, "@type": datatype} if typed and datatype else value
    return document


def test_blank_node_graphs_and_moved_iris_in_genuine_credentials_never_verify(app, client, ctx):
    """Never a 5xx, never "valid" for a modified credential, and an expired one never verifies (API, SVG, page)."""
    from datetime import timedelta

    from credentials.ids import format_public_id
    from credentials.verification import bake_svg

    load_test_framework()
    current = make_certificate(make_user(email="now@example.org", name="Nora Now"), make_course("now-course"))
    old = make_certificate(
        make_user(email="old@example.org", name="Olga Old"),
        make_course("old-course"),
        now=utcnow() - timedelta(days=3 * 365),
    )
    genuine = {
        "current": client.get(f"/credentials/{format_public_id(current.public_id)}.json").json,
        "expired": client.get(f"/credentials/{format_public_id(old.public_id)}.json").json,
    }
    limiter.reset()
    assert client.post("/api/v1/verify", json=genuine["current"]).json["verdict"] == "valid"
    assert client.post("/api/v1/verify", json=genuine["expired"]).json["verdict"] == "expired"

    @settings(SETTINGS, max_examples=40)
    @given(
        which=st.sampled_from(["current", "expired"]),
        change=st.one_of(
            blank_node_graph().map(lambda g: ("graph", g)),
            st.tuples(st.sampled_from(sorted(EXPANDED)), st.booleans()).map(lambda m: ("move", m)),
        ),
        via=st.sampled_from(["json", "svg", "page"]),
    )
    def check(which, change, via):
        limiter.reset()
        document = json.loads(json.dumps(genuine[which]))
        kind, detail = change
        if kind == "graph":
            document = attach_graph(document, detail)
        elif detail[0] in document:
            document = move_to_iri(document, *detail)
        if via == "page":
            token = csrf_token(client)
            response = client.post(
                "/verify/credential",
                data={"csrf_token": token, "file": (io.BytesIO(json.dumps(document).encode()), "c.json")},
                content_type="multipart/form-data",
            )
            assert response.status_code in (200, 422), response.get_data(as_text=True)[:300]
            assert "✓ Verified" not in response.get_data(as_text=True) or (
                document == genuine[which] and which == "current"
            )
            return
        body = json.dumps(document).encode() if via == "json" else bake_svg(document, title="Badge").encode()
        response = client.post("/api/v1/verify", data=body, content_type="application/json")
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        if document != genuine[which] or which == "expired":
            assert response.json["verified"] is False and response.json["verdict"] != "valid", (kind, detail)

    check()


def test_forged_and_tampered_wallet_presentations_are_refused_and_write_nothing(app, client, ctx):
    """A genuine DIDAuth presentation for an open exchange, with one part replaced or removed (or a
    presentation-shaped object of anything): always a 4xx with a message, the exchange stays unspent, no row."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from credentials.models import WalletExchange
    from credentials.wallet import open_exchange
    from tests.test_wallet import presentation

    load_test_framework()
    certificate = make_certificate()
    exchange = open_exchange(certificate.user, certificate, now=utcnow())
    db.session.commit()
    genuine = presentation(Ed25519PrivateKey.generate(), exchange.challenge)
    paths = []

    def walk(node, path):
        paths.append(path)
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, (*path, key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, (*path, index))

    walk(genuine, ())
    url = f"/wallet/exchanges/{exchange.public_id}"

    @settings(SETTINGS, max_examples=40)
    @given(
        path=st.sampled_from(paths[1:]),
        value=json_values,
        delete=st.booleans(),
        shaped=st.dictionaries(
            st.sampled_from(["@context", "type", "holder", "proof", "verifiableCredential"]), json_values, max_size=5
        ),
        wrap=st.booleans(),
    )
    def check(path, value, delete, shaped, wrap):
        limiter.reset()
        document = json.loads(json.dumps(genuine))
        node = document
        for key in path[:-1]:
            node = node[key]
        if delete and isinstance(node, dict):
            del node[path[-1]]
        else:
            node[path[-1]] = value
        before = row_counts()
        for body in (document, shaped or {"type": "VerifiablePresentation"}):
            if body == genuine and not wrap:  # the change left it as it was (same value): it is the real thing
                continue
            sent = {"verifiablePresentation": body} if wrap else body
            response = client.post(url, data=json.dumps(sent), content_type="application/json")
            assert 400 <= response.status_code < 500, (path, value, response.get_data(as_text=True)[:300])
            assert response.is_json and "Nothing was issued" in response.json["error"]
            assert row_counts() == before
        db.session.expire_all()
        assert db.session.get(WalletExchange, exchange.id).redeemed_at is None

    check()
