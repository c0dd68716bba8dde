"""A real server (gunicorn on loopback, its own migrated SQLite database) and Debian's Chromium."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests import forkserver
from tests.pgcluster import sibling_database

ROOT = Path(__file__).resolve().parents[2]
# each half of `make test` (SQLite, PostgreSQL) runs these tests at the same time: one folder per half, so
# neither overwrites the other's screenshots and axe reports (TEST_ARTIFACTS_DIR names another: bench/browser_cpu.py)
ARTIFACTS = (
    Path(os.environ["TEST_ARTIFACTS_DIR"])
    if os.environ.get("TEST_ARTIFACTS_DIR")
    else ROOT / "test-artifacts" / ("postgres" if os.environ.get("TEST_DATABASE_URL") else "sqlite")
)
ADMIN_EMAIL, ADMIN_PASSWORD = "ada.admin@example.org", "granite lantern orchard 58"
HEADLESS_SHELL = "/usr/bin/chromium-headless-shell"
# The browser: CHROMIUM_PATH when set (a browser of one's own, e.g. CI's Playwright download, whose full browser is
# swapped for the headless shell of the same revision when one sits beside it: _shell_beside); else Debian's
# chromium-headless-shell when installed (`make test` installs it): Chromium's old headless mode, the same Blink and
# V8 as the chromium package of the same version without the full browser's UI and GPU/compositor processes: less
# than half the CPU on this folder's pages (bench/browser_cpu.py); else Debian's full /usr/bin/chromium, which passes
# the same tests with the same reports.


def _shell_beside(path: str) -> str:
    """Playwright's own download puts a revision's headless shell beside its full browser
    (ms-playwright/chromium-<rev>/chrome-linux64/chrome and ms-playwright/chromium_headless_shell-<rev>/
    chrome-headless-shell-linux64/chrome-headless-shell; `playwright install chromium` fetches both, and Playwright
    itself launches the shell for headless runs). A CHROMIUM_PATH naming such a full browser gets the shell of the
    same revision when it is there, else the path as given."""
    full = Path(path)
    if (
        full.name == "chrome"
        and full.parent.name == "chrome-linux64"
        and full.parent.parent.name.startswith("chromium-")
    ):
        revision = full.parent.parent.name.removeprefix("chromium-")
        shell = full.parents[2] / f"chromium_headless_shell-{revision}" / "chrome-headless-shell-linux64"
        shell = shell / "chrome-headless-shell"
        if os.access(shell, os.X_OK):
            return str(shell)
    return path


CHROMIUM = (
    _shell_beside(os.environ["CHROMIUM_PATH"])
    if os.environ.get("CHROMIUM_PATH")
    else HEADLESS_SHELL
    if os.access(HEADLESS_SHELL, os.X_OK)
    else "/usr/bin/chromium"
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    # the GPU service (software compositing here: --disable-gpu) as a thread of the browser process, not a process
    # of its own that every frame crosses to, and one raster thread per renderer (the default is up to four):
    # Chromium's CPU on test_learner_journey 21.4 -> 17.5 s (in-process GPU alone), -> 14.7 with one raster
    # thread (bench/browser_cpu.py, two rounds each, axe reports equal)
    "--in-process-gpu",
    "--num-raster-threads=1",
]


# facts about the running live server that tests need besides its address (e.g. its mail outbox folder)
LIVE: dict[str, Path] = {}
_LIVE_APP: list = []  # an app in this process with the session live server's settings (run_setup's)


def arrange_progress(email: str, course_slug: str, *, steps_left: int = 1) -> None:
    """On the session live server's database, the learner ``email``, enrolled in the course, takes every step of
    it but the last ``steps_left`` (its lessons and quizzes in the course's order) through the app's own services,
    as the lesson and quiz views call them: each lesson completed, each quiz attempt started and submitted with
    every right answer (passed). The browser then takes the steps left itself, the completing one included.

    For tests whose subject is what comes after a course (its completion, the certificate, the employer's
    dashboard) and not the walk through its pages, which test_learner_journey and test_spanish_journey take in the
    browser: each walk cost ~15 s of CPU (Chromium, the server, Playwright) per database."""
    from sqlalchemy import select

    from accounts.models import User
    from core.database import utcnow
    from core.extensions import db
    from courses import services

    with _LIVE_APP[0].app_context():
        try:
            user = db.session.scalar(select(User).where(User.email == email))
            course = services.load_course(course_slug)
            enrollment = services.get_enrollment(user, course)
            assert enrollment is not None, f"{email} is not enrolled in {course_slug}"
            steps = services.course_steps(course)
            assert len(steps) > steps_left, steps
            for kind, module, lesson in steps[: len(steps) - steps_left]:
                if kind == "lesson":
                    assert not services.complete_lesson(enrollment, lesson, now=utcnow())
                else:
                    quiz = module.quiz
                    attempt = services.start_attempt(enrollment, quiz, now=utcnow())
                    right = {q.id: [c.id for c in q.choices if c.correct] for q in quiz.questions}
                    graded, finished = services.submit_attempt(enrollment, attempt, quiz, right, now=utcnow())
                    assert graded.passed and not finished
                db.session.commit()  # one request's worth at a time, as the views commit
        finally:
            db.session.remove()


def arrange_learner(email: str, name: str, password: str, *, enrolled_in: str | None = None) -> None:
    """On the session live server's database, an account made as registration makes it (the app's own
    register_user, a learner), enrolled in the course ``enrolled_in`` when given (the app's enroll): for tests whose
    subject comes after signing up and enrolling, which test_learner_journey, test_spanish_journey and test_moments
    walk in the browser (each saved ~5 page loads: the sign-up form and its answer, the course page and the enroll
    POST's redirect). The browser then logs in itself."""
    from accounts.services import register_user
    from core.database import utcnow
    from core.extensions import db
    from courses import services

    with _LIVE_APP[0].app_context():
        try:
            user = register_user(email=email, name=name, password=password, now=utcnow())
            if enrolled_in is not None:
                services.enroll(user, services.load_course(enrolled_in), now=utcnow())
            db.session.commit()
        finally:
            db.session.remove()


def live_mail(to: str) -> list[str]:
    """Bodies of the mails the live server sent to ``to``, oldest first (its outbox is a folder of .eml files)."""
    from email import message_from_bytes

    folder = LIVE["outbox"]
    files = sorted(folder.glob("*.eml"), key=lambda f: f.stat().st_mtime_ns) if folder.exists() else []
    messages = [message_from_bytes(f.read_bytes()) for f in files]

    def text(message) -> str:  # the plain-text part (messages carry an HTML alternative too)
        part = next((p for p in message.walk() if p.get_content_type() == "text/plain"), message)
        return part.get_payload(decode=True).decode()

    return [text(m) for m in messages if m["To"] == to]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# the app of wsgi.py with test-sized argon2 (see that module for why)
LIVE_APP = "tests.browser.live_wsgi:app"
# --no-control-socket: gunicorn 27's control socket is an asyncio thread in the master (workers forked after it
# starts, such as a replacement worker, fork a threaded process), and every gunicorn binds the same
# ~/.gunicorn/gunicorn.ctl, both halves' servers included. --timeout 120: at load 17 a worker's first POST (which
# imports the job queue's modules) ran past the default 30 s and was killed mid-request (as tests/servers allows).
GUNICORN_OPTIONS = ("--no-control-socket", "--timeout", "120")


def live_forkserver() -> forkserver.ForkServer:
    """This run's fork server (tests/forkserver.py), from which the live servers here are forked: the app's modules
    are imported once in it, not again in each gunicorn (~1.2-2.3 s of CPU per server; a fork server child builds
    its app from its own environment in ~0.1 s and ends with the collector frozen, as tests/quick_exit.py does).
    WeasyPrint is loaded in it too (the certificate PDFs these servers render), and boto3: `make test` runs
    tests/servers in the same pytest process, which shares this server and needs both (tests/servers/conftest.py)."""
    return forkserver.shared(("weasyprint", "boto3"))


def _live_database(folder: Path) -> str:
    return sibling_database(folder, "live")


LIVE_SETUP = (
    ["db", "upgrade"],
    ["skills", "load"],
    ["courses", "import", "courses/catalog"],
    ["users", "create-admin", ADMIN_EMAIL, "--name", "Ada Admin", "--password-stdin"],
)


def _app_of(env: dict[str, str]):
    """An app in this process with a live server's FLASK_* settings, read as Flask's from_prefixed_env reads them."""
    from core import create_app

    settings = {}
    for key, value in env.items():
        if key.startswith("FLASK_") and key != "FLASK_APP":
            try:
                settings[key.removeprefix("FLASK_")] = json.loads(value)
            except ValueError:
                settings[key.removeprefix("FLASK_")] = value
    return create_app(settings)


def run_setup(env: dict[str, str], commands, password: str = ADMIN_PASSWORD):
    """Run `flask` commands for a live server in this process, on an app built from the server's own FLASK_*
    settings: the same commands as `FLASK_APP=… flask …` in a shell, without a new interpreter importing the app
    again for them (~3 s of CPU per server; this process has the app's modules loaded already). The password of
    a create-admin is its standard input. Passwords are hashed with the suite's test-sized argon2, as by the
    servers themselves (live_wsgi.py). Returns that app (no connection open), for a test's later work on the
    server's database in this process (arrange_progress; building another costs ~0.4 s of CPU)."""
    from click.testing import CliRunner
    from flask.cli import FlaskGroup

    from core.extensions import db

    app = _app_of(env)
    # the commands that `flask` itself offers (Flask-Migrate's `db` comes from an entry point, not app.cli)
    cli = FlaskGroup(create_app=lambda: app, load_dotenv=False, set_debug_flag=False)
    try:
        for args in commands:
            result = CliRunner().invoke(cli, list(args), input=password + "\n", prog_name="flask")
            if result.exit_code:
                raise RuntimeError(f"live server setup `flask {' '.join(args)}` failed:\n{result.output}") from (
                    result.exception
                )
    finally:
        with app.app_context():  # no connection may stay open to the server's database
            db.session.remove()
            db.engine.dispose()
    return app


@pytest.fixture(autouse=True)
def _clean() -> None:
    """These tests use the live servers' own databases, never the suite's: neither the suite's per-test cleanup nor
    the suite's migrated database (its `app` fixture, which that cleanup would build) is needed here."""


@pytest.fixture(scope="session")
def live_server(tmp_path_factory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("live")
    LIVE["outbox"] = folder / "outbox"
    env = {
        **os.environ,
        "FLASK_APP": LIVE_APP,
        "FLASK_APP_ENV": "test",
        "FLASK_SECRET_KEY": "browser-test-secret-" + "y" * 32,
        # its own database beside the suite's (the suite empties its tables after every test)
        "FLASK_SQLALCHEMY_DATABASE_URI": _live_database(folder),
        "FLASK_MAIL_OUTBOX_DIR": str(folder / "outbox"),
        # PDFs and lesson images it stores stay in the temp folder, never in the checkout's instance/
        "FLASK_CERTIFICATE_DIR": str(folder / "certificates"),
        "FLASK_UPLOAD_DIR": str(folder / "uploads"),
    }
    _LIVE_APP[:] = [run_setup(env, LIVE_SETUP)]  # arrange_progress works through it
    port = _free_port()
    log = open(folder / "gunicorn.log", "w")  # noqa: SIM115 (closed below)
    server = live_forkserver().spawn(
        [
            "gunicorn",
            *GUNICORN_OPTIONS,
            "--preload",
            # one process with threads (production's worker class): the app's per-process warm-up (templates
            # compiled, statement and content caches filled) happens once, not once in each of two workers,
            # and the browser's parallel requests for a page's stylesheets and images still run side by side
            "--workers",
            "1",
            "--worker-class",
            "gthread",
            "--threads",
            "4",
            "--bind",
            f"127.0.0.1:{port}",
            LIVE_APP,
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
    )
    base = f"http://127.0.0.1:{port}"
    # with --preload gunicorn binds the port only after its master imported the app: tens of seconds at high load
    deadline = time.monotonic() + 180
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                server.wait()
                log.close()
                raise RuntimeError("gunicorn did not start: " + (folder / "gunicorn.log").read_text()) from None
            time.sleep(0.1)
    try:
        yield base
    finally:
        if _LIVE_APP:  # no connection of this process may stay open to the server's database
            with _LIVE_APP[0].app_context():
                from core.extensions import db

                db.engine.dispose()
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:  # on a loaded machine a worker may outlast the graceful stop
            server.kill()
            server.wait(timeout=10)
        log.close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), (
        f"{CHROMIUM} is missing: apt-get install chromium-headless-shell chromium (the test command installs them)"
    )
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
        return _settled(context.new_page())

    yield make
    for context in contexts:
        context.close()


def _settled(page):
    """page.content() waits for the page to have loaded. Right after a click that posts a form, the document can be
    read between the POST's redirect and the next page: content() then returns '' (seen twice in fresh-clone runs,
    in test_authoring and test_org_journey). Locators wait by themselves; content() does not."""
    original = page.content

    def content() -> str:
        page.wait_for_load_state()
        html = original()
        for _ in range(100):  # at most ~5 s
            if html:
                return html
            page.wait_for_timeout(50)
            page.wait_for_load_state()
            html = original()
        return html

    page.content = content
    return page


@pytest.fixture
def phone(new_page):
    """A phone-sized page with JavaScript switched off: every core task must work without it."""
    return new_page()


def correct_answers(course: str) -> dict[str, set[str]]:
    """{question prompt: texts of its correct choices}, read from the shipped course files."""
    import yaml

    from courses.catalog import CATALOG_DIR

    answers = {}
    for quiz in (CATALOG_DIR / course).glob("*/quiz.yaml"):
        for q in yaml.safe_load(quiz.read_text(encoding="utf-8"))["questions"]:
            answers[" ".join(q["prompt"].split())] = {
                " ".join(c["text"].split()) for c in q["choices"] if c.get("correct")
            }
    return answers


# Screenshots are for people to look at (COMMON.md: look at the PNG of every page you change); no test reads them,
# and a full-page PNG of each of ~100 pages per half cost Chromium more CPU than the axe audits. So they are taken
# only when asked for: TEST_SCREENSHOTS=1 .venv/bin/pytest tests/browser/test_foo.py
SCREENSHOTS = os.environ.get("TEST_SCREENSHOTS", "") not in ("", "0")


def shot(page, name: str) -> None:
    """A full-page PNG in test-artifacts/<sqlite|postgres>/, when TEST_SCREENSHOTS is set."""
    if SCREENSHOTS:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


AXE_JS = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = {"serious", "critical"}


_STYLED = """() => [document.title, document.styleSheets.length,
  [...document.styleSheets].map(sheet => sheet.cssRules.length),
  ['body', 'main', 'h1', 'a', 'button'].map(tag => {
    const e = document.querySelector(tag);
    return e && [getComputedStyle(e).color, getComputedStyle(e).backgroundColor, getComputedStyle(e).fontSize];
  })]"""


# The audit copy of a later page of the same origin replaces the audit document in place (history.replaceState to
# its URL, then document.open/write/close of its HTML) instead of navigating to it: the window stays, and with it
# axe-core, already evaluated and warmed up by the pages before (a fresh document evaluated 650 kB of axe again and
# ran its first audit ~2x slower: ~1/3 of the browser's CPU per audit, bench/browser_cpu.py). The page is parsed
# from the same HTML at the same URL and loads the same stylesheets and images (its load event is awaited); check()
# still compares its styles with the test page's.
_REPLACE = """([url, html]) => new Promise(resolve => {
  history.replaceState(null, '', url);
  document.open();
  addEventListener('load', () => { scrollTo(0, 0); resolve(); }, {once: true});
  document.write(html);
  document.close();
})"""

_AXE_RUN = "only => axe.run(document, {runOnly: only, resultTypes: ['violations']}).then(r => r.violations)"

# [the innermost elements sticking out past the right edge of the window, outside any scroll box; whether any element
# scrolls]. The second half is the precondition of axe's scrollable-region-focusable (its matcher starts with axe's
# getScroll(element, 13): content overflowing by more than 13 px on an axis whose overflow is auto or scroll, on any
# element but select and textarea): where nothing scrolls the rule applies to no element and cannot report one, so
# its second run at 320 px is skipped only then.
_TOO_WIDE = """() => {
  const scrollable = [...document.querySelectorAll('*:not(select, textarea)')].some(e => {
    const style = getComputedStyle(e), can = v => v === 'auto' || v === 'scroll';
    return (e.scrollWidth > e.clientWidth + 13 && can(style.overflowX))
      || (e.scrollHeight > e.clientHeight + 13 && can(style.overflowY));
  });
  return [tooWide(), scrollable];
  function tooWide() {
  if (document.documentElement.scrollWidth <= innerWidth) return [];
  const scrolls = e => { for (let p = e.parentElement; p && p !== document.body; p = p.parentElement) {
    if (['auto', 'scroll'].includes(getComputedStyle(p).overflowX)) return true; } return false; };
  const wide = [...document.body.querySelectorAll('*')].filter(e => e.getBoundingClientRect().right > innerWidth + 1
    && !scrolls(e));
  return wide.filter(e => !wide.some(o => o !== e && e.contains(o))).slice(0, 10).map(e =>
    e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className ? '.' + [...e.classList].join('.') : '')
    + ' “' + (e.innerText || e.value || '').trim().slice(0, 40) + '”'
    + ' right=' + Math.round(e.getBoundingClientRect().right));
  }
}"""


class AuditWindow:
    """The one JavaScript-enabled window (its own browser context) in which every test's pages are audited.

    One for the whole session: axe-core is evaluated and warmed up once per origin, not once per test (each test's
    first audit in a window of its own evaluated 650 kB of axe again, ran its first audit ~2x slower and started
    a renderer process). Each check() sets the window's cookies and viewport to those of the page it audits, and
    the page's HTML is served or written from that check's own snapshot, so nothing of an earlier test's pages is
    read. A check that fails closes the window: the next one starts in a new window, as the first check does.
    """

    def __init__(self, browser):
        self.browser = browser
        self.snapshots: dict[str, str] = {}  # url → the HTML the test page showed there (the current test's)
        self.context = None
        self.page = None
        self.origin = None  # of the audit page's document

    def open(self):
        if self.page is None:
            self.context = self.browser.new_context(java_script_enabled=True)
            # axe-core is evaluated in each new document before the page's HTML (the site has no scripts or
            # <noscript> of its own, so turning JavaScript on changes nothing else): one transfer, no network,
            # and ~0.2 s a page faster than add_script_tag, which would resend and recompile 650 kB each time
            self.context.add_init_script(path=AXE_JS)

            def serve_snapshot(route):
                url = route.request.url.split("#", 1)[0]
                if route.request.is_navigation_request() and url in self.snapshots:
                    route.fulfill(status=200, content_type="text/html; charset=utf-8", body=self.snapshots[url])
                else:
                    route.continue_()

            self.context.route("**/*", serve_snapshot)
            self.page = self.context.new_page()
        return self.page

    def close(self) -> None:
        if self.context is not None:
            self.context.close()
        self.context = self.page = self.origin = None
        self.snapshots.clear()


class Accessibility:
    """Runs the vendored axe-core over pages exactly as a (JavaScript-off) test page shows them.

    check(page, name) saves a screenshot (only with TEST_SCREENSHOTS=1), then, in a separate JavaScript-enabled
    context given the page's cookies and viewport (the session's AuditWindow), serves the page's own HTML at the
    page's URL (so a page reached by a POST, or one showing a flash message that a reload would drop, is audited as
    the learner saw it; stylesheets and images still come from the live server; the first page of an origin by
    navigating to it, later pages of the same origin by writing their HTML into the same window, see _REPLACE),
    lets the vendored axe-core load from disk into it (no network) and runs the WCAG 2.0/2.1 A and AA rules. Then,
    at 320 CSS px, it checks reflow (WCAG 1.4.10, which axe does not test) and that any box that now scrolls can be
    reached by keyboard (axe's scrollable-region-focusable again, run only when some box scrolls: the rule applies
    to nothing else). assert_clean() fails with every serious or critical violation of every checked page, no rule
    excluded; every violation, minor ones included, is written to test-artifacts/<sqlite|postgres>/axe-<test>.json.
    """

    def __init__(self, window: AuditWindow, report_name: str):
        self.window = window
        self.report = ARTIFACTS / f"axe-{report_name}.json"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)  # screenshots are optional now: they no longer make it
        self.results: dict[str, list[dict]] = {}
        self.snapshots = window.snapshots

    def new_window(self) -> None:
        """The next check opens a new audit window and navigates to its page, as the session's first check does."""
        self.window.close()

    def check(self, page, name: str) -> None:
        shot(page, name)  # only with TEST_SCREENSHOTS=1
        url = page.url.split("#", 1)[0]
        self.snapshots[url] = page.content()
        assert "<noscript" not in self.snapshots[url], f"{name}: <noscript> would differ in the JS-enabled audit copy"
        try:
            self._audit(page, name, url)
        except BaseException:
            self.window.close()  # the next check starts in a new window, whatever state this one was left in
            raise

    def _audit(self, page, name: str, url: str) -> None:
        window = self.window
        audit = window.open()
        window.context.clear_cookies()
        window.context.add_cookies(page.context.cookies())
        audit.set_viewport_size(page.viewport_size)
        origin = urlsplit(url)[:2]
        if origin == window.origin:
            audit.evaluate(_REPLACE, [url, self.snapshots[url]])
        else:  # the first page, or another origin (replaceState cannot leave the document's origin)
            audit.goto(url)
            window.origin = origin
        # the same document with the same styles applied, or contrast would be judged on unstyled HTML
        shown, audited = page.evaluate(_STYLED), audit.evaluate(_STYLED)
        assert shown == audited, f"{name}: the audited copy differs from the page: {shown} ≠ {audited}"
        violations = audit.evaluate(_AXE_RUN, {"type": "tag", "values": WCAG_TAGS})
        # WCAG 1.4.10 Reflow, which axe does not test: at 320 CSS px nothing may need sideways scrolling
        # (wide tables and code sit in their own scroll boxes, which the rule allows, and which must then
        # be reachable by keyboard: axe's scrollable-region-focusable, run again now that they scroll)
        audit.set_viewport_size({"width": 320, "height": 640})
        too_wide, scrollable = audit.evaluate(_TOO_WIDE)
        if scrollable:
            violations += audit.evaluate(_AXE_RUN, {"type": "rule", "values": ["scrollable-region-focusable"]})
        found: dict[str, dict] = {}  # by rule: the second run may repeat a node the first one found
        for v in violations:
            rule = found.setdefault(
                v["id"], {"id": v["id"], "impact": v["impact"], "help": v["help"], "helpUrl": v["helpUrl"], "nodes": []}
            )
            for n in v["nodes"]:
                if all(n["target"] != seen["target"] for seen in rule["nodes"]):
                    rule["nodes"].append({"target": n["target"], "summary": n.get("failureSummary", "")})
        self.results[name] = list(found.values())
        if too_wide:
            self.results[name].append(
                {
                    "id": "reflow-320 (this suite's own check, not axe)",
                    "impact": "serious",
                    "help": "Content must reflow at 320 CSS px without horizontal scrolling (WCAG 1.4.10)",
                    "helpUrl": "https://www.w3.org/WAI/WCAG21/Understanding/reflow.html",
                    "nodes": [{"target": [t], "summary": "wider than the viewport"} for t in too_wide],
                }
            )
        self.report.write_text(json.dumps(self.results, indent=2), encoding="utf-8")

    def assert_clean(self) -> None:
        assert self.results, "no page was checked"
        lines = []
        for name, violations in self.results.items():
            for v in violations:
                if v["impact"] in BLOCKING:
                    targets = "; ".join(" ".join(n["target"]) for n in v["nodes"][:8])
                    more = f" (+{len(v['nodes']) - 8} more)" if len(v["nodes"]) > 8 else ""
                    lines.append(f"{name}: [{v['impact']}] {v['id']}: {v['help']} → {targets}{more}")
        assert not lines, "axe found serious/critical WCAG violations:\n" + "\n".join(lines)


@pytest.fixture(scope="session")
def audit_window(browser) -> Iterator[AuditWindow]:
    window = AuditWindow(browser)
    yield window
    window.close()


@pytest.fixture
def a11y(audit_window, request) -> Iterator[Accessibility]:
    """a11y.check(page, "name") audits a page (and screenshots it with TEST_SCREENSHOTS=1); end the test with
    a11y.assert_clean()."""
    yield Accessibility(audit_window, request.node.name.removeprefix("test_"))
    audit_window.snapshots.clear()  # the next test's pages are its own
