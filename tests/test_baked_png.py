"""The baked PNG badge (/credentials/<id>.png): the certificate as drawn, with the signed credential in an
uncompressed iTXt chunk keyed ``openbadgecredential`` (Open Badges 3.0, "Baking"), read back and verified."""

from __future__ import annotations

import io
import json
import struct
import zlib

import pytest

from accounts.models import Role
from core.database import utcnow
from core.extensions import db
from credentials.ids import format_public_id
from tests.factories import make_user, sign_in


@pytest.fixture
def certificate(prebuilt_certificate, app, tmp_path):
    app.config["CERTIFICATE_DIR"] = str(tmp_path / "pdfs")
    yield prebuilt_certificate()
    app.config["CERTIFICATE_DIR"] = None


def chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """(type, data) of every chunk, parsed by hand; each CRC is checked."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    found, offset = [], 8
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        kind, data = png[offset + 4 : offset + 8], png[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", png[offset + 8 + length : offset + 12 + length])
        assert zlib.crc32(kind + data) == crc
        found.append((kind, data))
        offset += 12 + length
    assert found[-1][0] == b"IEND"
    return found


def badge(client, certificate):
    return client.get(f"/credentials/{format_public_id(certificate.public_id)}.png")


def verify(client, data: bytes, content_type: str):
    return client.post("/api/v1/verify", data=data, content_type=content_type)


def test_the_png_badge_carries_the_signed_credential_in_an_uncompressed_itxt_chunk(client, certificate):
    from PIL import Image

    response = badge(client, certificate)
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert response.headers["Content-Disposition"] == f'inline; filename="badge-{certificate.public_id}.png"'
    assert response.headers["Cache-Control"] == "public, max-age=300" and response.headers["ETag"]
    served = json.loads(client.get(f"/credentials/{format_public_id(certificate.public_id)}.json").data)

    # by hand: exactly one iTXt chunk, keyword exact, compression flag 0, empty language and translated keyword
    itxt = [data for kind, data in chunks(response.data) if kind == b"iTXt"]
    assert len(itxt) == 1
    keyword, rest = itxt[0].split(b"\0", 1)
    assert keyword == b"openbadgecredential"
    assert rest[:2] == b"\0\0"  # compression flag, compression method
    language, translated, text = rest[2:].split(b"\0", 2)
    assert (language, translated) == (b"", b"")
    assert json.loads(text.decode("utf-8")) == served
    assert b" " not in text.split(b'"proofValue"')[0][:200]  # compact JSON: no separators' spaces up front

    # with Pillow: the image is the certificate as drawn, and the text reads back the same
    with Image.open(io.BytesIO(response.data)) as image:
        assert image.width == 1200 and image.height > 800
        assert json.loads(image.text["openbadgecredential"]) == served

    body = verify(client, response.data, "image/png").json
    assert body["verified"] is True and body["verdict"] == "valid", body
    assert body["credential"]["holder_name"] == "Lee Learner"


def test_the_png_badge_verifies_as_a_multipart_upload(client, certificate):
    png = badge(client, certificate).data
    response = client.post(
        "/api/v1/verify", data={"file": (io.BytesIO(png), "badge.png")}, content_type="multipart/form-data"
    )
    assert response.json["verified"] is True, response.json


def test_the_png_badge_is_served_conditionally(client, certificate):
    first = badge(client, certificate)
    again = client.get(
        f"/credentials/{format_public_id(certificate.public_id)}.png", headers={"If-None-Match": first.headers["ETag"]}
    )
    assert again.status_code == 304 and again.data == b""


def test_unknown_and_malformed_ids_get_404(client, certificate):
    assert client.get("/credentials/AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG.png").status_code == 404
    assert client.get("/credentials/not-an-id.png").status_code == 404


def test_a_revoked_certificate_keeps_its_badge_and_the_verifier_says_revoked(client, certificate):
    from credentials import services
    from credentials.models import RevocationReason

    admin = make_user(email="admin@example.org", role=Role.ADMIN)
    services.revoke(admin, certificate, reason=RevocationReason.OTHER, note="test", now=utcnow())
    db.session.commit()
    response = badge(client, certificate)
    assert response.status_code == 200
    body = verify(client, response.data, "image/png").json
    assert body["verdict"] == "revoked" and body["verified"] is False


def test_a_tampered_png_credential_fails_the_proof(client, certificate):
    from credentials.preview import bake_png

    png = badge(client, certificate).data
    itxt = next(data for kind, data in chunks(png) if kind == b"iTXt")
    credential = json.loads(itxt.split(b"\0", 5)[5])  # flag and method bytes are 0 too
    credential["credentialSubject"]["name"] = "Pat Impostor"
    body = verify(client, bake_png(png, credential), "image/png").json
    assert body["verified"] is False
    assert {c["check"]: c["ok"] for c in body["checks"]}["proof"] is False


def png_with(*extra: tuple[bytes, bytes]) -> bytes:
    """A 1x1 PNG with extra chunks before IEND, assembled by hand."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (1, 1)).save(out, format="PNG")
    data = out.getvalue()
    body = b"".join(struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d)) for k, d in extra)
    return data[:-12] + body + data[-12:]


@pytest.mark.parametrize(
    ("png", "message"),
    [
        (png_with(), "no iTXt chunk"),
        (png_with((b"iTXt", b"openbadgecredential\0\1\0\0\0" + zlib.compress(b"{}"))), "compressed"),
        (
            png_with((b"iTXt", b"openbadgecredential\0\0\0\0\0{}"), (b"iTXt", b"openbadgecredential\0\0\0\0\0{}")),
            "more than one",
        ),
        (png_with((b"iTXt", b"openbadgecredential\0\0\0\0\0not json")), "not valid JSON"),
        (b"\x89PNG\r\n\x1a\n\0\0\0\xffiTXt", "truncated"),
    ],
)
def test_unreadable_pngs_get_a_clear_answer(client, ctx, png, message):
    response = verify(client, png, "image/png")
    assert message in json.dumps(response.json), response.json


def test_the_certificate_page_links_the_png_badge(client, certificate):
    sign_in(client, "lee@example.org")
    page = client.get(f"/certificates/{format_public_id(certificate.public_id)}")
    assert page.status_code == 200
    assert f'href="/credentials/{format_public_id(certificate.public_id)}.png"'.encode() in page.data
