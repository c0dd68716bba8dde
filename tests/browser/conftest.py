"""A real server (gunicorn on loopback, its own migrated SQLite database) and Debian's Chromium."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
ADMIN_EMAIL, ADMIN_PASSWORD = "ada.admin@example.org", "granite lantern orchard 58"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _live_database(folder: Path) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        return f"sqlite:///{folder / 'live.db'}"
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    live = base.set(database=f"{base.database}_live")
    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{live.database}"'))
        conn.execute(text(f'CREATE DATABASE "{live.database}"'))
    engine.dispose()
    return live.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory, app) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("live")
    env = {
        **os.environ,
        "FLASK_APP": "wsgi",
        "FLASK_APP_ENV": "test",
        "FLASK_SECRET_KEY": "browser-test-secret-" + "y" * 32,
        # its own database beside the suite's (the suite empties its tables after every test)
        "FLASK_SQLALCHEMY_DATABASE_URI": _live_database(folder),
        "FLASK_MAIL_OUTBOX_DIR": str(folder / "outbox"),
    }
    flask = [sys.executable, "-m", "flask"]
    for args in (["db", "upgrade"], ["skills", "load"], ["courses", "import", "courses/catalog"]):
        subprocess.run(flask + args, cwd=ROOT, env=env, check=True, capture_output=True)
    subprocess.run(
        [*flask, "users", "create-admin", ADMIN_EMAIL, "--name", "Ada Admin", "--password-stdin"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        input=ADMIN_PASSWORD + "\n",
        text=True,
    )
    port = _free_port()
    log = open(folder / "gunicorn.log", "w")  # noqa: SIM115 (closed below)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        server.kill()
        raise RuntimeError("gunicorn did not start: " + (folder / "gunicorn.log").read_text())
    yield base
    server.terminate()
    server.wait(timeout=10)
    log.close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install chromium (the test command installs it)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser):
    """new_page() → a fresh browser profile (its own cookies), phone-sized, JavaScript off by default."""
    contexts = []

    def make(*, width: int = 390, height: int = 844, javascript: bool = False):
        context = browser.new_context(viewport={"width": width, "height": height}, java_script_enabled=javascript)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def phone(new_page):
    """A phone-sized page with JavaScript switched off: every core task must work without it."""
    return new_page()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
