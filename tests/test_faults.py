"""When parts fail: the database goes away, PDF storage is full or broken, the signing key is missing."""

from __future__ import annotations

import errno
import json
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from accounts.models import Role, User
from core import create_app
from core.extensions import db
from credentials.ids import format_public_id
from credentials.models import Certificate, PublishedKey
from tests.conftest import TEST_SIGNING_KEYS, Client
from tests.conftest import test_config as make_config
from tests.factories import PASSWORD, load_test_framework, login, make_certificate, make_course, make_user

pytestmark = pytest.mark.slow

# ---- the database stops during traffic ------------------------------------------------------------


@pytest.mark.nodb
def test_database_outage_gives_a_friendly_503_and_recovers_without_a_restart(tmp_path_factory):
    """A PostgreSQL of its own (started and stopped by the test), whichever database the suite runs on."""
    from flask_migrate import upgrade

    from tests.pgcluster import Cluster

    with Cluster(database="outage") as cluster:
        app = create_app(make_config(tmp_path_factory, cluster.url))
        app.test_client_class = Client
        with app.app_context():
            upgrade()
            load_test_framework()
            make_course("ai-basics")
            make_user(email="lee@example.org")
        try:
            learner, visitor = app.test_client(), app.test_client()
            assert login(learner, "lee@example.org").status_code == 302
            token = visitor.csrf_token("/register")
            assert visitor.get("/courses").status_code == 200

            cluster.stop()
            started = time.monotonic()
            page = visitor.get("/courses")
            html = page.get_data(as_text=True)
            assert page.status_code == 503 and page.headers["Retry-After"] == "30"
            assert "cannot reach our database" in html and "Nothing you sent was saved" in html
            assert learner.get("/dashboard").status_code == 503  # loading the logged-in user fails calmly too
            api = visitor.get("/api/v1/certificates/" + "A" * 28)
            assert api.status_code == 503 and api.json["status"] == 503
            signup = {"email": "new@example.org", "name": "New Person", "password": "a long fresh passphrase 42"}
            signup |= {"confirm": signup["password"], "csrf_token": token}
            assert visitor.post("/register", data=signup).status_code == 503
            assert time.monotonic() - started < 20  # fails fast, no hung workers

            cluster.start()
            assert visitor.get("/courses").status_code == 200  # the same app: dead connections were replaced
            assert learner.get("/dashboard").status_code == 200  # and the session survived
            with app.app_context():
                assert db.session.scalar(select(func.count()).where(User.email == "new@example.org")) == 0
            assert visitor.post("/register", data=signup).status_code == 303
            with app.app_context():
                assert db.session.scalar(select(func.count()).where(User.email == "new@example.org")) == 1
        finally:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()


# ---- PDF storage full or unwritable; rendering broken ----------------------------------------------


@pytest.fixture
def pdf_dir(app, tmp_path):
    app.config["CERTIFICATE_DIR"] = str(tmp_path / "pdfs")
    yield tmp_path / "pdfs"
    app.config["CERTIFICATE_DIR"] = None


def test_a_full_disk_still_issues_and_serves_the_pdf_and_stores_it_later(client, ctx, pdf_dir, monkeypatch):
    load_test_framework()
    real_write = Path.write_bytes

    def disk_full(self, data):  # the certificate volume is full (WeasyPrint's own temp files still work)
        if pdf_dir in self.parents:
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", disk_full)
    certificate = make_certificate(make_user(email="lee@example.org"))  # issuance does not need the disk
    assert certificate is not None and certificate.pdf_path is None
    login(client, "lee@example.org")
    url = f"/certificates/{format_public_id(certificate.public_id)}.pdf"
    response = client.get(url)
    assert response.status_code == 200 and response.data.startswith(b"%PDF")
    db.session.refresh(certificate)
    assert certificate.pdf_path is None and not list(pdf_dir.glob("*.pdf"))

    monkeypatch.setattr(Path, "write_bytes", real_write)  # space again
    assert client.get(url).status_code == 200
    db.session.refresh(certificate)
    assert certificate.pdf_sha256 and (pdf_dir / certificate.pdf_path).exists()


