"""Forwarding learning records to the configured LRS, every five minutes in the worker."""

from __future__ import annotations

from flask import current_app
from flask_babel import lazy_gettext as _l

from core import queue
from core.database import utcnow
from insights import xapi


@queue.job("insights.xapi_forward", attempts=3, lease=1800, label=_l("Forward xAPI statements to the LRS"))
def forward_statements() -> None:
    cfg = current_app.config
    if not cfg["XAPI_LRS_ENDPOINT"]:
        return
    sent, failed = xapi.forward(
        endpoint=cfg["XAPI_LRS_ENDPOINT"],
        username=cfg["XAPI_LRS_USERNAME"] or "",
        password=cfg["XAPI_LRS_PASSWORD"] or "",
        now=utcnow,
    )
    if failed:
        # each statement was retried with backoff already; the job's own retry tries the rest later
        raise RuntimeError(f"{failed} statements not accepted by the LRS ({sent} sent)")


queue.every("insights.xapi_forward", 5, when=lambda config: bool(config["XAPI_LRS_ENDPOINT"]))
