"""Two real app servers (gunicorn on two loopback ports) sharing one database and one Redis.

The database is the suite's PostgreSQL (a database of its own beside TEST_DATABASE_URL's) or, without
TEST_DATABASE_URL, a shared SQLite file. Redis is a throwaway ``redis-server`` started here: Flask-Limiter
keeps its counters there (FLASK_RATELIMIT_STORAGE_URI), so a limit holds across both servers combined.
"""

from __future__ import annotations

import http.client
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests import forkserver as forkserver_module
from tests.pgcluster import sibling_database

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "quartz meadow lantern 4417"
USER_AGENT = "awa-two-servers/1"
VERIFY_LIMIT = 5  # per hour: the test finishes long before the window ends
INPUT_RE = re.compile(r"<input\b[^>]*>")  # attributes in any order
NAME_RE = re.compile(r'\bname="([^"]*)"')
VALUE_RE = re.compile(r'\bvalue="([^"]*)"')


def inputs(html: str) -> list[tuple[str, str]]:
    """(name, value) of every input on the page that has both."""
    found = []
    for tag in INPUT_RE.findall(html):
        name, value = NAME_RE.search(tag), VALUE_RE.search(tag)
        if name and value:
            found.append((name.group(1), value.group(1)))
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, what: str, log: Path | None = None, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    proc.kill()
    detail = log.read_text()[-3000:] if log and log.exists() else ""
    raise RuntimeError(f"{what} did not start on port {port}\n{detail}")


def wait_until_serving(port: int, proc: subprocess.Popen, log: Path) -> None:
    """Wait for /healthz to answer: the port opens when gunicorn's master binds it, but requests wait until a worker
    has imported the app, which takes tens of seconds on a loaded machine (longer than a test request's timeout)."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=max(1.0, deadline - time.monotonic()))
        try:
            conn.request("GET", "/healthz", headers={"User-Agent": USER_AGENT})
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn on port {port} never answered /healthz\n{log.read_text()[-3000:]}")


@pytest.fixture(autouse=True)
def _clean() -> None:
    """These tests use their own database: the suite's per-test cleanup of its database is not needed here."""


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(
            "redis-server is missing: the two-server tests need it (`make test` installs it when run as root)",
            pytrace=False,
        )
    folder = tmp_path_factory.mktemp("redis")
    port = free_port()
    log = folder / "redis.log"
    with log.open("w") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=folder,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, proc, "redis-server", log)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _database(folder: Path) -> str:
    return sibling_database(folder, "servers")


@pytest.fixture(scope="session")
def shared_app(tmp_path_factory):
    """A migrated database with one published course; the app object is used to arrange and inspect rows."""
    from flask_migrate import upgrade

    from core import create_app
    from core.database import utcnow
    from core.extensions import db
    from courses.catalog import CATALOG_DIR, import_folder
    from skills.services import load_framework_file

    folder = tmp_path_factory.mktemp("servers")
    app = create_app(
        {
            "APP_ENV": "test",
            "SECRET_KEY": "two-servers-secret-" + "s" * 32,
            "SQLALCHEMY_DATABASE_URI": _database(folder),
            "MAIL_OUTBOX_DIR": str(folder / "outbox"),
        }
    )
    with app.app_context():
        upgrade()
        load_framework_file(now=utcnow())
        import_folder(CATALOG_DIR / "spotting-synthetic-media", now=utcnow())
        db.session.commit()
    app.config["TEST_FOLDER"] = folder
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def server_env(app, redis_url: str, folder: Path) -> dict[str, str]:
    """The environment of an app server (production config) on ``app``'s database and this Redis."""
    return {
        **os.environ,
        "FLASK_APP_ENV": "production",
        "FLASK_SECRET_KEY": app.config["SECRET_KEY"],
        "FLASK_SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
        "FLASK_SESSION_COOKIE_SECURE": "false",
        "FLASK_REMEMBER_COOKIE_SECURE": "false",
        "FLASK_MAIL_OUTBOX_DIR": str(folder / "outbox"),
        "FLASK_CERTIFICATE_DIR": str(folder / "certificates"),
        "FLASK_RATELIMIT_STORAGE_URI": redis_url,
        "FLASK_RATELIMIT_LOGIN": "1000 per minute",
        "FLASK_RATELIMIT_VERIFY": f"{VERIFY_LIMIT} per hour",
        "FLASK_TRUSTED_HOSTS": '["127.0.0.1"]',
        "FLASK_ALLOW_OUTBOX_MAIL": "true",  # the tests read the mails from the outbox folder
    }


