"""The task queue: Huey carries the work, the ``jobs`` table remembers it.

Huey (SQLite file under instance/ by default, Redis in production, an in-process immediate mode in tests)
moves a job id to a worker, runs periodic work and delays retries. Huey pops a task before running it,
so a worker killed mid-task would lose it; the ``jobs`` row is therefore the truth: a worker claims it
with a compare-and-set (queued, or running with an expired lease → running, attempts + 1), so two workers
handed the same id run it once, and a periodic sweep hands out again whatever was killed mid-way or never
reached Huey. Handlers must be idempotent (a killed job runs again); each records its own effect with a
unique key (one email per event and recipient, one PDF per certificate revision, ...).

Jobs are written in the caller's transaction with ``enqueue`` and handed to Huey only after that
transaction commits: a rolled-back request never runs a job.
"""

from __future__ import annotations

import enum
import logging
import os
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, Index, String, Text, and_, event, or_, select, update
from sqlalchemy.orm import Mapped, Session, make_transient_to_detached, mapped_column

from core.database import str_enum, utcnow
from core.extensions import db

log = logging.getLogger(__name__)


class JobState(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class Job(db.Model):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_state_run_after", "state", "run_after"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    task: Mapped[str] = mapped_column(String(100))
    args: Mapped[dict] = mapped_column(JSON, default=dict)
    # optional: a second enqueue with the same key is a no-op (e.g. one expiry scan per day)
    key: Mapped[str | None] = mapped_column(String(200), unique=True)
    state: Mapped[JobState] = mapped_column(str_enum(JobState, "job_state", 16), default=JobState.QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=6)
    run_after: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.task} {self.state.value}>"


@dataclass(frozen=True)
class Handler:
    fn: Callable[..., Any]
    attempts: int
    lease: int  # seconds a claim lasts: longer than the handler can take, or a second worker may start it
    label: str


HANDLERS: dict[str, Handler] = {}
DAILY: list[str] = []  # handlers the consumer enqueues once a day (keyed by date)
PERIODIC: list[tuple[str, int, Callable[[dict], bool]]] = []  # (handler, every N minutes, when), keyed by slot


def job(name: str, *, attempts: int = 6, lease: int = 300, label: str | None = None) -> Callable:
    """Register ``fn(**args)`` as the handler of jobs named ``name``. It runs in an app context and may commit."""

    def decorator(fn: Callable) -> Callable:
        HANDLERS[name] = Handler(fn, attempts, lease, label or name)
        return fn

    return decorator


def daily(name: str) -> None:
    DAILY.append(name)


def every(name: str, minutes: int, when: Callable[[dict], bool] = lambda config: True) -> None:
    PERIODIC.append((name, minutes, when))


# ---- enqueue (in the caller's transaction) and hand over after commit -------------------------------------


def enqueue(name: str, *, key: str | None = None, run_after: datetime | None = None, **args: Any) -> Job | None:
    """Add a job to the current transaction; it reaches a worker after the commit.

    With a ``key`` already used, nothing is added and None is returned. Raises KeyError for an unknown
    handler. Flush only; the caller commits.
    """
    handler = HANDLERS[name]
    now = utcnow()
    row = Job(
        task=name,
        args=args,
        key=key,
        state=JobState.QUEUED,
        attempts=0,
        max_attempts=handler.attempts,
        run_after=run_after or now,
        created_at=now,
        updated_at=now,
    )
    if key is not None:
        row = insert_unique(row)
        if row is None:
            return None
    else:
        db.session.add(row)
        db.session.flush()
    after_commit(db.session(), row.id)
    return row


_INSERT_UNIQUE: dict = {}


