"""Certificate PDFs with WeasyPrint: plain data in, bytes out, no network, fonts from static/fonts.

One FontConfiguration is reused per process (a new one per render leaks memory in long-running
workers). The URL fetcher serves only our static files and data: URLs; everything else is refused.
"""

from __future__ import annotations

import io
import logging
import mimetypes
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import segno
from anyascii import anyascii
from flask import current_app, render_template
from flask_babel import force_locale
from fontTools.ttLib import TTFont

CREDENTIAL_ATTACHMENT = "credential.json"
STATIC_BASE = "https://awa-static.invalid/"  # never resolved over the network: the fetcher maps it to files
STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
logger = logging.getLogger(__name__)

# (family, file) in preference order; the first covers Latin, Greek, Cyrillic and Vietnamese
FONTS = [
    ("Noto Sans", "NotoSans-Regular.ttf"),
    ("Noto Sans Arabic", "NotoSansArabic-Regular.ttf"),
    ("Noto Sans Hebrew", "NotoSansHebrew-Regular.ttf"),
    ("Noto Sans Devanagari", "NotoSansDevanagari-Regular.ttf"),
    ("Noto Sans Thai", "NotoSansThai-Regular.ttf"),
    ("Noto Sans SC", "NotoSansSC-Regular.ttf"),
]


@dataclass(frozen=True)
class CertificateData:
    """Everything the PDF shows, as plain values (never ORM objects)."""

    public_id: str
    display_id: str
    holder_name: str
    course_title: str
    course_version: int
    skills: list[str]
    score: int
    issuer_name: str
    awarded_on: str
    issued_on: str
    expires_on: str | None
    verify_url: str
    stamp: str | None = None  # "EXPIRED" / "REVOKED" / "SUSPENDED"
    stamp_note: str | None = None  # under a SUSPENDED stamp: until when
    goals: list[str] = field(default_factory=list)
    credential_json: str | None = None  # the signed Open Badges credential, attached to the PDF
    kind: str = "course"  # or "program"
    stacks: list[str] = field(default_factory=list)  # a program certificate's course credentials
    # the design: what the course asked of the holder, and the issuer's branding (Branding, set by admins)
    hours: str | None = None  # e.g. "3 hours"
    description: str | None = None  # one line about the course
    alignment: str | None = None  # the plan goals it serves, in plain words
    issuer_address: str = ""
    seal_uri: str | None = None  # data: URI of a small PNG
    seal_alt: str = ""
    signatory_name: str = ""
    signatory_title: str = ""
    signature_uri: str | None = None
    language: str = "en"  # the words and dates are rendered in this language (the course's)


class RestrictedFetcher:
    """Serves data: URLs and files under static/ for STATIC_BASE URLs; refuses everything else."""

    def __init__(self) -> None:
        from weasyprint.urls import URLFetcher

        self._data = URLFetcher(allowed_protocols={"data"}, allow_redirects=False)
        self.refused: list[str] = []
        self._fail_on_errors = False  # WeasyPrint reads this: a refused resource is skipped, not fatal

    def fetch(self, url: str, headers=None):
        from weasyprint.urls import URLFetcherResponse

        if url.startswith("data:"):
            return self._data.fetch(url, headers)
        if url.startswith(STATIC_BASE):
            relative = url[len(STATIC_BASE) :].split("?", 1)[0].split("#", 1)[0]
            path = (STATIC_DIR / relative).resolve()
            if path.is_relative_to(STATIC_DIR) and path.is_file():
                mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                return URLFetcherResponse(url, path.read_bytes(), {"Content-Type": mime})
        self.refused.append(url)
        logger.warning("PDF renderer refused to fetch %r", url)
        raise ValueError(f"refused to fetch {url!r}: only static files and data: URLs are allowed")

    def __call__(self, url: str):
        return self.fetch(url)


@lru_cache(maxsize=len(FONTS))
def _cmap(filename: str) -> frozenset[int]:
    with TTFont(STATIC_DIR / "fonts" / filename, lazy=True) as font:
        return frozenset(font.getBestCmap())


def fonts_for(text: str) -> tuple[list[tuple[str, str]], bool]:
    """The font faces this text needs, and whether every character is covered by one of them."""
    needed = [FONTS[0]]
    covered = True
    for ch in set(text):
        if ch.isspace() or ord(ch) in _cmap(FONTS[0][1]):
            continue
        face = next((f for f in FONTS[1:] if ord(ch) in _cmap(f[1])), None)
        if face is None:
            covered = False
        elif face not in needed:
            needed.append(face)
    return needed, covered


def printable_name(name: str) -> tuple[str, bool]:
    """The name as it can be printed with shipped fonts; transliterated (documented fallback) if needed."""
    _, covered = fonts_for(name)
    if covered:
        return name, False
    return "".join(ch if fonts_for(ch)[1] else anyascii(ch) for ch in name), True


_font_config = None
_font_lock = threading.Lock()


def font_config():
    global _font_config
    with _font_lock:
        if _font_config is None:
            from weasyprint.text.fonts import FontConfiguration

            _font_config = FontConfiguration()
        return _font_config


def qr_svg_data_uri(url: str) -> str:
    return segno.make(url, error="m").svg_data_uri(scale=4, border=0, dark="#111")


def render_html(data: CertificateData) -> str:
    name, transliterated = printable_name(data.holder_name)
    everything = " ".join(
        [
            name,
            data.course_title,
            data.issuer_name,
            *data.skills,
            *data.stacks,
            data.description or "",
            data.alignment or "",
            data.issuer_address,
            data.signatory_name,
            data.signatory_title,
        ]
    )
    faces, _ = fonts_for(everything)
    with force_locale(data.language):
        return _render_template(data, name, transliterated, faces)


def _render_template(data: CertificateData, name: str, transliterated: bool, faces) -> str:
    return render_template(
        "credentials/certificate.html",
        c=data,
        name=name,
        transliterated=transliterated,
        families=", ".join(f'"{family}"' for family, _ in faces),
        faces=faces,
        long_name="very-long" if len(name) > 80 else "long" if len(name) > 36 else "",
        qr=qr_svg_data_uri(data.verify_url),
        paper=current_app.config["CERTIFICATE_PAPER"],
        static_base=STATIC_BASE,
    )


def render_pdf(data: CertificateData, *, fetcher: RestrictedFetcher | None = None) -> bytes:
    """Render one certificate to PDF bytes (fonts embedded and subset by WeasyPrint)."""
    from weasyprint import HTML, Attachment

    html = render_html(data)
    attachments = []
    if data.credential_json:
        # the PDF carries its own proof: any verifier can check it without our database
        attachments.append(
            Attachment(
                file_obj=io.BytesIO(data.credential_json.encode()),
                name=CREDENTIAL_ATTACHMENT,
                description="Signed Open Badges 3.0 credential (eddsa-rdfc-2022)",
            )
        )
    return HTML(string=html, base_url=STATIC_BASE, url_fetcher=fetcher or RestrictedFetcher()).write_pdf(
        font_config=font_config(), attachments=attachments
    )