def test_a_broken_renderer_shows_being_prepared_and_the_pdf_comes_later(app, client, ctx, pdf_dir, monkeypatch):
    load_test_framework()
    certificate = make_certificate(make_user(email="lee@example.org"))
    display = format_public_id(certificate.public_id)

    def broken(*args, **kwargs):
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr("credentials.storage.render_pdf", broken)
    login(client, "lee@example.org")
    response = client.get(f"/certificates/{display}.pdf")
    html = response.get_data(as_text=True)
    assert response.status_code == 503 and response.headers["Retry-After"] == "60"
    assert "being prepared" in html and display in html and f"/verify/{display}" in html
    assert "Traceback" not in html and "renderer crashed" not in html
    assert client.get(f"/verify/{display}").status_code == 200  # the certificate itself stands

    monkeypatch.undo()
    result = app.test_cli_runner().invoke(args=["credentials", "render", "--all", "--workers", "1"])
    assert result.exit_code == 0, result.output
    db.session.refresh(certificate)
    assert (pdf_dir / certificate.pdf_path).exists()
    assert client.get(f"/certificates/{display}.pdf").data.startswith(b"%PDF")


# ---- the signing key file goes missing or bad ------------------------------------------------------


def _broken_key_files(tmp_path: Path) -> dict[str, Path]:
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    folder = tmp_path / "a-directory.json"
    folder.mkdir()
    return {"missing": tmp_path / "nowhere" / "keys.json", "unreadable": garbage, "a directory": folder}


@pytest.mark.parametrize("problem", ["missing", "unreadable", "a directory"])
def test_without_a_signing_key_the_app_starts_issues_warns_admins_and_keeps_verifying(
    problem, app, client, ctx, tmp_path, tmp_path_factory, database_url
):
    load_test_framework()
    before = make_certificate(make_user(email="lee@example.org"))
    signed = client.get(f"/credentials/{format_public_id(before.public_id)}.json").json  # signed with key-1
    assert db.session.scalar(select(PublishedKey.id)) == "key-1"  # its public half is on record
    make_user(email="admin@example.org", role=Role.ADMIN)

    key_file = _broken_key_files(tmp_path)[problem]
    app.config.update(SIGNING_KEYS=None, SIGNING_KEY_FILE=str(key_file))
    try:
        # a fresh app starts with the broken key store
        config = make_config(tmp_path_factory, database_url) | {"SIGNING_KEYS": None, "SIGNING_KEY_FILE": str(key_file)}
        assert create_app(config).name

        # issuance goes on: a learner completes a course and gets a certificate
        after = make_certificate(make_user(email="kim@example.org"), make_course("second-course"))
        assert db.session.scalar(select(func.count()).select_from(Certificate)) == 2
        after_id = format_public_id(after.public_id)
        waiting = client.get(f"/credentials/{after_id}.json")
        assert waiting.status_code == 503 and "signing key" in waiting.json["message"]
        assert client.get(f"/api/v1/certificates/{after_id}").json["status"] == "valid"

        # existing credentials still verify, against the published public key
        report = client.post("/api/v1/verify", data=json.dumps(signed), content_type="application/json")
        assert report.status_code == 200 and report.json["verified"] is True, report.json
        did = client.get("/.well-known/did.json")
        assert did.status_code == 200 and TEST_SIGNING_KEYS["keys"][0]["publicKeyMultibase"] in did.text

        # admins are told, clearly, on every page; learners are not
        login(client, "admin@example.org")
        assert "Credentials cannot be signed" in client.get("/admin/certificates").text
        assert str(key_file) in client.get("/studio/").text
        client.submit("/logout", page="/studio/")
        login(client, "kim@example.org")
        assert "Credentials cannot be signed" not in client.get("/certificates").text
    finally:
        app.config.update(SIGNING_KEYS=TEST_SIGNING_KEYS, SIGNING_KEY_FILE=None)

    # the key is back: the waiting credential is signed, and the warning is gone
    assert client.get(f"/credentials/{after_id}.json").status_code == 200
    client.submit("/logout", page="/certificates")
    login(client, "admin@example.org", PASSWORD)
    assert "Credentials cannot be signed" not in client.get("/admin/certificates").text
