"""A PNG preview of a certificate: the stored PDF's first page rendered by PDFium, cached beside the PDF
(in the same storage, core/storage.py).

The preview is derived from the stored PDF, so it always shows exactly what the PDF shows (stamp included);
its file name carries the PDF's hash, so a re-rendered PDF gets a new preview and stale ones are removed.
"""

from __future__ import annotations

import io
import threading

from core.storage import Storage

PREVIEW_WIDTH = 1200  # px; what link unfurlers (LinkedIn, WhatsApp, mail clients) show well
_lock = threading.Lock()  # PDFium is not thread-safe; gunicorn's threads must take turns


def render_png(pdf: bytes, *, width: int = PREVIEW_WIDTH) -> bytes:
    """The first page of ``pdf`` as PNG bytes, ``width`` pixels wide. Raises ValueError for a PDF PDFium rejects."""
    import pypdfium2 as pdfium

    with _lock:
        try:
            document = pdfium.PdfDocument(pdf)
        except pdfium.PdfiumError as error:
            raise ValueError(f"not a readable PDF: {error}") from None
        try:
            page = document[0]
            bitmap = page.render(scale=width / page.get_width())
            image = bitmap.to_pil().convert("RGB")
            page.close()
        finally:
            document.close()
    out = io.BytesIO()
    # a palette image is ~4x smaller than true colour and the certificate has few colours
    image.quantize(colors=128).save(out, format="PNG", optimize=True)
    return out.getvalue()


def bake_png(png: bytes, credential: dict) -> bytes:
    """``png`` with the signed credential baked in as Open Badges 3.0 prescribes: an uncompressed iTXt chunk
    with the keyword ``openbadgecredential`` holding the credential's JSON. Any earlier credential chunk is dropped."""
    import json

    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_itxt("openbadgecredential", json.dumps(credential, separators=(",", ":"), ensure_ascii=False), zip=False)
    out = io.BytesIO()
    with Image.open(io.BytesIO(png)) as image:
        image.save(out, format="PNG", pnginfo=info)  # text chunks of the source are not copied
    return out.getvalue()


def preview_key(public_id: str, pdf_sha256: str) -> str:
    return f"{public_id}-{pdf_sha256[:16]}.png"


def cached_png(store: Storage, public_id: str, pdf_sha256: str, pdf: bytes) -> bytes:
    """The cached preview for this exact PDF, rendered and stored on first use (in the PDFs' storage).

    Older previews of the same certificate are deleted. A storage failure still returns the image.
    """
    key = preview_key(public_id, pdf_sha256)
    try:
        return store.read(key)
    except OSError:
        pass
    png = render_png(pdf)
    try:
        store.write(key, png, content_type="image/png")
        for old in store.names(f"{public_id}-"):
            if old != key and old.endswith(".png"):
                store.delete(old)
    except OSError:
        pass
    return png
