"""`flask insights xapi-forward`: send unsent xAPI statements to the configured LRS."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from core.database import utcnow
from insights import xapi

cli = AppGroup("insights", help="Forward learning records.")


@cli.command("xapi-forward")
@click.option("--batch", type=click.IntRange(1, 100_000), default=500, show_default=True)
def forward_command(batch: int) -> None:
    """Send unsent xAPI statements to the configured LRS (retries; never sends one twice)."""
    cfg = current_app.config
    if not cfg.get("XAPI_LRS_ENDPOINT"):
        raise click.ClickException("Set FLASK_XAPI_LRS_ENDPOINT (and _USERNAME, _PASSWORD) first.")
    sent, failed = xapi.forward(
        endpoint=cfg["XAPI_LRS_ENDPOINT"],
        username=cfg.get("XAPI_LRS_USERNAME") or "",
        password=cfg.get("XAPI_LRS_PASSWORD") or "",
        now=utcnow,
        batch=batch,
    )
    click.echo(f"Sent {sent} statements; {failed} failed and will be retried next run.")
    if failed:
        raise SystemExit(1)