def forkserver() -> forkserver_module.ForkServer:
    """This run's fork server (tests/forkserver.py): every gunicorn and task worker here is forked from one process
    that imported the app, instead of a fresh interpreter importing it each time (~2.5 s of CPU each). WeasyPrint
    and boto3 too: test_multi_node's worker renders PDFs and its nodes keep files in S3."""
    return forkserver_module.shared(("weasyprint", "boto3"))


@contextmanager
def gunicorns(env: dict[str, str], folder: Path, names=("a", "b"), workers: int = 2) -> Iterator[list[str]]:
    """Base URLs of one gunicorn server per name, each on its own loopback port; stopped afterwards, and a
    traceback in any server's log fails the run even if every assertion held."""
    procs, bases, logs = [], [], []
    try:
        for name in names:
            port = free_port()
            log = folder / f"gunicorn-{name}.log"
            logs.append(log)
            with log.open("w") as out:
                procs.append(
                    forkserver().spawn(
                        [
                            "gunicorn",
                            # one asyncio thread less per master, and no socket path shared by every gunicorn
                            "--no-control-socket",
                            # two workers: the master builds the app once and forks both (the database pool that
                            # the fork copies is dropped in each worker: gunicorn_preload.py)
                            *(["--config", "python:tests.servers.gunicorn_preload"] if workers > 1 else []),
                            "--workers",
                            str(workers),
                            # an app import slower than gunicorn's 30 s boot allowance (a loaded machine) is not a
                            # failure of what these tests check
                            "--timeout",
                            "120",
                            "--bind",
                            f"127.0.0.1:{port}",
                            "wsgi:app",
                        ],
                        env=env,
                        cwd=ROOT,
                        stdout=out,
                    )
                )
            bases.append((port, f"http://127.0.0.1:{port}"))
        for (port, _), proc, log in zip(bases, procs, logs, strict=True):
            # a preloading master binds the port only after importing the app: tens of seconds on a loaded machine
            wait_for_port(port, proc, "gunicorn", log, seconds=180)
            wait_until_serving(port, proc, log)
        yield [base for _, base in bases]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:  # a worker still booting on a loaded machine ignores the request
                proc.kill()
                proc.wait(timeout=10)
    for log in logs:
        text = log.read_text()
        assert "Traceback" not in text, f"{log.name}:\n{text[-4000:]}"


@pytest.fixture(scope="session")
def servers(shared_app, redis_url) -> Iterator[list[str]]:
    """Base URLs of two gunicorn servers (production config, 2 workers each) on different ports."""
    folder = shared_app.config["TEST_FOLDER"]
    with gunicorns(server_env(shared_app, redis_url, folder), folder) as bases:
        yield bases


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    text: str
    body: bytes = b""  # the raw bytes (PDFs, images)


def multipart(data: dict[str, str], files: dict[str, tuple[str, bytes, str]]) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type, as a browser sends a form with a file."""
    boundary = "----awa" + secrets.token_hex(12)
    parts = []
    for name, value in data.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, content, mime) in files.items():
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: {mime}\r\n\r\n"
        )
        parts.append(head.encode() + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


@dataclass
class Client:
    """A minimal HTTP client over http.client: no redirects followed, cookies by name (shared by both servers,
    as a browser shares them across ports of one host)."""

    cookies: dict[str, str] = field(default_factory=dict)

    def request(
        self, method: str, url: str, data: dict | None = None, files: dict[str, tuple[str, bytes, str]] | None = None
    ) -> Response:
        parts = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        headers = {"User-Agent": USER_AGENT}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if files:
            body, headers["Content-Type"] = multipart(data or {}, files)
        elif data is not None:
            body = urllib.parse.urlencode(data, doseq=True)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), body, headers)
            raw = conn.getresponse()
            content = raw.read()
            text = content.decode(errors="replace")
            for header, value in raw.getheaders():
                if header.lower() == "set-cookie":
                    name, _, rest = value.partition("=")
                    self.cookies[name.strip()] = rest.split(";", 1)[0]
            return Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, text, content)
        finally:
            conn.close()

    def get(self, url: str) -> Response:
        return self.request("GET", url)

    def post(self, url: str, data: dict, files: dict[str, tuple[str, bytes, str]] | None = None) -> Response:
        """``files``: field name → (file name, bytes, content type), sent as multipart/form-data."""
        return self.request("POST", url, data, files)

    def csrf(self, url: str) -> str:
        page = self.get(url)
        assert page.status == 200, f"{url} answered {page.status}"
        token = next((value for name, value in inputs(page.text) if name == "csrf_token"), None)
        assert token, f"no CSRF token on {url}"
        return token

    def login(self, base: str, email: str, password: str = PASSWORD) -> None:
        token = self.csrf(base + "/login")
        landed = self.post(base + "/login", {"csrf_token": token, "email": email, "password": password})
        assert landed.status == 302, f"login failed: {landed.status}"
