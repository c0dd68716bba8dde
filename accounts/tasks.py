"""The daily clean-up of ended logins and spent password-reset tokens (one row per login or reset otherwise)."""

from __future__ import annotations

import logging

from flask_babel import lazy_gettext as _l

from accounts import services
from core import queue
from core.database import utcnow

log = logging.getLogger(__name__)


@queue.job("accounts.prune", attempts=3, label=_l("Delete ended logins and spent password-reset links"))
def prune(day: str | None = None) -> None:
    logins, tokens = services.prune_ended(now=utcnow())
    log.info("accounts prune %s: %s ended logins, %s reset tokens deleted", day, logins, tokens)


queue.daily("accounts.prune")
