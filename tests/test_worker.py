"""Real worker processes (`flask worker`, Huey's consumer) against one database, one Huey store and a real
SMTP server: two workers handed the same job, and a worker killed mid-job, end with exactly one message."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from core import create_app, queue
from core.database import utcnow
from core.extensions import db
from core.mail import MailState, Notification, send_mail
from tests import conftest, forkserver
from tests.pgcluster import memory_folder
from tests.smtp import SMTPServer

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow  # starts real worker processes (seconds each)


@pytest.fixture
def setup(tmp_path, tmp_path_factory, database_url, app):
    # in memory, as the suite's database: the workers' queue store commits on every hand-over and poll
    queue_url = f"sqlite:///{Path(memory_folder(tmp_path), tmp_path.name + '-queue.db')}"
    with SMTPServer() as server:
        config = {
            **conftest.test_config(tmp_path_factory, database_url),
            "QUEUE_URL": queue_url,
            "MAIL_BACKEND": "smtp",
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": server.port,
            "MAIL_USE_TLS": False,
        }
        env = {
            **os.environ,
            "FLASK_APP": "wsgi",
            "FLASK_APP_ENV": "test",
            "FLASK_SECRET_KEY": config["SECRET_KEY"],
            "FLASK_SQLALCHEMY_DATABASE_URI": database_url,
            "FLASK_QUEUE_URL": queue_url,
            "FLASK_MAIL_BACKEND": "smtp",
            "FLASK_MAIL_SERVER": "127.0.0.1",
            "FLASK_MAIL_PORT": str(server.port),
            "FLASK_MAIL_USE_TLS": "false",
            "FLASK_MAIL_TIMEOUT": "20",
        }
        workers: list[tuple[forkserver.Forked, Path]] = []

        def start(name: str) -> tuple[forkserver.Forked, Path]:
            log = tmp_path / f"{name}.log"
            with log.open("w") as out:
                # forked from a process that imported the app (tests/forkserver.py): a fresh interpreter importing
                # it cost ~2.5 s of CPU per worker
                process = forkserver.shared().spawn(
                    ["flask", "worker", "--workers", "1", "--no-periodic"],
                    env=env,
                    cwd=ROOT,
                    stdout=out,
                    new_session=True,
                )
            workers.append((process, log))
            deadline = time.monotonic() + 60
            while "consumer started" not in log.read_text() and time.monotonic() < deadline:
                assert process.poll() is None, log.read_text()
                time.sleep(0.1)
            assert "consumer started" in log.read_text(), log.read_text()
            return process, log

        worker_app = create_app(config)
        try:
            with worker_app.app_context():
                yield worker_app, server.handler, start
        finally:
            for process, _ in workers:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
            for process, _ in workers:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
            with worker_app.app_context():
                db.session.remove()
                db.engine.dispose()


def wait_until(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def job_row() -> queue.Job:
    db.session.expire_all()
    return db.session.scalar(select(queue.Job))


def test_two_workers_handed_the_same_job_send_one_message(setup):
    worker_app, smtp, start = setup
    smtp.data_delay = 1.5  # the first worker is mid-send while the second takes its copy
    (_, log_a), (_, log_b) = start("a"), start("b")
    send_mail("dana@example.org", "Hello Dana", "One message, whatever happens.")
    job_id = job_row().id
    worker_app.extensions["queue"].dispatch(job_id)  # a second copy of the same job in the broker

    wait_until(lambda: job_row().state is queue.JobState.DONE)
    wait_until(lambda: "skipped" in log_a.read_text() + log_b.read_text())
    time.sleep(2)  # room for a second message, if one were coming
    assert len(smtp.messages()) == 1
    logs = log_a.read_text() + log_b.read_text()
    assert logs.count(f"job {job_id}: done") == 1 and logs.count(f"job {job_id}: skipped") == 1
    assert f"job {job_id}: done" in log_a.read_text() or f"job {job_id}: done" in log_b.read_text()
    assert job_row().attempts == 1
    assert db.session.scalar(select(Notification.state)) is MailState.SENT


def test_a_worker_killed_mid_job_is_replaced_and_the_message_goes_once(setup):
    _, smtp, start = setup
    smtp.mode = "stall"  # the server holds the worker inside the SMTP transaction
    first, _ = start("first")
    send_mail("dana@example.org", "Hello Dana", "One message, whatever happens.")
    assert smtp.rcpt_seen.wait(30), "the worker never reached the SMTP server"
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    smtp.mode = "accept"
    smtp.release.set()

    row = job_row()
    assert row.state is queue.JobState.RUNNING and row.attempts == 1
    assert smtp.messages() == []
    # three minutes later the dead worker's lease has run out
    db.session.execute(update(queue.Job).values(lease_until=utcnow() - timedelta(seconds=1)))
    db.session.commit()

    _, log = start("second")  # a restarted worker sweeps up what the killed one left
    wait_until(lambda: job_row().state is queue.JobState.DONE)
    time.sleep(2)
    assert len(smtp.messages()) == 1
    assert job_row().attempts == 2
    assert "consumer started" in log.read_text()
