"""The daily clean-up of ended OAuth codes and tokens (they would otherwise pile up: one row per refresh)."""

from __future__ import annotations

import logging

from flask_babel import lazy_gettext as _l

from core import queue
from core.database import utcnow
from obapi import services

log = logging.getLogger(__name__)


@queue.job("obapi.prune", attempts=3, label=_l("Delete ended Open Badges API codes and tokens"))
def prune(day: str | None = None) -> None:
    tokens, codes = services.prune(now=utcnow())
    log.info("Open Badges API prune %s: %s tokens, %s codes deleted", day, tokens, codes)


queue.daily("obapi.prune")
