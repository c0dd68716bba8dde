"""A certificate's snapshot put into words and data for the PDF, the public JSON facts and share links."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from flask_babel import force_locale, format_date, format_decimal, gettext, ngettext

from credentials import programs as program_certificates
from credentials.branding import current_branding, data_uri
from credentials.identity import verify_url
from credentials.ids import format_public_id
from credentials.models import Certificate, CertificateStatus
from credentials.pdf import CertificateData


def stamp_for(certificate: Certificate, now: datetime) -> str | None:
    """The word stamped across a PDF that does not count (EXPIRED, REVOKED, SUSPENDED), or None for a valid one."""
    status = certificate.status_at(now)
    return None if status is CertificateStatus.VALID else status.value.upper()


def stamp_note(certificate: Certificate, now: datetime) -> str | None:
    """Under a SUSPENDED stamp, until when, in the current language; None for any other state."""
    if certificate.status_at(now) is not CertificateStatus.SUSPENDED:
        return None
    if certificate.suspended_until is None:
        return gettext("until further notice")
    return gettext("until %(date)s", date=_date(certificate.suspended_until))


def _date(moment: datetime | None) -> str | None:
    return format_date(moment, "long") if moment else None


def first_sentence(text: str, limit: int = 150) -> str:
    """The course summary's first sentence, shortened at a word to ``limit`` characters."""
    text = " ".join((text or "").split())
    end = text.find(". ")
    sentence = text[: end + 1] if 0 < end < limit else text
    if len(sentence) > limit:
        sentence = sentence[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"
    return sentence


def alignment_text(goals: list[dict], shown: int = 2) -> str | None:
    """The plan goals a course serves, as one plain sentence (goal IDs are for the verify page)."""
    titles = [g["title"][0].lower() + g["title"][1:] if g["title"][:2] != "AI" else g["title"] for g in goals]
    if not titles:
        return None
    more = len(titles) - shown
    listed = "; ".join(titles[:shown])
    if more > 0:
        listed += ngettext("; and %(num)d more", "; and %(num)d more", more)
    return gettext("Aligned with the workforce goals of America's AI Action Plan (July 2025): %(goals)s.", goals=listed)


def hours_text(minutes: int) -> str:
    """Study time in the current language, to the half hour: "45 minutes", "1 hour", "2.5 hours"."""
    if minutes < 60:
        return ngettext("%(num)d minute", "%(num)d minutes", minutes)
    hours = round(minutes / 60 * 2) / 2  # to the half hour, as training hours are usually counted
    text = format_decimal(hours, "#,##0.#")
    return gettext("%(hours)s hour", hours=text) if hours == 1 else gettext("%(hours)s hours", hours=text)


def certificate_language(certificate: Certificate) -> str:
    """The language a certificate is written in: its course's (a Spanish course gives a Spanish certificate),
    English for a program. Kept on the certificate when it was issued (``Certificate.language``), like the title."""
    return certificate.language or "en"


def certificate_data(certificate: Certificate, now: datetime) -> CertificateData:
    """The PDF's data, its words and dates in the certificate's language (``certificate_language``)."""
    language = certificate_language(certificate)
    with force_locale(language):
        return _certificate_data(certificate, now, language)


def _certificate_data(certificate: Certificate, now: datetime, language: str) -> CertificateData:
    course = certificate.course
    branding = current_branding()
    return CertificateData(
        language=language,
        kind="program" if certificate.is_program else "course",
        stacks=[
            f"{p.course_title} ({format_public_id(p.public_id)})" for p in program_certificates.parts_of(certificate)
        ],
        public_id=certificate.public_id,
        display_id=format_public_id(certificate.public_id),
        holder_name=certificate.holder_name,
        course_title=certificate.course_title,
        course_version=certificate.course_version,
        skills=[s["name"] for s in certificate.skills],
        goals=[f"{g['id']}: {g['title']}" for g in certificate.goals],
        score=certificate.score,
        issuer_name=certificate.issuer_name,
        awarded_on=_date(certificate.awarded_at),
        issued_on=_date(certificate.issued_at),
        expires_on=_date(certificate.expires_at),
        verify_url=verify_url(certificate.public_id),
        stamp=stamp_for(certificate, now),
        stamp_note=stamp_note(certificate, now),
        hours=hours_text(course.estimated_minutes) if course and course.estimated_minutes else None,
        description=first_sentence(course.summary) if course else None,
        alignment=alignment_text(certificate.goals),
        issuer_address=branding.issuer_address,
        seal_uri=data_uri(branding.seal_png),
        seal_alt=branding.seal_alt or gettext("Seal of %(issuer)s", issuer=certificate.issuer_name),
        signatory_name=branding.signatory_name,
        signatory_title=branding.signatory_title,
        signature_uri=data_uri(branding.signature_png),
    )


def public_facts(certificate: Certificate, now: datetime) -> dict:
    """What anyone may learn about a certificate: never the holder's email."""
    status = certificate.status_at(now)
    facts = {
        "id": format_public_id(certificate.public_id),
        "status": status.value,
        "holder_name": certificate.holder_name,
        "kind": "program" if certificate.is_program else "course",
        # for a program certificate, the program's title and version (kept under "course" for existing clients)
        "course": {"title": certificate.course_title, "version": certificate.course_version},
        "skills": certificate.skills,
        "plan_goals": certificate.goals,
        "score": certificate.score,
        "issuer": certificate.issuer_name,
        "awarded_at": certificate.awarded_at.isoformat(),
        "issued_at": certificate.issued_at.isoformat(),
        "expires_at": certificate.expires_at.isoformat() if certificate.expires_at else None,
        "verification_url": verify_url(certificate.public_id),
    }
    if status is CertificateStatus.REVOKED:
        facts["revoked_at"] = certificate.revoked_at.isoformat()
        facts["revocation_reason"] = certificate.revocation_reason.value
    if status is CertificateStatus.SUSPENDED:  # the reason stays between the issuer and the holder
        facts["suspended_at"] = certificate.suspended_at.isoformat()
        facts["suspended_until"] = certificate.suspended_until.isoformat() if certificate.suspended_until else None
    if certificate.is_program:
        facts["stacks"] = [
            {
                "id": format_public_id(part.public_id),
                "course": part.course_title,
                "status": part.status_at(now).value,
                "verification_url": verify_url(part.public_id),
            }
            for part in program_certificates.parts_of(certificate)
        ]
    return facts


def linkedin_url(certificate: Certificate) -> str:
    params = {
        "startTask": "CERTIFICATION_NAME",
        "name": certificate.course_title,
        "organizationName": certificate.issuer_name,
        "issueYear": certificate.awarded_at.year,
        "issueMonth": certificate.awarded_at.month,
        "certUrl": verify_url(certificate.public_id),
        "certId": format_public_id(certificate.public_id),
    }
    if certificate.expires_at:
        params |= {"expirationYear": certificate.expires_at.year, "expirationMonth": certificate.expires_at.month}
    return "https://www.linkedin.com/profile/add?" + urlencode(params)
