"""Stateless app nodes: two app servers, one task worker, one database, Redis and an S3 server (moto's, on
loopback), each its own process, sharing nothing but those services, as on separate machines.

Whatever one node writes, every other node serves: an image uploaded through server A is served by server B; a
certificate issued on A is rendered by the worker and downloaded from B; a course published on A shows on B. A
worker killed in the middle of a render leaves the job to be run again, and the second run adds nothing twice.

Nothing may land on a node's own disk: each process gets local storage folders that must stay empty. The servers
are started once for the module (they cost seconds each).
"""

from __future__ import annotations

import hashlib
import io
import json
import signal
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from tests.conftest import TEST_SIGNING_KEYS
from tests.forkserver import Forked
from tests.s3server import S3Server, s3_server
from tests.servers.conftest import ROOT, Client, forkserver, gunicorns, inputs, server_env
from tests.servers.test_two_servers import arrange, password_hash

PUBLISHED = "when-ai-changes-your-job"  # published on A in one test; the other tests use the two-server course


@dataclass
class Worker:
    """`flask worker` as its own process (one thread, no periodic tasks: the startup sweep is what we test)."""

    env: dict[str, str]
    folder: Path
    process: Forked | None = None
    runs: int = 0

    def start(self) -> None:
        self.runs += 1
        log = self.folder / f"worker-{self.runs}.log"
        with log.open("w") as out:
            self.process = forkserver().spawn(  # forked from a process that imported the app (tests/forkserver.py)
                ["flask", "worker", "--workers", "1", "--no-periodic"],
                env={**self.env, "FLASK_APP": "wsgi"},
                cwd=ROOT,
                stdout=out,
            )

    def kill(self) -> None:
        """SIGKILL: no cleanup, no chance to finish or release the job."""
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def logs(self) -> str:
        return "".join((self.folder / f"worker-{n}.log").read_text() for n in range(1, self.runs + 1))


@dataclass
class Cluster:
    a: str
    b: str
    s3: S3Server
    worker: Worker
    local_folders: list[Path]  # the nodes' own storage folders: they must stay empty


def _redis_db(url: str, number: int) -> str:
    # a database of our own on the suite's Redis: the two-server tests count rate limits in database 0
    return url.rsplit("/", 1)[0] + f"/{number}"


@pytest.fixture(scope="module")
def cluster(shared_app, redis_url, tmp_path_factory) -> Iterator[Cluster]:
    from core.database import utcnow
    from core.extensions import db
    from courses.catalog import CATALOG_DIR, import_folder

    with shared_app.app_context():
        import_folder(CATALOG_DIR / PUBLISHED, now=utcnow())
        db.session.commit()
        db.session.remove()
    folder = tmp_path_factory.mktemp("multinode")
    redis = _redis_db(redis_url, 1)
    local = [folder / "node-certificates", folder / "node-uploads"]
    for path in local:
        path.mkdir()
    with s3_server(folder) as s3:
        env = {
            **server_env(shared_app, redis, folder),
            **{f"FLASK_{key}": value for key, value in s3.config().items()},
            "FLASK_QUEUE_URL": redis,
            "FLASK_CERTIFICATE_DIR": str(local[0]),
            "FLASK_UPLOAD_DIR": str(local[1]),
            "FLASK_SIGNING_KEYS": json.dumps(TEST_SIGNING_KEYS),
            "FLASK_PRERENDER_PDF": "true",
        }
        worker = Worker(env, folder)
        worker.start()
        try:
            with gunicorns(env, folder, names=("a", "b"), workers=1) as (a, b):
                yield Cluster(a, b, s3, worker, local)
        finally:
            worker.stop()
        assert "Traceback" not in worker.logs(), worker.logs()[-4000:]


@pytest.fixture(autouse=True)
def _nothing_on_local_disk(cluster) -> Iterator[None]:
    yield
    for path in cluster.local_folders:
        assert not list(path.iterdir()), f"a node wrote to its own disk: {list(path.iterdir())}"


