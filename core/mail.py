"""Outgoing mail: an outbox folder plus the log in development, SMTP in production.

Callers send after their transaction commits, so a rolled-back request never mails.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from uuid import uuid4

from flask import current_app


def send_mail(to: str, subject: str, body: str) -> None:
    """Send a plain-text message. Raises OSError/smtplib.SMTPException on transport failure."""
    cfg = current_app.config
    msg = EmailMessage()
    msg["From"] = cfg["MAIL_DEFAULT_SENDER"]
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="academy.local")
    msg.set_content(body, cte="8bit")  # readable links; lines stay far below 998 octets

    if cfg["MAIL_BACKEND"] == "smtp":
        context = ssl.create_default_context()
        with smtplib.SMTP(cfg["MAIL_SERVER"], cfg["MAIL_PORT"], timeout=15) as smtp:
            if cfg["MAIL_USE_TLS"]:
                smtp.starttls(context=context)
            if cfg.get("MAIL_USERNAME"):
                smtp.login(cfg["MAIL_USERNAME"], cfg["MAIL_PASSWORD"])
            smtp.send_message(msg)
        return

    outbox = Path(cfg["MAIL_OUTBOX_DIR"] or Path(current_app.instance_path) / "outbox")
    outbox.mkdir(parents=True, exist_ok=True)
    path = outbox / f"{uuid4().hex}.eml"
    path.write_bytes(bytes(msg))
    current_app.logger.info("mail to %s: %s (saved to %s)\n%s", to, subject, path, body)
