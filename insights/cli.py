"""`flask insights xapi-forward` (send unsent xAPI statements to the LRS) and `flask insights rebuild-rollups`."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from core.database import utcnow
from insights import xapi

cli = AppGroup("insights", help="Forward learning records; rebuild the dashboard rollups.")


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


@cli.command("rebuild-rollups")
def rebuild_rollups_command() -> None:
    """Recompute the dashboard's rollups from enrollments and certificates (after a bulk load that bypassed the
    triggers, or after `flask db upgrade` on a large database: faster than settling every user on first use)."""
    from core.extensions import db
    from insights import people, rollups

    enrollment_rows, certificate_rows = rollups.rebuild()
    people_rows = people.rebuild()
    db.session.commit()
    click.echo(
        f"Rebuilt {enrollment_rows} enrollment day rows, {certificate_rows} certificate day rows, "
        f"{people_rows} people rows."
    )