def wait_until(what: str, check: Callable[[], object], seconds: float = 180) -> object:
    """Poll ``check`` until it returns something truthy (work in other processes has no event to wait on)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        # each check is a query of this process and a PostgreSQL backend: at 0.02 s the waits for a worker to start
        # and render cost more CPU than the rendering; 0.1 s adds at most 0.1 s to a wait of seconds
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def png_bytes() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (7, 5), (11, 79, 138)).save(out, "PNG")
    return out.getvalue()


def make_admin(app, email: str) -> None:
    from accounts.models import Role, User
    from core.extensions import db

    with app.app_context():
        db.session.add(
            User(email=email, name="Ada Admin", legal_name="Ada Admin", role=Role.ADMIN, password_hash=password_hash())
        )
        db.session.commit()
        db.session.remove()


def prerender_job(app, certificate_id: int):
    """(state, attempts) of the certificate's PDF job, or None before it exists."""
    from core.extensions import db
    from core.queue import Job

    with app.app_context():
        rows = [
            (row.id, row.state.value, row.attempts)
            for row in db.session.scalars(select(Job).where(Job.task == "credentials.prerender_pdf"))
            if row.args.get("certificate_id") == certificate_id
        ]
        db.session.remove()
    assert len(rows) <= 1, rows
    return rows[0] if rows else None


def certificate_of(app, user_id: int) -> dict:
    from core.extensions import db
    from credentials.models import Certificate, CertificateEvent

    with app.app_context():
        rows = list(db.session.scalars(select(Certificate).where(Certificate.user_id == user_id)))
        assert len(rows) == 1, f"{len(rows)} certificates"
        certificate = rows[0]
        facts = {
            "id": certificate.id,
            "public_id": certificate.public_id,
            "pdf_sha256": certificate.pdf_sha256,
            "pdf_rendered_at": certificate.pdf_rendered_at,
            "events": db.session.scalar(
                select(func.count())
                .select_from(CertificateEvent)
                .where(CertificateEvent.certificate_id == certificate.id)
            ),
        }
        db.session.remove()
    return facts


def download(client: Client, base: str, public_id: str):
    from credentials.ids import format_public_id

    return client.get(f"{base}/certificates/{format_public_id(public_id)}.pdf")


def complete_last_lesson(cluster: Cluster, shared_app, email: str):
    """A learner with only the last lesson left finishes it on server A: the certificate is issued there."""
    arranged = arrange(shared_app, email, lesson_left=True, quiz_left=False)
    client = Client()
    client.login(cluster.a, arranged.email)
    token = client.csrf(cluster.a + arranged.lesson_path)
    done = client.post(cluster.a + arranged.lesson_path + "/complete", {"csrf_token": token})
    assert done.status == 303, done.text[:500]
    return client, arranged


def test_an_image_uploaded_through_a_is_served_by_b(cluster, shared_app):
    email = "studio-a@example.org"
    client = Client()
    make_admin(shared_app, email)
    client.login(cluster.a, email)
    image = png_bytes()
    token = client.csrf(cluster.a + "/studio/")
    uploaded = client.post(
        cluster.a + "/studio/media",
        {"csrf_token": token, "alt_text": "A warehouse aisle", "next": "/studio/"},
        files={"file": ("aisle.png", image, "image/png")},
    )
    assert uploaded.status == 303, uploaded.text[:500]
    name = f"{hashlib.sha256(image).hexdigest()}.png"
    assert cluster.s3.keys("uploads/") == [f"uploads/{name}"]

    served = Client().get(cluster.b + f"/media/{name}")  # anyone, on the other server
    assert served.status == 200 and served.body == image
    assert served.headers["content-type"] == "image/png"
    studio_b = client.get(cluster.b + urllib.parse.urlsplit(uploaded.headers["location"]).path)
    assert studio_b.status == 200 and f"/media/{name}" in studio_b.text  # A's note on how to use it, shown by B


def test_a_certificate_issued_on_a_is_rendered_by_the_worker_and_downloaded_from_b(cluster, shared_app):
    app = shared_app
    client, arranged = complete_last_lesson(cluster, app, "render-on-worker@example.org")
    issued = certificate_of(app, arranged.user_id)
    wait_until("the worker to render the PDF", lambda: (prerender_job(app, issued["id"]) or (0, ""))[1] == "done")
    rendered = certificate_of(app, arranged.user_id)
    key = f"certificates/{rendered['public_id']}.pdf"
    assert rendered["pdf_sha256"] and cluster.s3.keys(key) == [key]
    assert hashlib.sha256(cluster.s3.get(key)).hexdigest() == rendered["pdf_sha256"]

    pdf = download(client, cluster.b, rendered["public_id"])
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    assert hashlib.sha256(pdf.body).hexdigest() == rendered["pdf_sha256"]  # the worker's bytes, served by B
    assert certificate_of(app, arranged.user_id) == rendered  # B rendered nothing itself
    assert rendered["events"] == 1


