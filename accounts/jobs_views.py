"""Admins' view of the task queue: counts, failed jobs with their last error, and a retry button.

The queue itself is core's (core/queue.py); its page lives here, like the audit log's, because deciding who
may see it needs the accounts room's permissions.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select

from accounts.permissions import can_manage_jobs, permission_required
from core import queue
from core.database import utcnow
from core.errors import DomainError
from core.extensions import db
from core.forms import ButtonForm

bp = Blueprint("admin_jobs", __name__, url_prefix="/admin/jobs")


@bp.get("/")
@permission_required(can_manage_jobs)
def list_jobs():
    counts = dict(db.session.execute(select(queue.Job.state, func.count()).group_by(queue.Job.state)).all())
    failed = db.session.scalars(
        select(queue.Job).where(queue.Job.state == queue.JobState.FAILED).order_by(queue.Job.id.desc()).limit(100)
    ).all()
    waiting = db.session.scalars(
        select(queue.Job)
        .where(queue.Job.state.in_([queue.JobState.QUEUED, queue.JobState.RUNNING]), queue.Job.attempts > 0)
        .order_by(queue.Job.run_after)
        .limit(50)
    ).all()
    return render_template(
        "admin/jobs.html",
        counts={state: counts.get(state, 0) for state in queue.JobState},
        failed=failed,
        retrying=waiting,
        labels={name: handler.label for name, handler in queue.HANDLERS.items()},
        form=ButtonForm(),
        now=utcnow(),
    )


@bp.post("/<int:job_id>/retry")
@permission_required(can_manage_jobs)
def retry(job_id: int):
    row = db.get_or_404(queue.Job, job_id)
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        queue.retry(current_user, row, now=utcnow())
    except DomainError as error:
        db.session.rollback()
        flash(error.message, "error")
        return redirect(url_for("admin_jobs.list_jobs"), 303)
    db.session.commit()
    flash(_("Job %(id)d is queued again.", id=job_id), "success")
    return redirect(url_for("admin_jobs.list_jobs"), 303)
