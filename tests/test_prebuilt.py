"""The suite's `prebuilt` fixture (tests/conftest.py): rows built once per module come back exactly, every test.

The tests run in file order: the first builds, the later ones get the snapshot copied back. Each compares the
whole database with the copy the build itself took, so a restore that loses, adds or changes a row, counts a
trigger-kept rollup twice or leaves a sequence behind its rows fails here.
"""

from __future__ import annotations

from sqlalchemy import select

from accounts.models import Role
from core.extensions import db
from credentials.models import Certificate, RevocationReason
from tests.factories import load_test_framework, make_certificate, make_course, make_user

BUILDS: list[int] = []  # how many times build() ran in this module


def every_row() -> dict[str, list[tuple]]:
    """Every table's rows, sorted (as text, so that NULLs and mixed types compare)."""
    rows = {}
    with db.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            found = conn.execute(select(table)).all()
            rows[table.name] = sorted(tuple(map(repr, row)) for row in found)
    return rows


def build() -> dict:
    BUILDS.append(1)
    load_test_framework()
    certificate = make_certificate(make_user(email="lee@example.org", name="Lee Learner"), make_course("ai-basics"))
    db.session.commit()
    return {"certificate_id": certificate.id, "rows": every_row()}


def test_the_first_test_builds_and_sees_its_own_rows(ctx, prebuilt):
    world = prebuilt(build)
    assert BUILDS == [1]
    rows = every_row()
    assert rows == world["rows"]
    # the build wrote what the tests below rely on: the rollups kept by triggers among them
    assert rows["certificates"] and rows["enrollments"] and rows["insights_certificate_days"]


def test_a_later_test_gets_the_same_rows_back_and_may_change_them(ctx, prebuilt):
    from credentials import services

    world = prebuilt(build)
    assert BUILDS == [1]  # copied back, not built again
    assert every_row() == world["rows"]  # rollups included: no trigger counted the restored rows again
    admin = make_user(email="admin@example.org", role=Role.ADMIN)  # new rows take fresh ids: sequences came back
    certificate = db.session.get(Certificate, world["certificate_id"])
    services.revoke(admin, certificate, reason=RevocationReason.OTHER, note="n", now=certificate.awarded_at)
    db.session.commit()
    assert every_row() != world["rows"]


def test_a_change_made_by_an_earlier_test_is_gone(ctx, prebuilt):
    world = prebuilt(build)
    assert BUILDS == [1]
    assert every_row() == world["rows"]
    assert db.session.get(Certificate, world["certificate_id"]).revoked_at is None