def test_a_publish_on_a_shows_on_b(cluster, shared_app):
    email = "publisher@example.org"
    make_admin(shared_app, email)
    visitor = Client()
    before = visitor.get(cluster.b + f"/courses/{PUBLISHED}")  # B has served (and may have cached) the course
    assert before.status == 200
    new_title = "When AI Changes Your Job, Second Edition"
    assert new_title not in before.text

    admin = Client()
    admin.login(cluster.a, email)
    page = admin.get(cluster.a + f"/studio/{PUBLISHED}")  # opens a draft on A
    assert page.status == 200
    meta = {name: value for name, value in inputs(page.text) if name.startswith("meta-")}
    saved = admin.post(cluster.a + f"/studio/{PUBLISHED}/meta", {**meta, "meta-title": new_title})
    assert saved.status == 303, saved.text[:500]
    page = admin.get(cluster.a + f"/studio/{PUBLISHED}")
    fields = dict(inputs(page.text))
    published = admin.post(
        cluster.a + f"/studio/{PUBLISHED}/publish", {"csrf_token": fields["csrf_token"], "revision": fields["revision"]}
    )
    assert published.status == 303 and published.headers["location"].endswith("/studio/"), published.text[:500]

    course_b = visitor.get(cluster.b + f"/courses/{PUBLISHED}")
    assert course_b.status == 200 and new_title in course_b.text
    catalog_b = visitor.get(cluster.b + "/courses")
    assert catalog_b.status == 200 and new_title in catalog_b.text


def test_a_worker_killed_mid_render_runs_the_job_again_without_duplicates(cluster, shared_app):
    """The S3 server is paused first, so the render cannot be stored before the kill whatever the timing: the
    worker is killed right after it claims the job (while it renders, or at the latest while its upload hangs)."""
    from core.database import utcnow
    from core.extensions import db
    from core.queue import Job

    app = shared_app
    cluster.s3.process.send_signal(signal.SIGSTOP)
    try:
        client, arranged = complete_last_lesson(cluster, app, "killed-worker@example.org")
        issued = certificate_of(app, arranged.user_id)
        job_id, _state, _attempts = wait_until(
            "the worker to claim the PDF job",
            lambda: (job := prerender_job(app, issued["id"])) and job[1] == "running" and job,
        )
        cluster.worker.kill()
    finally:
        cluster.s3.process.send_signal(signal.SIGCONT)
    assert prerender_job(app, issued["id"]) == (job_id, "running", 1)
    assert certificate_of(app, arranged.user_id)["pdf_sha256"] is None  # nothing recorded

    # the claim's lease (5 minutes) runs out: rather than wait, move it into the past
    with app.app_context():
        db.session.execute(update(Job).where(Job.id == job_id).values(lease_until=utcnow() - timedelta(seconds=1)))
        db.session.commit()
        db.session.remove()
    cluster.worker.start()  # its startup sweep finds the abandoned job
    wait_until("the restarted worker to finish the job", lambda: prerender_job(app, issued["id"])[1] == "done")
    assert prerender_job(app, issued["id"]) == (job_id, "done", 2)

    final = certificate_of(app, arranged.user_id)  # still exactly one certificate
    assert final["events"] == 1  # issued, once
    pdfs = [key for key in cluster.s3.keys(f"certificates/{final['public_id']}") if key.endswith(".pdf")]
    assert pdfs == [f"certificates/{final['public_id']}.pdf"]  # one object, whatever the first run sent
    assert hashlib.sha256(cluster.s3.get(pdfs[0])).hexdigest() == final["pdf_sha256"]
    pdf = download(client, cluster.b, final["public_id"])
    assert pdf.status == 200 and hashlib.sha256(pdf.body).hexdigest() == final["pdf_sha256"]
