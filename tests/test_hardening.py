"""Issue 12, item 12: the status list is served from a cached, pre-compressed copy and rate-limited; the public
"verified N times" counter counts a client once per certificate per day; lesson images must be our own uploads.
(Production refusing the outbox mail backend or a missing TRUSTED_HOSTS: tests/test_config_and_cli.py. Stale
attempts across a renewal: tests/test_quiz_oracle.py.)
"""

from __future__ import annotations

import gzip
import json

import pytest

from core.extensions import db
from credentials import openbadges
from credentials.ids import format_public_id
from tests.factories import load_test_framework, make_user


@pytest.fixture
def certificate(prebuilt_certificate):
    return prebuilt_certificate()


def status_url(certificate) -> str:
    return f"/credentials/status/{certificate.status_list_id}"


def test_the_status_list_is_served_pre_compressed_with_etag_and_its_ttl(client, certificate, monkeypatch):
    first = client.get(status_url(certificate), headers={"Accept-Encoding": "gzip"})
    assert first.status_code == 200 and first.headers["Content-Encoding"] == "gzip"
    document = json.loads(gzip.decompress(first.data))
    assert document["credentialSubject"]["ttl"] == openbadges.STATUS_TTL_SECONDS * 1000
    assert first.headers["Cache-Control"] == f"public, max-age={openbadges.STATUS_TTL_SECONDS}"
    etag = first.headers["ETag"]
    assert etag and "Accept-Encoding" in first.headers["Vary"]

    # served from the cache: the bits are not recomputed (nor gzipped) again within the ttl
    calls = []
    monkeypatch.setattr(openbadges, "encoded_bits", lambda list_id: calls.append(list_id) or "u")
    again = client.get(status_url(certificate), headers={"Accept-Encoding": "gzip", "If-None-Match": etag})
    assert again.status_code == 304 and calls == []
    plain = client.get(status_url(certificate))
    assert plain.status_code == 200 and "Content-Encoding" not in plain.headers
    assert json.loads(plain.data) == document and plain.headers["ETag"] != etag


def test_a_revocation_reaches_the_served_list_at_once(client, certificate):
    from accounts.models import Role
    from core.database import utcnow
    from credentials import services
    from credentials.admin_views import resign_status_list
    from credentials.models import RevocationReason

    before = json.loads(client.get(status_url(certificate)).data)
    admin = make_user(email="admin@example.org", role=Role.ADMIN)
    services.revoke(admin, certificate, reason=RevocationReason.OTHER, note="test", now=utcnow())
    from flask import current_app

    with current_app.test_request_context():
        resign_status_list(certificate)
    db.session.commit()
    after = json.loads(client.get(status_url(certificate)).data)
    assert after["credentialSubject"]["encodedList"] != before["credentialSubject"]["encodedList"]
    bits = openbadges.decode_bits(after["credentialSubject"]["encodedList"])
    assert openbadges.bit_is_set(bits, certificate.status_list_index)


def test_the_status_list_is_rate_limited(client, certificate, app, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_STATUS_LIST", "3 per minute")
    answers = [client.get(status_url(certificate)).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]


def test_the_verification_counter_counts_a_client_once_per_certificate_per_day(client, certificate):
    public = format_public_id(certificate.public_id)
    for _ in range(20):  # reloads, or a script inflating "verified N times"
        assert client.get(f"/verify/{public}").status_code == 200
        client.get(f"/api/v1/certificates/{public}")
    client.get(f"/verify/{public}", environ_base={"REMOTE_ADDR": "10.9.9.9"})  # someone else
    db.session.refresh(certificate)
    assert certificate.verification_count == 2


# ---- lesson images -------------------------------------------------------------------------------------------


@pytest.mark.nodb
def test_lesson_markdown_keeps_only_our_own_uploaded_images():
    from courses.markdown import render

    ours = "/media/" + "a" * 64 + ".png"
    html = render(f"![a chart]({ours}) ![tracker](https://evil.example/pixel.png) ![x](//evil.example/y.png)")
    assert f'<img src="{ours}" alt="a chart">' in html
    assert "evil.example" not in html and "tracker" in html and html.count("<img") == 1


def test_a_bundle_linking_an_external_image_is_refused_with_the_line(ctx):
    from courses.catalog import CatalogError, parse_bundle, spec_files
    from tests.factories import course_spec

    load_test_framework()
    files = spec_files(course_spec("pictures"))
    lesson = next(path for path in files if path.endswith(".md"))
    files[lesson] += "\n\n![a pixel](https://evil.example/pixel.png)\n"
    with pytest.raises(CatalogError) as error:
        parse_bundle(lambda path: files[path])
    assert any(
        "images must be uploaded in the studio" in p and "https://evil.example/pixel.png" in p
        for p in error.value.problems
    )
