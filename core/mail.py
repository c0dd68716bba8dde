"""Outgoing mail through the task queue, each message exactly once per event and recipient.

Every message is a row in ``notifications`` whose (key, recipient) is unique: queuing the same event for the
same person twice writes nothing the second time. The row is written with its job (``mail.deliver``); the job
reaches a worker after commit, and the worker sends by SMTP (production) or writes ``<id>.eml`` to the outbox
folder (development), then marks the row sent. A worker killed before the server accepted the message leaves the
row queued and the job is run again; a second worker handed the same job skips it (see core.queue).

The one window left is between the SMTP server's "250 accepted" and our commit of "sent" (RFC 1047): a crash
exactly there sends the message again with the same Message-ID, which mail clients fold into one.

Every message has a plain-text and an HTML part, rendered from ``templates/email/<name>.txt`` (which sets
``subject``) and ``templates/email/<name>.html``. Messages that are not transactional carry ``List-Unsubscribe``
and ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058).
"""

from __future__ import annotations

import enum
import hashlib
import os
import re
import smtplib
import ssl
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from pathlib import Path
from secrets import token_hex

from flask import current_app, render_template
from flask_babel import force_locale
from markupsafe import Markup, escape
from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from core import queue
from core.database import str_enum, utcnow
from core.extensions import db
from core.i18n import language_for

TRANSACTIONAL = "transactional"


class MailState(enum.Enum):
    QUEUED = "queued"
    SENT = "sent"


