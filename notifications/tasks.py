"""The daily scan: expiry reminders, employers' expiry alerts, inactivity nudges (each keyed: never twice)."""

from __future__ import annotations

import logging

from flask_babel import lazy_gettext as _l

from core import queue
from core.database import utcnow
from notifications import services

log = logging.getLogger(__name__)


@queue.job("notifications.daily", attempts=4, lease=900, label=_l("Daily scan: expiry reminders, alerts, nudges"))
def daily_scan(day: str | None = None) -> None:
    now = utcnow()
    reminders = services.expiry_reminders(now)
    alerts = services.candidate_expiries(now)
    nudges = services.inactivity_nudges(now)
    log.info("daily scan %s: %s reminders, %s employer alerts, %s nudges queued", day, reminders, alerts, nudges)


queue.daily("notifications.daily")