def insert_unique(row: db.Model) -> db.Model | None:
    """INSERT … ON CONFLICT DO NOTHING for a new ORM object: the row (now persistent) or None if a unique
    constraint already holds its twin. Unlike a savepoint, this never commits early on SQLite (pysqlite emits
    no BEGIN before a SAVEPOINT, so RELEASE would commit the caller's transaction). Flush only."""
    from sqlalchemy.dialects import postgresql, sqlite

    db.session.flush()  # the caller's pending rows first, in order
    table = type(row).__table__
    values = {c.key: getattr(row, c.key) for c in table.columns if getattr(row, c.key, None) is not None or c.nullable}
    values = {k: v for k, v in values.items() if not (k == "id" and v is None)}
    dialect = db.session.get_bind().dialect.name
    statement = _INSERT_UNIQUE.get((table, dialect))
    if statement is None:  # built once per table: the columns come with the values
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = _INSERT_UNIQUE[table, dialect] = insert(table).on_conflict_do_nothing().returning(table.c.id)
    new_id = db.session.connection().execute(statement, values).scalar()
    if new_id is None:
        return None
    if all(c.key in values for c in table.columns if c.key != "id"):
        # every column was given: the row holds exactly these values, so the object becomes the session's without
        # a read-back (a certificate's PDF job at every issuance)
        row.id = new_id
        make_transient_to_detached(row)
        db.session.add(row)
        return row
    return db.session.get(type(row), new_id)


def after_commit(session: Session, job_id: int) -> None:
    session.info.setdefault("queue_after_commit", []).append((current_app._get_current_object(), job_id))


@event.listens_for(Session, "after_commit")
def _dispatch_after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        # SQLAlchemy sends after_commit for a released SAVEPOINT too: handing jobs over then would have the worker
        # look for rows the enclosing transaction has not committed yet (and skip them)
        return
    for app, job_id in session.info.pop("queue_after_commit", []):
        try:
            app.extensions["queue"].dispatch(job_id)
        except Exception:
            # the job row is committed: the sweep hands it out once the broker answers again
            log.exception("could not hand job %s to the queue; the sweep will retry", job_id)


@event.listens_for(Session, "after_soft_rollback")
def _forget_after_rollback(session: Session, previous_transaction) -> None:
    if previous_transaction.parent is None and previous_transaction.nested is False:
        session.info.pop("queue_after_commit", None)


# ---- running a job ------------------------------------------------------------------------------------


def backoff(attempt: int, base: float) -> timedelta:
    """30 s, 2 min, 8 min, 32 min, ~2 h with the default base, capped at 6 hours."""
    return timedelta(seconds=min(base * 4 ** (attempt - 1), 6 * 3600))


@dataclass
class Outcome:
    status: str  # done | retry | failed | skipped
    delay: float = 0.0