class Notification(db.Model):
    """One email to one recipient for one event (sent or waiting to be)."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("key", "recipient", name="uq_notifications_key_recipient"),
        Index("ix_notifications_user_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200))  # the event, e.g. "certificate-revoked:42:2026-12-06T10:00:00"
    recipient: Mapped[str] = mapped_column(String(254))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(50))  # the template name
    category: Mapped[str] = mapped_column(String(30), default=TRANSACTIONAL)
    subject: Mapped[str] = mapped_column(String(300))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text)
    unsubscribe_url: Mapped[str | None] = mapped_column(String(500))
    message_id: Mapped[str] = mapped_column(String(200))
    state: Mapped[MailState] = mapped_column(str_enum(MailState, "mail_state", 16), default=MailState.QUEUED)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


# ---- rendering ----------------------------------------------------------------------------------------


def render(template: str, *, locale: str | None = None, **context) -> tuple[str, str, str]:
    """(subject, text, html) from email/<template>.txt (which sets ``subject``) and email/<template>.html, in
    ``locale``, else in the language of the ``user`` in the context (core.i18n.language_for)."""
    with force_locale(locale or language_for(context.get("user"))):
        return _render(template, **context)


def _render(template: str, **context) -> tuple[str, str, str]:
    context.setdefault("issuer_name", current_app.config["ISSUER_NAME"])
    context.setdefault("site_url", current_app.config["ISSUER_URL"].rstrip("/"))
    env = current_app.jinja_env
    text_template = env.get_template(f"email/{template}.txt")
    module = text_template.make_module(context)
    subject = " ".join(str(getattr(module, "subject", "")).split())
    if not subject:
        raise ValueError(f"email/{template}.txt sets no subject")
    text = str(module).strip() + "\n"
    html = render_template(f"email/{template}.html", subject=subject, **context)
    return subject, text, html


_URL = re.compile(r"https?://[^\s<>\"]+")


def plain_to_html(subject: str, body: str) -> str:
    """The HTML part for a message written as plain text: paragraphs kept, links made clickable."""
    paragraphs = [
        Markup("<br>\n").join(_linkify(line) for line in block.split("\n"))
        for block in re.split(r"\n\s*\n", body.strip())
    ]
    return render_template("email/plain.html", subject=subject, paragraphs=paragraphs)


def _linkify(line: str) -> Markup:
    out, pos = Markup(""), 0
    for match in _URL.finditer(line):
        out += escape(line[pos : match.start()]) + Markup('<a href="{0}">{0}</a>').format(match.group(0))
        pos = match.end()
    return out + escape(line[pos:])


def _message_id(key: str, recipient: str) -> str:
    # stable for the event and recipient, so a resend after a crash is recognisably the same message
    domain = parseaddr(current_app.config["MAIL_DEFAULT_SENDER"])[1].rpartition("@")[2] or "academy.local"
    digest = hashlib.sha256(f"{key}\0{recipient}".encode()).hexdigest()[:32]
    return f"<{digest}@{domain}>"


# ---- queuing ---------------------------------------------------------------------------------------------


def _row(
    *,
    to: str,
    key: str,
    kind: str,
    subject: str,
    text: str,
    html: str,
    category: str,
    user_id: int | None,
    unsubscribe_url: str | None,
) -> Notification:
    if category != TRANSACTIONAL and not unsubscribe_url:
        raise ValueError(f"a {category} message needs an unsubscribe link (RFC 8058)")
    recipient = to.strip().lower()
    return Notification(
        key=key[:200],
        recipient=recipient,
        user_id=user_id,
        kind=kind,
        category=category,
        subject=subject[:300],
        text_body=text,
        html_body=html,
        unsubscribe_url=unsubscribe_url,
        message_id=_message_id(key, recipient),
        created_at=utcnow(),
    )


def queue_mail(
    *,
    to: str,
    template: str,
    key: str,
    category: str = TRANSACTIONAL,
    user_id: int | None = None,
    unsubscribe_url: str | None = None,
    locale: str | None = None,
    **context,
) -> Notification | None:
    """Queue email/<template> for ``to`` in the current transaction; it is sent after the commit. It is written
    in ``locale``, else in the language of the ``user`` in the context (their preference), else English.

    Returns None (and writes nothing) when this key already went to this recipient. Raises ValueError for a
    non-transactional message without an unsubscribe link. Flush only; the caller commits.
    """
    subject, text, html = render(template, locale=locale, unsubscribe_url=unsubscribe_url, **context)
    row = _row(
        to=to,
        key=key,
        kind=template,
        subject=subject,
        text=text,
        html=html,
        category=category,
        user_id=user_id,
        unsubscribe_url=unsubscribe_url,
    )
    row = queue.insert_unique(row)
    if row is None:
        return None
    queue.enqueue("mail.deliver", notification_id=row.id)
    return row


def send_mail(
    to: str,
    subject: str,
    body: str,
    *,
    html: str | None = None,
    key: str | None = None,
    category: str = TRANSACTIONAL,
    user_id: int | None = None,
    unsubscribe_url: str | None = None,
) -> Notification | None:
    """Queue a message written as plain text (an HTML part is made from it unless ``html`` is given).

    Call it after your transaction commits, as before: it writes and commits the message and its job in a
    transaction of its own, and a worker sends it. ``key`` names the event (default: a new random one, so
    each call is a new message); the same key to the same recipient is queued once and None comes back.
    """
    key = key or f"mail:{token_hex(16)}"
    row = _row(
        to=to,
        key=key,
        kind="plain",
        subject=subject,
        text=body if body.endswith("\n") else body + "\n",
        html=html or plain_to_html(subject, body),
        category=category,
        user_id=user_id,
        unsubscribe_url=unsubscribe_url,
    )
    with Session(db.engine) as session:
        session.add(row)
        try:
            session.flush()
        except IntegrityError:
            session.rollback()
            return None
        now = utcnow()
        handler = queue.HANDLERS["mail.deliver"]
        job = queue.Job(
            task="mail.deliver",
            args={"notification_id": row.id},
            max_attempts=handler.attempts,
            run_after=now,
            created_at=now,
            updated_at=now,
        )
        session.add(job)
        session.flush()
        queue.after_commit(session, job.id)
        session.commit()
    return row


# ---- delivery (in the worker) ---------------------------------------------------------------------------


def build_message(row: Notification) -> EmailMessage:
    cfg = current_app.config
    msg = EmailMessage()
    msg["From"] = cfg["MAIL_DEFAULT_SENDER"]
    msg["To"] = Address(addr_spec=row.recipient)
    msg["Subject"] = row.subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = row.message_id
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to us
    if row.unsubscribe_url:
        msg["List-Unsubscribe"] = f"<{row.unsubscribe_url}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(row.text_body, cte="8bit")  # readable links; lines stay far below 998 octets
    msg.add_alternative(row.html_body, subtype="html")
    return msg


def transport(msg: EmailMessage, name: str) -> None:
    """Hand the message over. Raises OSError/smtplib.SMTPException (the job retries)."""
    cfg = current_app.config
    if cfg["MAIL_BACKEND"] == "smtp":
        with smtplib.SMTP(cfg["MAIL_SERVER"], cfg["MAIL_PORT"], timeout=cfg["MAIL_TIMEOUT"]) as smtp:
            if cfg["MAIL_USE_TLS"]:
                smtp.starttls(context=ssl.create_default_context())
            if cfg.get("MAIL_USERNAME"):
                smtp.login(cfg["MAIL_USERNAME"], cfg["MAIL_PASSWORD"])
            smtp.send_message(msg)
        return
    outbox = Path(cfg["MAIL_OUTBOX_DIR"] or Path(current_app.instance_path) / "outbox")
    outbox.mkdir(parents=True, exist_ok=True)
    # one file per message, replaced atomically: a second run of the same job never makes a second file
    final = outbox / f"{name}.eml"
    partial = outbox / f".{name}.{os.getpid()}.tmp"
    partial.write_bytes(bytes(msg))
    partial.replace(final)
    current_app.logger.info("mail to %s: %s (saved to %s)", msg["To"], msg["Subject"], final)


@queue.job("mail.deliver", attempts=8, lease=180, label="Send an email")
def deliver(notification_id: int) -> None:
    row = db.session.get(Notification, notification_id)
    if row is None or row.state is MailState.SENT:
        return
    transport(build_message(row), f"{row.id:08d}")
    row.state, row.sent_at = MailState.SENT, utcnow()
