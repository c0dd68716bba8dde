"""The certificate design's render cost: our render against a bare WeasyPrint render of the same HTML.

    .venv/bin/python -m bench.certificate_design      # ~1 minute; prints a Markdown table

No database: each case is a CertificateData with the issuer's branding as admins set it (a seal and a
signature as the Branding page stores them: PNGs normalised to 480×480 and 720×240) and a 3 KB signed
credential to attach, on A4 and Letter, with a Latin, a Vietnamese, an Arabic and a Chinese 70-character name.
"Ours" is credentials.pdf.render_pdf (template, QR code, font choice, restricted fetcher, attachment,
WeasyPrint); "bare" is WeasyPrint alone on the same HTML with file:// URLs and the same reused
FontConfiguration discipline (one per process). Renders are interleaved and the medians compared; the
design's target is a ratio of at most 1.3. The PNG preview (PDFium, first page at 1200 px) is timed too.
"""

from __future__ import annotations

import io
import os
import platform
import statistics
import time

ROUNDS = int(os.environ.get("BENCH_PDF_ROUNDS", "9"))
NAMES = {
    "latin": "Maria Fernanda de los Ángeles Castillo Rodríguez-Villanueva y Montoya",
    "vietnamese": "Nguyễn Thị Phương Thảo Trần Hoàng Bảo Ngọc Lê Phạm Quỳnh An Đặng Vũ Hà",
    "arabic": "عبد الرحمن محمد عبد الله إبراهيم الحسيني القحطاني العتيبي الشمري الدوس",
    "chinese": "欧阳诸葛司马上官慕容皇甫令狐东方西门南宫长孙宇文尉迟公孙轩辕端木独孤百里呼延"
    "夏侯澹台第五太史钟离仲孙闻人公冶赫连拓跋濮阳万俟单于申屠淳于羊舌",
}


def _png(size: tuple[int, int], seal: bool) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", size, (255, 255, 255, 0))
    draw = ImageDraw.Draw(image)
    if seal:
        draw.ellipse([8, 8, size[0] - 8, size[1] - 8], fill=(11, 79, 138, 255), outline=(176, 141, 60, 255), width=20)
    else:
        draw.line(
            [(20, size[1] - 30), (size[0] // 3, 30), (size[0] // 2, size[1] - 40), (size[0] - 20, 40)],
            fill=(20, 20, 70, 255),
            width=8,
        )
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def case(name: str):
    from credentials.branding import data_uri
    from credentials.pdf import CertificateData

    display_id = "7K3Q-9XWM-ABCD-EFGH-JKMN-PQRS-TVWX"
    return CertificateData(
        public_id=display_id.replace("-", ""),
        display_id=display_id,
        holder_name=name,
        course_title="AI at Work for Customer Service & Office Roles",
        course_version=1,
        skills=[
            "Applying AI to Work Tasks",
            "Directing AI Effectively",
            "Evaluating AI Outputs & Human Oversight",
            "Responsible & Secure AI Use",
        ],
        score=92,
        issuer_name="AI Workforce Academy",
        awarded_on="December 6, 2026",
        issued_on="December 6, 2026",
        expires_on="December 6, 2029",
        verify_url=f"https://academy.example.org/verify/{display_id}",
        hours="3.5 hours",
        description="Learn to use AI tools safely and well in front-office and back-office work.",
        alignment="Aligned with the workforce goals of America's AI Action Plan (July 2025): AI skills as a core "
        "objective of education and workforce funding; rapid retraining for workers displaced by AI; and 1 more.",
        issuer_address="200 Constitution Ave NW, Washington, DC 20210",
        seal_uri=data_uri(_png((480, 480), True)),
        seal_alt="Seal",
        signatory_name="Grace Hopper",
        signatory_title="Director of Credentials",
        signature_uri=data_uri(_png((720, 240), False)),
        credential_json='{"@context": []' + ', "x": "' + "a" * 3000 + '"}',
    )


def measure() -> list[str]:
    from weasyprint import HTML
    from weasyprint.text.fonts import FontConfiguration

    from core import create_app
    from credentials.pdf import STATIC_BASE, STATIC_DIR, render_html, render_pdf
    from credentials.preview import render_png

    rows = []
    bare_fonts = FontConfiguration()
    all_ours, all_bare = [], []
    for paper in ("A4", "Letter"):
        app = create_app(
            {
                "APP_ENV": "test",
                "SECRET_KEY": "bench-" + "z" * 40,
                "SQLALCHEMY_DATABASE_URI": "sqlite://",
                "CERTIFICATE_PAPER": paper,
            }
        )
        with app.test_request_context():
            for script, name in NAMES.items():
                data = case(name)
                bare_html = render_html(data).replace(STATIC_BASE, STATIC_DIR.as_uri() + "/")
                pdf = render_pdf(data)  # warm both paths (imports, font cmaps)
                HTML(string=bare_html).write_pdf(font_config=bare_fonts)
                ours, bare = [], []
                for _ in range(ROUNDS):
                    started = time.perf_counter()
                    pdf = render_pdf(data)
                    ours.append(time.perf_counter() - started)
                    started = time.perf_counter()
                    HTML(string=bare_html).write_pdf(font_config=bare_fonts)
                    bare.append(time.perf_counter() - started)
                started = time.perf_counter()
                png = render_png(pdf)
                png_ms = (time.perf_counter() - started) * 1000
                o, b = statistics.median(ours) * 1000, statistics.median(bare) * 1000
                all_ours += ours
                all_bare += bare
                rows.append(
                    f"| {paper} | {script} | {o:.0f} ms | {b:.0f} ms | {o / b:.2f} | {len(pdf) / 1024:.0f} KiB | "
                    f"{png_ms:.0f} ms, {len(png) / 1024:.0f} KiB |"
                )
    overall = statistics.median(all_ours) / statistics.median(all_bare)
    return [
        "",
        "## Certificate design (bench/certificate_design.py)",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}. Median of "
        f"{ROUNDS} interleaved renders per case; branding (seal, signature, address, signatory) and a 3 KB "
        "credential attachment included.",
        "",
        "| paper | name (70 characters) | our render | bare WeasyPrint, same HTML | ratio | PDF size | PNG preview |",
        "|---|---|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"Overall ratio (median of all our renders / median of all bare renders): **{overall:.2f}** (target ≤ 1.3).",
    ]


def main() -> None:
    print("\n".join(measure()))


if __name__ == "__main__":
    main()
