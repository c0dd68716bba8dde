"""Files written at run time go through one storage interface (core/storage.py): a local folder by default, an
S3-compatible bucket in production. The S3 backend runs against a real S3-speaking server on loopback (moto's
standalone server, started once for this module), so boto3 signs, sends and parses every call as it would
against AWS S3 or MinIO.

The contract holds on both backends; then the app on S3: certificate PDFs, their previews and lesson images
land in the bucket and nowhere on local disk, are served from it, and a storage outage is a calm 503 with
nothing recorded.
"""

from __future__ import annotations

import hashlib
import io
import zipfile

import pytest
from sqlalchemy import func, select

from core.extensions import db
from core.storage import LocalStorage, StorageError, storage
from credentials.ids import format_public_id
from tests.factories import load_test_framework, login, make_certificate, make_user
from tests.s3server import s3_server
from tests.test_studio import png_bytes, upload_image


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with s3_server(tmp_path_factory.mktemp("s3")) as server:
        yield server


@pytest.fixture
def on_s3(app, s3, monkeypatch, request):
    """The suite's app with its storage in the S3 bucket, under a prefix of this test's own."""
    prefix = "t-" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:12] + "/"
    for key, value in s3.config(prefix=prefix).items():
        monkeypatch.setitem(app.config, key, value)
    return prefix


@pytest.fixture(params=["local", "s3"])
def store(request, app, tmp_path, s3, monkeypatch):
    if request.param == "s3":
        prefix = "contract-" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:12] + "/"
        for key, value in s3.config(prefix=prefix).items():
            monkeypatch.setitem(app.config, key, value)
    else:
        monkeypatch.setitem(app.config, "CERTIFICATE_DIR", str(tmp_path / "certificates"))
    with app.app_context():
        yield storage("certificates")


# ---- the contract, on both backends ------------------------------------------------------------------------


@pytest.mark.nodb
def test_objects_round_trip_replace_list_and_delete(store):
    with pytest.raises(FileNotFoundError):
        store.read("A1.pdf")
    assert not store.exists("A1.pdf") and store.names() == []
    store.write("A1.pdf", b"%PDF first", content_type="application/pdf")
    store.write("A1.pdf", b"%PDF second", content_type="application/pdf")  # a retried render: same key
    store.write("A1-0123.png", b"png", content_type="image/png")
    store.write("B2.pdf", b"%PDF other")
    assert store.read("A1.pdf") == b"%PDF second"
    assert store.exists("A1.pdf") and not store.exists("A2.pdf")
    assert store.names() == ["A1-0123.png", "A1.pdf", "B2.pdf"]  # one object per key, no temp files
    assert store.names("A1") == ["A1-0123.png", "A1.pdf"]
    store.delete("A1.pdf")
    store.delete("A1.pdf")  # already gone: fine
    assert store.names() == ["A1-0123.png", "B2.pdf"]
    with pytest.raises(FileNotFoundError):
        store.read("A1.pdf")


@pytest.mark.nodb
@pytest.mark.parametrize("key", ["", "../config.py", "a/b.pdf", ".hidden", "x" * 201, "a b.pdf", "é.pdf"])
def test_keys_are_flat_names(store, key):
    for call in (store.read, store.exists, store.delete, lambda k: store.write(k, b"x")):
        with pytest.raises(ValueError):
            call(key)


@pytest.mark.nodb
def test_s3_objects_live_under_prefix_and_area(app, s3, monkeypatch):
    for key, value in s3.config(prefix="tenant-a/").items():
        monkeypatch.setitem(app.config, key, value)
    with app.app_context():
        storage("certificates").write("C3.pdf", b"%PDF a")
        storage("uploads").write("C3.pdf", b"not the same area")
        monkeypatch.setitem(app.config, "STORAGE_S3_PREFIX", "tenant-b")
        assert storage("certificates").names() == []  # another prefix sees nothing of the first
        assert storage("certificates").describe() == f"s3://{app.config['STORAGE_S3_BUCKET']}/tenant-b/certificates/"
    assert s3.keys("tenant-a/") == ["tenant-a/certificates/C3.pdf", "tenant-a/uploads/C3.pdf"]
    assert s3.get("tenant-a/certificates/C3.pdf") == b"%PDF a"