def execute(job_id: int, *, now: datetime | None = None) -> Outcome:
    """Claim the job and run its handler once. Never raises for a handler's failure: records it.

    Commits its own transactions (claim, handler, outcome). A job another worker holds, one already
    done or failed, or one not due yet is skipped.
    """
    now = now or utcnow()
    row = db.session.get(Job, job_id)
    if row is None:
        return Outcome("skipped")  # rolled back after it was handed over, or deleted
    handler = HANDLERS.get(row.task)
    seen = row.attempts
    lease = handler.lease if handler else 60
    claimed = db.session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            Job.attempts == seen,
            Job.run_after <= now + timedelta(seconds=1),
            or_(Job.state == JobState.QUEUED, and_(Job.state == JobState.RUNNING, Job.lease_until < now)),
        )
        .values(
            state=JobState.RUNNING,
            attempts=seen + 1,
            lease_until=now + timedelta(seconds=lease),
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if claimed != 1:
        db.session.rollback()
        return Outcome("skipped")
    db.session.expire_all()
    row = db.session.get(Job, job_id)
    args = dict(row.args or {})
    try:
        if handler is None:
            raise LookupError(f"no handler for job {row.task!r}")
        handler.fn(**args)
        db.session.commit()
    except Exception as error:
        db.session.rollback()
        log.warning("job %s (%s) attempt %s failed: %s", job_id, row.task, seen + 1, error)
        return _record_failure(job_id, error, now=utcnow())
    db.session.execute(
        update(Job)
        .where(Job.id == job_id, Job.attempts == seen + 1)
        .values(state=JobState.DONE, finished_at=utcnow(), updated_at=utcnow(), lease_until=None, last_error=None)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return Outcome("done")


def _record_failure(job_id: int, error: Exception, *, now: datetime) -> Outcome:
    row = db.session.get(Job, job_id)
    detail = "".join(traceback.format_exception_only(type(error), error)).strip()
    row.last_error = detail[:4000]
    row.updated_at, row.lease_until = now, None
    if row.attempts >= row.max_attempts:
        row.state, row.finished_at = JobState.FAILED, now
        db.session.commit()
        log.error("job %s (%s) failed for good after %s attempts: %s", job_id, row.task, row.attempts, detail)
        return Outcome("failed")
    delay = backoff(row.attempts, current_app.config["QUEUE_RETRY_BASE_SECONDS"])
    row.state, row.run_after = JobState.QUEUED, now + delay
    db.session.commit()
    return Outcome("retry", delay.total_seconds())


def sweep(*, now: datetime | None = None, grace: timedelta = timedelta(minutes=2)) -> list[int]:
    """Ids of jobs to hand out again: queued and due for ``grace`` (never reached a worker, or a lost retry),
    or running with an expired lease (the worker died). Read only."""
    now = now or utcnow()
    return list(
        db.session.scalars(
            select(Job.id)
            .where(
                or_(
                    and_(Job.state == JobState.QUEUED, Job.run_after <= now - grace),
                    and_(Job.state == JobState.RUNNING, Job.lease_until < now),
                )
            )
            .order_by(Job.id)
            .limit(1000)
        )
    )


def run_due(*, now: datetime | None = None) -> list[Outcome]:
    """Run every job that is due at ``now`` in this process (tests, `flask jobs run`). Commits."""
    now = now or utcnow()
    outcomes = []
    for _round in range(20):  # jobs may enqueue jobs (a scan queues mails); a few rounds reach them
        ids = sweep(now=now, grace=timedelta(0))
        if not ids:
            break
        outcomes.extend(execute(job_id, now=now) for job_id in ids)
    return outcomes


def retry(actor, row: Job, *, now: datetime) -> None:
    """Queue a failed job again with a fresh set of attempts. Raises DomainError unless it failed. Flush only."""
    from core import audit
    from core.errors import DomainError

    if row.state is not JobState.FAILED:
        raise DomainError(_("Only a failed job can be retried."))
    before = {"attempts": row.attempts, "last_error": (row.last_error or "")[:200]}
    row.state, row.attempts, row.run_after, row.updated_at, row.finished_at = JobState.QUEUED, 0, now, now, None
    audit.record(actor, "job.retried", "job", row.id, f"Retried job {row.id} ({row.task})", now=now, before=before)
    db.session.flush()
    after_commit(db.session(), row.id)


# ---- Huey wiring -------------------------------------------------------------------------------------


class Queue:
    """The app's Huey instance and its tasks, built on first use (the factory creates no files)."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._huey = None
        self._lock = threading.Lock()

    @property
    def huey(self):
        if self._huey is None:
            with self._lock:
                if self._huey is None:
                    self._huey = self._build()
        return self._huey

    def _build(self):
        from huey import MemoryHuey, RedisHuey, SqliteHuey, crontab

        app = self.app
        url = app.config["QUEUE_URL"]
        name = app.config["QUEUE_NAME"]
        if url == "immediate":
            # tests: each job runs in-process when it is handed over; retries wait for run_due()
            huey = MemoryHuey(name, immediate=True, results=False)
        elif url.startswith("sqlite:///"):
            filename = url[len("sqlite:///") :]
            os.makedirs(os.path.dirname(os.path.abspath(filename)), exist_ok=True)
            huey = SqliteHuey(name, filename=filename, results=False)
        elif url.startswith(("redis://", "rediss://", "unix://")):
            huey = RedisHuey(name, url=url, results=False)
        else:
            raise ValueError("QUEUE_URL must be immediate, sqlite:///PATH or redis://HOST:PORT/DB")

        @huey.task(name="run_job")
        def run_job(job_id: int) -> None:
            with app.app_context():
                try:
                    outcome = execute(job_id)
                finally:
                    db.session.remove()
            log.info("job %s: %s", job_id, outcome.status)
            if outcome.status == "retry":
                run_job.schedule((job_id,), delay=outcome.delay)

        @huey.periodic_task(crontab(minute="*"), name="sweep")
        def sweep_task() -> None:
            with app.app_context():
                try:
                    ids = sweep()
                finally:
                    db.session.remove()
            for job_id in ids:
                run_job(job_id)

        @huey.periodic_task(crontab(minute="*"), name="schedule")
        def schedule_task() -> None:
            with app.app_context():
                try:
                    enqueue_scheduled(utcnow(), app.config["QUEUE_DAILY_HOUR"])
                    db.session.commit()
                finally:
                    db.session.remove()

        @huey.on_startup()
        def _fresh_connections() -> None:
            # process workers are forked: never share the parent's database connections
            with app.app_context():
                db.engine.dispose(close=False)

        self.run_job = run_job
        return huey

    def dispatch(self, job_id: int, delay: float | None = None) -> None:
        self.huey  # noqa: B018 (builds run_job on first use)
        if delay:
            self.run_job.schedule((job_id,), delay=delay)
        else:
            self.run_job(job_id)


def enqueue_scheduled(now: datetime, daily_hour: int) -> None:
    """Queue the daily jobs (from ``daily_hour`` UTC, once per date) and the every-N-minutes ones. Flush only."""
    if now.hour >= daily_hour:
        for name in DAILY:
            enqueue(name, key=f"{name}:{now.date().isoformat()}", day=now.date().isoformat())
    for name, minutes, when in PERIODIC:
        if when(current_app.config):
            slot = int(now.timestamp() // (minutes * 60))
            enqueue(name, key=f"{name}:{slot}")


@job("queue.prune", attempts=3, label=_l("Delete finished jobs older than two weeks"))
def prune(day: str | None = None) -> None:
    cutoff = utcnow() - timedelta(days=14)
    db.session.execute(Job.__table__.delete().where(Job.state == JobState.DONE, Job.finished_at < cutoff))


daily("queue.prune")


def init_app(app: Flask) -> None:
    import click

    app.extensions["queue"] = Queue(app)

    @app.cli.command("worker")
    @click.option("--workers", default=2, show_default=True, help="Threads (or processes) running jobs.")
    @click.option("--worker-type", type=click.Choice(["thread", "process"]), default="thread", show_default=True)
    @click.option("--no-periodic", is_flag=True, help="Run jobs only (another worker runs the sweep and schedule).")
    def worker(workers: int, worker_type: str, no_periodic: bool) -> None:
        """Run the queue consumer (the web server only queues work)."""
        queue = app.extensions["queue"]
        if queue.huey.immediate:
            raise click.ClickException("QUEUE_URL is 'immediate': jobs run in the web process, no worker needed")
        from flask.logging import default_handler

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(processName)s %(name)s %(message)s")
        app.logger.removeHandler(default_handler)  # one line per record: the root handler prints it
        # a restarted worker recovers at once what a killed one left (instead of at the next minute's sweep)
        with app.app_context():
            stale = sweep()
            db.session.remove()
        for job_id in stale:
            queue.dispatch(job_id)
        consumer = queue.huey.create_consumer(
            workers=workers,
            worker_type=worker_type,
            periodic=not no_periodic,
            initial_delay=0.1,
            max_delay=2.0,
        )
        consumer.run()

    @app.cli.command("run-jobs")
    def run_jobs() -> None:
        """Run every due job once in this process, then exit (cron-style, or to drain the queue by hand)."""
        with app.app_context():
            enqueue_scheduled(utcnow(), app.config["QUEUE_DAILY_HOUR"])
            db.session.commit()
            outcomes = run_due()
        counts: dict[str, int] = {}
        for outcome in outcomes:
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        click.echo(", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "nothing due")
