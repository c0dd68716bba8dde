"""The issuer's branding on certificates: seal or logo, authorised signatory, address line. Flush only.

Uploads are checked exactly like lesson images (courses.media.inspect_image: content-typed PNG/JPEG/WebP,
size and pixel limits), then re-encoded as small PNGs: re-encoding drops anything but pixels (metadata,
trailing data) and keeps the certificate's render cost flat whatever was uploaded.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from datetime import datetime

from PIL import Image

from core import audit
from core.errors import DomainError
from core.extensions import db
from courses.media import inspect_image
from credentials.models import Branding

SEAL_BOX = (480, 480)  # px; printed at 30 mm, so ~400 dpi
SIGNATURE_BOX = (720, 240)  # printed at 50 × 16 mm


def current_branding() -> Branding:
    """The branding row, or an empty unsaved one before an admin has set anything."""
    return db.session.get(Branding, 1) or Branding(
        id=1, issuer_address="", signatory_name="", signatory_title="", seal_alt="", revision=0
    )


def normalized_png(data: bytes, *, box: tuple[int, int], max_bytes: int, field: str) -> bytes:
    """Check an upload like a lesson image, then shrink it into ``box`` and re-encode it as PNG.

    Raises DomainError (on ``field``) for anything that is not a PNG, JPEG or WebP within the limits.
    """
    try:
        inspect_image(data, max_bytes=max_bytes)
    except DomainError as error:
        raise DomainError(error.message, field=field) from None
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        picture = image.convert("RGBA")
    picture.thumbnail(box, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    picture.save(out, format="PNG", optimize=True)
    return out.getvalue()


def data_uri(png: bytes | None) -> str | None:
    return "data:image/png;base64," + base64.b64encode(png).decode() if png else None


@dataclass
class BrandingChange:
    issuer_address: str
    signatory_name: str
    signatory_title: str
    seal_alt: str
    seal: bytes | None = None  # a new upload, still to check
    signature: bytes | None = None
    remove_seal: bool = False
    remove_signature: bool = False


def update_branding(actor, change: BrandingChange, *, max_bytes: int, now: datetime) -> Branding:
    """Apply an admin's change. Raises DomainError (nothing changed) for a bad image or a seal without a
    description. Audited with before/after. Caller commits."""
    seal = normalized_png(change.seal, box=SEAL_BOX, max_bytes=max_bytes, field="seal") if change.seal else None
    signature = (
        normalized_png(change.signature, box=SIGNATURE_BOX, max_bytes=max_bytes, field="signature")
        if change.signature
        else None
    )
    branding = db.session.get(Branding, 1)
    if branding is None:
        branding = current_branding()
        db.session.add(branding)
    before = summary(branding)
    branding.issuer_address = change.issuer_address.strip()
    branding.signatory_name = change.signatory_name.strip()
    branding.signatory_title = change.signatory_title.strip()
    branding.seal_alt = change.seal_alt.strip()
    if seal:
        branding.seal_png = seal
    elif change.remove_seal:
        branding.seal_png = None
    if signature:
        branding.signature_png = signature
    elif change.remove_signature:
        branding.signature_png = None
    if branding.seal_png and not branding.seal_alt:
        raise DomainError("Describe the seal or logo for people who cannot see it.", field="seal_alt")
    if branding.signature_png and not branding.signatory_name:
        raise DomainError("A signature needs the signatory's name beside it.", field="signatory_name")
    branding.revision = (branding.revision or 0) + 1
    branding.updated_at, branding.updated_by_id = now, actor.id
    audit.record(
        actor,
        "branding.updated",
        "branding",
        1,
        "Changed the certificate branding",
        now=now,
        before=before,
        after=summary(branding),
    )
    db.session.flush()
    return branding


def summary(branding: Branding) -> dict:
    """The readable state for the audit log (images by size, never their bytes)."""
    return {
        "issuer address": branding.issuer_address or "",
        "signatory": ", ".join(x for x in (branding.signatory_name, branding.signatory_title) if x),
        "seal": f"PNG, {len(branding.seal_png) // 1024 + 1} KB" if branding.seal_png else "none",
        "signature": f"PNG, {len(branding.signature_png) // 1024 + 1} KB" if branding.signature_png else "none",
    }