@pytest.mark.nodb
def test_failures_are_oserrors_whichever_backend(app, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("where the folder should be")
    with pytest.raises(StorageError):
        LocalStorage(blocker / "pdfs").write("A1.pdf", b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # no temp file left behind

    # an S3 endpoint nobody answers on (a closed loopback port): boto3 retries, then StorageError
    from tests.s3server import _free_port

    settings = {"STORAGE_BACKEND": "s3", "STORAGE_S3_BUCKET": "b", "STORAGE_S3_REGION": "us-east-1"}
    settings |= {"STORAGE_S3_ACCESS_KEY_ID": "k", "STORAGE_S3_SECRET_ACCESS_KEY": "s"}
    settings["STORAGE_S3_ENDPOINT_URL"] = f"http://127.0.0.1:{_free_port()}"
    for key, value in settings.items():
        monkeypatch.setitem(app.config, key, value)
    with app.app_context():
        down = storage("uploads")
        for call in (lambda: down.write("A1.png", b"x"), lambda: down.read("A1.png"), lambda: down.names()):
            with pytest.raises(StorageError) as caught:
                call()
            assert isinstance(caught.value, OSError) and "bucket 'b'" in str(caught.value)


@pytest.mark.nodb
def test_an_incomplete_s3_configuration_refuses_to_start(tmp_path):
    from core import create_app
    from core.config import ConfigError

    base = {"APP_ENV": "test", "SECRET_KEY": "k" * 40, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db"}
    with pytest.raises(ConfigError, match="FLASK_STORAGE_S3_BUCKET"):
        create_app({**base, "STORAGE_BACKEND": "s3"})
    with pytest.raises(ConfigError, match="local or s3"):
        create_app({**base, "STORAGE_BACKEND": "ftp"})


@pytest.mark.nodb
def test_copy_local_moves_a_single_server_into_the_bucket(app, s3, on_s3, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "CERTIFICATE_DIR", str(tmp_path / "certificates"))
    monkeypatch.setitem(app.config, "UPLOAD_DIR", str(tmp_path / "uploads"))
    LocalStorage(tmp_path / "certificates").write("A1.pdf", b"%PDF one")
    LocalStorage(tmp_path / "certificates").write("B2.pdf", b"%PDF two")
    LocalStorage(tmp_path / "uploads").write("a" * 64 + ".png", b"png")
    runner = app.test_cli_runner()
    first = runner.invoke(args=["storage", "copy-local"])
    assert first.exit_code == 0, first.output
    assert "certificates: 2 copied, 0 already there" in first.output and "uploads: 1 copied" in first.output
    assert s3.keys(on_s3) == [
        f"{on_s3}certificates/A1.pdf",
        f"{on_s3}certificates/B2.pdf",
        f"{on_s3}uploads/{'a' * 64}.png",
    ]
    assert s3.get(f"{on_s3}certificates/B2.pdf") == b"%PDF two"
    assert s3.client().head_object(Bucket="academy-test", Key=f"{on_s3}certificates/A1.pdf")["ContentType"] == (
        "application/pdf"
    )
    again = runner.invoke(args=["storage", "copy-local"])
    assert (
        "certificates: 0 copied, 2 already there" in again.output
        and "uploads: 0 copied, 1 already there" in again.output
    )

    monkeypatch.setitem(app.config, "STORAGE_BACKEND", "local")
    refused = runner.invoke(args=["storage", "copy-local"])
    assert refused.exit_code != 0 and "FLASK_STORAGE_BACKEND=s3" in refused.output


# ---- the app on S3 ------------------------------------------------------------------------------------------


def test_certificate_pdfs_and_previews_are_stored_in_the_bucket_and_served_from_it(app, client, s3, on_s3):
    from credentials.models import Certificate

    local = set(_local_files(app))
    with app.app_context():
        load_test_framework()
        certificate = make_certificate(make_user(email="lee@example.org"))
        public, public_id = format_public_id(certificate.public_id), certificate.public_id
        db.session.commit()
    login(client, "lee@example.org")
    first = client.get(f"/certificates/{public}.pdf")
    assert first.status_code == 200 and first.data.startswith(b"%PDF")
    key = f"{on_s3}certificates/{public_id}.pdf"
    assert s3.keys(on_s3) == [key] and s3.get(key) == first.data
    with app.app_context():
        stored = db.session.scalar(select(Certificate).where(Certificate.public_id == public_id))
        assert stored.pdf_path == f"{public_id}.pdf"
        assert stored.pdf_sha256 == hashlib.sha256(first.data).hexdigest()
        rendered_at = stored.pdf_rendered_at

    again = client.get(f"/certificates/{public}.pdf")
    assert again.data == first.data  # the stored bytes, not a second render
    preview = client.get(f"/verify/{public}/certificate.png")
    assert preview.status_code == 200 and preview.data.startswith(b"\x89PNG")
    preview_key = f"{on_s3}certificates/{public_id}-{hashlib.sha256(first.data).hexdigest()[:16]}.png"
    assert s3.keys(on_s3) == sorted([key, preview_key]) and s3.get(preview_key) == preview.data
    with app.app_context():
        assert db.session.scalar(select(Certificate.pdf_rendered_at)) == rendered_at
    assert set(_local_files(app)) == local  # nothing written beside the app


def test_lesson_images_are_stored_in_the_bucket_served_from_it_and_exported(app, client, s3, on_s3):
    from courses.models import MediaFile

    local = set(_local_files(app))
    with app.app_context():
        load_test_framework()
        make_user(email="admin@example.org", name="Ada Admin", role=_admin_role())
        db.session.commit()
    login(client, "admin@example.org")
    image = png_bytes(6, 5)
    assert "Image uploaded" in upload_image(client, image, "aisle.png").get_data(as_text=True)
    with app.app_context():
        media = db.session.scalar(select(MediaFile))
        filename = media.filename
    assert s3.keys(on_s3) == [f"{on_s3}uploads/{filename}"] and s3.get(f"{on_s3}uploads/{filename}") == image

    served = client.get(f"/media/{filename}")
    assert served.status_code == 200 and served.data == image and served.mimetype == "image/png"
    assert served.headers["ETag"] == f'"{hashlib.sha256(image).hexdigest()}"'
    assert "sandbox" in served.headers["Content-Security-Policy"]
    assert "max-age=31536000" in served.headers["Cache-Control"]
    revalidated = client.get(f"/media/{filename}", headers={"If-None-Match": served.headers["ETag"]})
    assert revalidated.status_code == 304 and revalidated.data == b""

    # the course bundle (an export) reads its images from the same storage
    from tests.test_studio import build_course, post

    build_course(client, "pictures")
    body = f"![A warehouse aisle](/media/{filename})\n"
    post(
        client,
        "/studio/pictures/modules/0/lessons/0",
        {"title": "Aisles", "minutes": "8", "body": body},
        slug="pictures",
    )
    bundle = zipfile.ZipFile(io.BytesIO(client.get("/studio/pictures/bundle.zip").data))
    assert bundle.read(f"pictures/media/{filename}") == image

    s3.client().delete_object(Bucket=s3.config()["STORAGE_S3_BUCKET"], Key=f"{on_s3}uploads/{filename}")
    assert client.get(f"/media/{filename}").status_code == 404  # recorded, but the object is gone
    assert set(_local_files(app)) == local


def test_a_storage_outage_is_a_calm_503_and_nothing_is_recorded(app, client, other_client, monkeypatch):
    from courses.models import MediaFile
    from tests.s3server import _free_port

    with app.app_context():
        load_test_framework()
        make_user(email="admin@example.org", name="Ada Admin", role=_admin_role())
        certificate = make_certificate(make_user(email="lee@example.org"))
        public = format_public_id(certificate.public_id)
        db.session.add(
            MediaFile(
                sha256="c" * 64,
                mime_type="image/png",
                extension="png",
                size=3,
                width=1,
                height=1,
                alt_text="Recorded before the outage",
            )
        )
        db.session.commit()
    login(client, "admin@example.org")
    settings = {"STORAGE_BACKEND": "s3", "STORAGE_S3_BUCKET": "gone", "STORAGE_S3_REGION": "us-east-1"}
    settings |= {"STORAGE_S3_ACCESS_KEY_ID": "k", "STORAGE_S3_SECRET_ACCESS_KEY": "s"}
    settings["STORAGE_S3_ENDPOINT_URL"] = f"http://127.0.0.1:{_free_port()}"  # nobody listens there
    for key, value in settings.items():
        monkeypatch.setitem(app.config, key, value)

    refused = upload_image(client, png_bytes(), "aisle.png")
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "30"
    assert "cannot reach our file storage" in refused.get_data(as_text=True)
    served = client.get("/media/" + "c" * 64 + ".png")
    assert served.status_code == 503
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(MediaFile)) == 1  # only the one from before

    # a learner's PDF is still drawn and served: storing it is a cache that can wait
    login(other_client, "lee@example.org")
    pdf = other_client.get(f"/certificates/{public}.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")


def _admin_role():
    from accounts.models import Role

    return Role.ADMIN


def _local_files(app) -> list[str]:
    """Every file in the suite's local storage folders."""
    import os

    return [
        os.path.join(root, name)
        for setting in ("CERTIFICATE_DIR", "UPLOAD_DIR")
        for root, _dirs, names in os.walk(app.config[setting])
        for name in names
    ]
