"""Issue 12, items 7, 8 and 9: crafted input gets a precise 4xx, never a 500, and markup stays well-formed.

7: a course title with a quote closed the badge's aria-label and added its own attribute.
8: /api/v1/verify with a 5,000-digit integer or a PDF whose attachment is a Flate bomb; /studio/import with zip
   entries that have a bad CRC, the encryption flag, compression method 9 or an under-stated size.
9: nested YAML aliases in a bundle turned a 47 KB upload into a 178 MB error message.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib

import pytest
from defusedxml import ElementTree
from sqlalchemy import func, select

from accounts.models import Role
from core.extensions import db
from courses.models import CourseDraft
from credentials.ids import format_public_id
from tests.factories import load_test_framework, login, make_certificate, make_course, make_user

# ---- item 7: SVG attributes ---------------------------------------------------------------------------


def test_a_course_title_cannot_add_attributes_to_the_svg_badge(client, ctx):
    load_test_framework()
    title = 'Fake" onload="alert(1)" x="'
    certificate = make_certificate(make_user(email="lee@example.org"), make_course("ai-basics", title=title))
    response = client.get(f"/credentials/{format_public_id(certificate.public_id)}.svg")
    assert response.status_code == 200
    root = ElementTree.fromstring(response.data)  # well-formed XML
    assert set(root.attrib) == {"width", "height", "viewBox", "role", "aria-label"}
    assert root.attrib["aria-label"] == title
    start_tag = response.data.split(b"<openbadges:credential>")[0]
    assert b"onload" not in start_tag.replace(b"&quot; onload=&quot;", b"")
    # and the badge still verifies
    assert client.post("/api/v1/verify", data=response.data, content_type="image/svg+xml").json["verified"] is True


# ---- item 8: /api/v1/verify ---------------------------------------------------------------------------------


def test_a_5000_digit_json_integer_gets_a_400(client):
    body = b'{"@context": [], "n": ' + b"9" * 5000 + b"}"
    response = client.post("/api/v1/verify", data=body, content_type="application/json")
    assert response.status_code == 400 and response.json["verdict"] == "unreadable"
    assert "number too long" in response.json["message"]


def pdf_with_attachment(stream: bytes, *, filters: str = "/FlateDecode", length: int | None = None) -> bytes:
    """A minimal PDF whose one embedded file (credential.json) is the given encoded stream."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [(credential.json) 4 0 R] >> >> >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 10 10] >>",
        b"<< /Type /Filespec /F (credential.json) /UF (credential.json) /EF << /F 5 0 R >> >>",
        b"<< /Type /EmbeddedFile /Filter "
        + filters.encode()
        + b" /Length "
        + str(len(stream) if length is None else length).encode()
        + b" >>\nstream\n"
        + stream
        + b"\nendstream",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def flate_bomb(megabytes: int) -> bytes:
    packer = zlib.compressobj(9)
    chunk = b"\0" * (1024 * 1024)
    return b"".join(packer.compress(chunk) for _ in range(megabytes)) + packer.flush()


def test_a_pdf_whose_attachment_is_a_flate_bomb_gets_a_400_after_inflating_32_kb(client):
    bomb = flate_bomb(256)  # 256 MB of zeros in ~250 KB; only the first 24 KB + 1 byte are ever inflated
    response = client.post("/api/v1/verify", data=pdf_with_attachment(bomb), content_type="application/pdf")
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert "larger than 24 KB" in response.json["message"]


@pytest.mark.parametrize(
    ("pdf", "message"),
    [
        (pdf_with_attachment(b"not flate data"), "corrupt"),
        (pdf_with_attachment(b"{}", filters="/LZWDecode"), "encoded in a way"),
        (pdf_with_attachment(zlib.compress(b'{"a": 1}')), "must be"),  # readable, then an ordinary verdict
    ],
)
def test_odd_pdf_attachments_get_a_precise_answer(client, pdf, message):
    response = client.post("/api/v1/verify", data=pdf, content_type="application/pdf")
    assert response.status_code in (200, 400), response.get_data(as_text=True)[:300]
    text = response.get_data(as_text=True)
    assert message in text and response.json["verified"] is False


# ---- item 8: /studio/import ---------------------------------------------------------------------------------


@pytest.fixture
def admin(client, ctx):
    load_test_framework()
    make_user(email="ada@example.org", role=Role.ADMIN)
    login(client, "ada@example.org")


def bundle() -> bytes:
    from courses.catalog import spec_files
    from tests.factories import course_spec

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, text in spec_files(course_spec("zipped")).items():
            archive.writestr(f"zipped/{path}", text)
    return buffer.getvalue()


def patch_central_directory(data: bytes, *, offset: int, fmt: str, value: int, name: bytes = b"course.yaml") -> bytes:
    """Change one field of course.yaml's central-directory entry (what zipfile trusts when it opens it)."""
    data = bytearray(data)
    position = 0
    while True:
        position = data.index(b"PK\x01\x02", position)
        name_length = struct.unpack_from("<H", data, position + 28)[0]
        if bytes(data[position + 46 : position + 46 + name_length]).endswith(name):
            struct.pack_into(fmt, data, position + offset, value)
            return bytes(data)
        position += 4


def upload(client, data: bytes):
    return client.submit(
        "/studio/import",
        {"file": (io.BytesIO(data), "bundle.zip")},
        page="/studio/",
        content_type="multipart/form-data",
    )


def test_a_genuine_bundle_still_imports(client, admin):
    response = upload(client, bundle())
    assert response.status_code == 303, response.get_data(as_text=True)[:500]


@pytest.mark.parametrize(
    ("field", "fmt", "value", "message"),
    [
        (16, "<I", 0xDEADBEEF, "the zip entry is corrupt"),  # CRC-32
        (8, "<H", 0x0001, "encrypted"),  # general purpose flag: encrypted
        (10, "<H", 9, "compressed with method 9"),  # Deflate64
        (24, "<I", 10, "the zip entry is corrupt"),  # uncompressed size under-stated
    ],
)
def test_crafted_zip_entries_get_a_422_naming_the_problem(client, admin, field, fmt, value, message):
    response = upload(client, patch_central_directory(bundle(), offset=field, fmt=fmt, value=value))
    assert response.status_code == 422, response.get_data(as_text=True)[:500]
    assert message in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(CourseDraft)) == 0


# ---- item 9: YAML aliases and quoted values -------------------------------------------------------------------


def zipped(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, text in files.items():
            archive.writestr(f"bomb/{path}", text)
    return buffer.getvalue()


def test_nested_yaml_aliases_are_refused_with_a_short_message(client, admin):
    levels = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for n in range(1, 9):  # 10^9 strings if expanded
        levels.append(f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 10) + "]")
    text = "\n".join(levels) + "\nslug: bomb\ntitle: T\nskills: *a8\n"
    response = upload(client, zipped({"course.yaml": text}))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "aliases (*a0) are not allowed" in page
    assert len(response.data) < 50_000


def test_values_quoted_in_error_messages_are_cut_short(client, admin):
    from courses.catalog import spec_files
    from tests.factories import course_spec

    files = spec_files(course_spec("long"))
    files["course.yaml"] = files["course.yaml"].replace("AIL-01", "X" * 20_000, 1)
    response = upload(client, zipped(files))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "X" * 60 + "…" in page and "X" * 61 not in page, re.findall(r"<li>[^<]*XXX[^<]*</li>", page)[:3]
