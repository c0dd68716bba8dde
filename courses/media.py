"""Lesson images: type checked by content (not name), size- and pixel-limited, stored once by hash (in the
``uploads`` storage, core/storage.py, which every app server shares). Flush only."""

from __future__ import annotations

import hashlib
import io
import warnings
from datetime import datetime

from PIL import Image, UnidentifiedImageError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core import audit
from core.errors import DomainError
from core.extensions import db
from core.storage import Storage, storage
from courses.models import MediaFile

FORMATS = {"PNG": ("image/png", "png"), "JPEG": ("image/jpeg", "jpg"), "WEBP": ("image/webp", "webp")}
MAX_PIXELS = 40_000_000  # refuse decompression bombs long before they are decoded


def inspect_image(data: bytes, *, max_bytes: int) -> tuple[str, str, int, int]:
    """(mime type, extension, width, height) of a PNG, JPEG or WebP judged by its content. Raises DomainError."""
    if not data:
        raise DomainError("The file is empty.", field="file")
    if len(data) > max_bytes:
        raise DomainError(f"Images can be at most {max_bytes // 1024} KB.", field="file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                kind = image.format
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise DomainError("The image has too many pixels.", field="file")
                image.verify()
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
        OSError,
        SyntaxError,
        ValueError,
    ):
        raise DomainError("That file is not a PNG, JPEG or WebP image (SVG is not accepted).", field="file") from None
    if kind not in FORMATS:
        raise DomainError("Only PNG, JPEG and WebP images are accepted.", field="file")
    mime, extension = FORMATS[kind]
    return mime, extension, width, height


def media_storage() -> Storage:
    return storage("uploads")


def store_image(data: bytes, *, alt_text: str, actor, store: Storage, max_bytes: int, now: datetime) -> MediaFile:
    """Check, store (atomically, once per content) and record an uploaded image. Raises DomainError for a bad
    image or missing alt text, OSError if storage fails (nothing recorded). Caller commits."""
    alt_text = alt_text.strip()
    if not alt_text:
        raise DomainError("Describe the image for people who cannot see it (alt text).", field="alt_text")
    mime, extension, width, height = inspect_image(data, max_bytes=max_bytes)
    digest = hashlib.sha256(data).hexdigest()
    existing = db.session.scalar(select(MediaFile).where(MediaFile.sha256 == digest))
    if existing is not None:
        return existing
    # written again even if a first upload left the object behind without its row (rolled back): same bytes
    store.write(f"{digest}.{extension}", data, content_type=mime)
    media = MediaFile(
        sha256=digest,
        mime_type=mime,
        extension=extension,
        size=len(data),
        width=width,
        height=height,
        alt_text=alt_text,
        uploaded_by_id=getattr(actor, "id", None),
        created_at=now,
    )
    try:
        with db.session.begin_nested():
            db.session.add(media)
            db.session.flush()
    except IntegrityError:
        return db.session.scalar(select(MediaFile).where(MediaFile.sha256 == digest))
    audit.record(
        actor, "media.uploaded", "media", digest, f"Uploaded image “{alt_text[:80]}” ({width}×{height})", now=now
    )
    return media
