"""Fixtures: one migrated database per session (SQLite temp file, or TEST_DATABASE_URL), emptied after each test."""

from __future__ import annotations

import contextvars
import gc
import os
import re
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from core import create_app
from core.extensions import db, limiter

CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


# the W3C test vector's key pair, so signed test credentials are reproducible
TEST_SIGNING_KEYS = {
    "active": "key-1",
    "keys": [
        {
            "id": "key-1",
            "created": "2026-01-01T00:00:00Z",
            "publicKeyMultibase": "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2",
            "privateKeyMultibase": "z3u2en7t5LR2WtQH5PfFqMqwVHBeXouLzo6haApm8XHqvjxq",
        }
    ],
}


def test_config(tmp_path_factory, database_url: str) -> dict:
    return {
        "SIGNING_KEYS": TEST_SIGNING_KEYS,
        "APP_ENV": "test",
        "SECRET_KEY": "test-secret-key-" + "x" * 32,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "MAIL_OUTBOX_DIR": str(tmp_path_factory.mktemp("outbox")),
        # never instance/: a test that does not choose its own folder writes PDFs and uploads here, and the
        # per-test cleanup empties these folders (and puts them back if a test changed the setting)
        "CERTIFICATE_DIR": str(tmp_path_factory.mktemp("certificates")),
        "UPLOAD_DIR": str(tmp_path_factory.mktemp("uploads")),
        "VERIFY_COUNT_BATCH": 1,  # write every verification count at once
        "PRERENDER_PDF": False,  # jobs run in-process in tests; PDFs are rendered where a test asks for one
        "DID_FETCH_ALLOW_LOOPBACK": True,  # other issuers' did:web documents are served on loopback in tests
    }


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--live-servers-last",
        action="store_true",
        help="run tests/browser and tests/servers after every other test",
    )
    parser.addoption(
        "--part",
        default=None,
        metavar="K/N",
        help="run only part K of N (0-based) of the selected test files, the files dealt out by their measured cost "
        "(tests/part_weights.tsv) so the parts take about as long (`make test` runs the tests outside tests/browser "
        "and tests/servers as two parts per database)",
    )


def pytest_itemcollected(item: pytest.Item) -> None:
    """tests/browser/ and tests/servers/ carry their folder's marker, so `-m "not browser"` skips them (added here,
    before `-m` deselects)."""
    folder = item.path.parent.name
    if folder in ("browser", "servers") and item.path.parent.parent.name == "tests":
        item.add_marker(getattr(pytest.mark, folder))


# after `-m` and `-k` deselected (trylast): --part deals out only the files this run selected, so the parts of one
# database, started with the same selection, compute the same split
@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With --live-servers-last, tests/browser and tests/servers run after the rest, in their own order. Why that
    was asked of one half when `make test` ran two: these folders keep both cores busy on their own (Chromium's
    processes, gunicorn workers and pytest at once), the rest of a half is one process at a time; run first in both
    halves, the halves crowded into the same 2 cores together and then each went on alone on one core.

    With --part K/N only the files of part K run (part_of says how they are dealt out).
    """
    live = [item for item in items if item.get_closest_marker("browser") or item.get_closest_marker("servers")]
    if config.getoption("--live-servers-last") and live:
        chosen = set(live)
        items[:] = [item for item in items if item not in chosen] + live
    deal = _known_files_deal(config)
    if deal is not None:
        k, n, parts, weights = deal
        root = config.rootpath
        paths = {item: item.path.relative_to(root).as_posix() for item in items}
        # files the table does not know (new ones) were collected by every part: dealt here, after the known ones
        loads = [sum(weights[f] for f, part in parts.items() if part == i) for i in range(n)]
        parts = {**parts, **part_of(sorted(set(paths.values()) - set(parts)), n, weights, loads=loads)}
        kept = [item for item in items if parts[paths[item]] == k]
        config.hook.pytest_deselected(items=[item for item in items if parts[paths[item]] != k])
        items[:] = kept


def pytest_ignore_collect(collection_path, config: pytest.Config) -> bool | None:
    """With --part K/N, a test file the table deals to another part is not collected at all: collecting (importing)
    every file of the suite to deselect half of them cost each non-live part a few CPU seconds."""
    deal = _known_files_deal(config)
    if deal is None or collection_path.suffix != ".py":
        return None
    try:
        path = collection_path.relative_to(config.rootpath).as_posix()
    except ValueError:
        return None
    part = deal[2].get(path)
    return True if part is not None and part != deal[0] else None


_DEALS: dict[int, tuple | None] = {}


def _known_files_deal(config: pytest.Config) -> tuple | None:
    """(K, N, {file: part}, weights) for --part K/N: the test files that tests/part_weights.tsv knows for this run's
    database, that exist and lie under the paths this run collects, dealt out before collection (part_of); None
    without --part. Every part of one database computes the same deal from the same table and files."""
    if id(config) not in _DEALS:
        part = config.getoption("--part")
        if not part:
            _DEALS[id(config)] = None
        else:
            k, n = (int(x) for x in part.split("/"))
            root = config.rootpath
            scopes = []
            for arg in config.args or ["."]:
                try:
                    scopes.append(Path(config.invocation_params.dir, arg.split("::")[0]).resolve().relative_to(root))
                except ValueError:
                    continue
            scoped = {scope.as_posix() for scope in scopes}
            weights = part_weights()
            known = [
                f
                for f in sorted(weights)
                if (root / f).is_file() and ("." in scoped or any(f == s or f.startswith(s + "/") for s in scoped))
            ]
            _DEALS[id(config)] = (k, n, part_of(known, n, weights), weights)
    return _DEALS[id(config)]


# The garbage collector in the pytest process. After collection the process holds ~400,000 objects (the app,
# SQLAlchemy, Hypothesis, the test modules) and a part ends with ~1,000,000; every full collection walked them all
# (~0.3 s each on this machine) and the young ones ran every 700 allocations: ~6 % of a non-live part's CPU. What
# is alive after collection, and after each test module (its garbage collected first), is frozen (gc.freeze: kept
# out of every later collection; freed by reference counting as before), and the youngest generation is collected
# every 10,000 allocations. GC CPU of seven part-0 files 5.0 -> 2.4 s (tests/cpuprofile.py: 77.2 -> 72.3 s in all).
GC_YOUNG_THRESHOLD = 10_000


def pytest_collection_finish(session: pytest.Session) -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None):
    try:
        return (yield)
    finally:
        if nextitem is None or nextitem.path != item.path:  # the module's fixtures are gone: its garbage too
            gc.collect()
            gc.freeze()


PART_WEIGHTS = os.path.join(os.path.dirname(__file__), "part_weights.tsv")


def part_weights() -> dict[str, float]:
    """{test file: CPU seconds it costs} on this run's database, from tests/part_weights.tsv (columns: file,
    SQLite, PostgreSQL; see that file's header for how it is measured and refreshed)."""
    column = 2 if os.environ.get("TEST_DATABASE_URL") else 1
    weights = {}
    with open(PART_WEIGHTS, encoding="utf-8") as table:
        for line in table:
            fields = line.rstrip("\n").split("\t")
            if line.startswith("#") or len(fields) < 3 or not fields[column]:
                continue
            weights[fields[0]] = float(fields[column])
    return weights


def part_of(files: list[str], n: int, weights: dict[str, float], *, loads: list[float] | None = None) -> dict[str, int]:
    """{file: part} for N parts of about equal cost: the costliest file first, each to the part with the least cost
    so far (ties: the lower part). By file, so a module's fixtures are built in one process only. A file the table
    does not know yet (a new one) counts as a file of median cost. Deterministic: the same files and table give the
    same split in every process; a hash of the path (the split before) left the parts of one database up to
    ~1.5 min apart, with a core idle at the end of `make test`."""
    known = sorted(weights.values())
    default = known[len(known) // 2] if known else 1.0
    loads = list(loads) if loads else [0.0] * n  # the parts' costs so far (files dealt before these)
    parts = {}
    for path in sorted(files, key=lambda p: (-weights.get(p, default), p)):
        k = min(range(n), key=lambda i: (loads[i], i))
        parts[path] = k
        loads[k] += weights.get(path, default)
    return parts


@pytest.fixture(scope="session", autouse=True)
def _compiled_catalogs() -> None:
    """Compile translations/*/messages.po that changed since their .mo (make does the same; this covers a plain
    `pytest` after a rebase brought new translations)."""
    from core.catalogs import compile_catalogs

    compile_catalogs(only_stale=True)


@pytest.fixture(scope="session", autouse=True)
def _test_sized_argon2() -> Iterator[None]:
    """argon2id with test-sized cost (1 pass over 1 MiB): a login costs ~5 ms instead of ~0.7 s on this machine.

    Still the real hasher, so hashes, verification, rehash-on-login and the dummy hash for unknown emails all
    run as in production, with production's parameters replaced by smaller ones. Servers started as
    subprocesses (tests/browser, tests/servers) keep the production parameters.
    """
    from argon2 import PasswordHasher

    from accounts import passwords

    saved = vars(passwords).copy()
    passwords.hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    if hasattr(passwords, "_DUMMY_HASH"):  # verified against when the email is unknown: same cost as a real one
        passwords._DUMMY_HASH = passwords.hasher.hash("a dummy password to spend the same time on unknown emails")
    yield
    passwords.hasher = saved["hasher"]
    if "_DUMMY_HASH" in saved:
        passwords._DUMMY_HASH = saved["_DUMMY_HASH"]


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> Iterator[str]:
    if os.environ.get("TEST_DATABASE_URL"):
        yield os.environ["TEST_DATABASE_URL"]
        return
    # In memory-backed /dev/shm when there is one: the SQLite counterpart of the PostgreSQL cluster's fsync=off
    # (tests/pgcluster.py). On disk every commit waits for an fsync (~30 ms on this machine), and the factories
    # and the per-test cleanup commit thousands of times.
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK):
        folder = tempfile.mkdtemp(prefix="awa-test-db-", dir=shm)
        yield "sqlite:///" + os.path.join(folder, "test.db")
        shutil.rmtree(folder, ignore_errors=True)
    else:
        yield "sqlite:///" + str(tmp_path_factory.mktemp("db") / "test.db")


@pytest.fixture(scope="session")
def app(tmp_path_factory, database_url) -> Iterator[Flask]:
    config = test_config(tmp_path_factory, database_url)
    # The suite's own database never restarts under this app, so no pre-ping: on PostgreSQL it was one extra
    # round trip to the server for every connection checkout (every request and commit), ~7 % of the
    # PostgreSQL half's CPU. Apps a test builds from test_config() keep production's engine options
    # (test_faults checks that pre-ping replaces the connections a database restart killed).
    config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_timeout": 10, "connect_args": {"connect_timeout": 5}}
    app = create_app(config)
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            # a reused TEST_DATABASE_URL may hold an older schema
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        else:
            downgrade(revision="base")
        upgrade()
    yield app
    with app.app_context():
        db.engine.dispose()


def _empty_database(app: Flask) -> None:
    with app.app_context():
        db.session.remove()
        if db.engine.dialect.name == "sqlite":
            _empty_sqlite(db.engine)
            return
        with db.engine.begin() as conn:
            _empty_tables(conn)


def _empty_sqlite(engine) -> None:
    """SQLite's counterpart of the PostgreSQL cleanup below: every DELETE in one script, one transaction, with
    foreign-key checks off for it (every table is emptied, so nothing can be left dangling). With the checks on,
    each deleted parent row searched its child tables: ~10 of ~11 ms of CPU per cleanup after a one-certificate
    test, against ~3.5 ms this way."""
    raw = engine.raw_connection()
    try:
        sqlite = raw.driver_connection
        sqlite.execute("PRAGMA foreign_keys = OFF")  # outside a transaction (inside one, SQLite ignores it)
        try:
            sqlite.executescript("BEGIN;" + ";".join(_delete_statements()) + ";COMMIT;")
        finally:
            if sqlite.in_transaction:  # the script stopped half way: undo it, or the pragma below is ignored
                sqlite.rollback()
            sqlite.execute("PRAGMA foreign_keys = ON")  # as core/database.py sets it on every connection
    finally:
        raw.close()


def _empty_tables(conn) -> None:
    """Delete every row, children before parents, in as few round trips as the driver allows.

    PostgreSQL takes all the DELETEs as one query string (one round trip instead of ~50, which was most of
    this cleanup's cost there), with triggers off for the transaction (session_replication_role = replica, as
    Snapshot.restore does; the suite's throwaway cluster runs as its superuser): every table is emptied, so
    the foreign-key checks per deleted row and the insights triggers' day changes only cost server CPU (~11 of
    ~13 ms per cleanup of a one-certificate world). SQLite's driver runs one statement per call, so they go
    one by one, but as plain SQL strings compiled once per session instead of SQLAlchemy constructs compiled
    for every test.
    """
    statements = _delete_statements()
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica;" + ";".join(statements))
    else:
        for statement in statements:
            conn.exec_driver_sql(statement)


_DELETES: list[str] = []


def _delete_statements() -> list[str]:
    if not _DELETES:
        # names from our own models, not input
        _DELETES.extend(f'DELETE FROM "{t.name}"' for t in reversed(db.metadata.sorted_tables))  # noqa: S608
        # PostgreSQL's insights triggers append day changes while the rows above go (migration 0030b): empty them last
        changes = ("insights_enrollment_day_changes", "insights_certificate_day_changes")
        _DELETES.extend(f'DELETE FROM "{t}"' for t in changes)  # noqa: S608
    return _DELETES


_COUNT_ALL: list[str] = []


def database_is_empty() -> bool:
    """True when every table the per-test cleanup empties is empty and the session holds no changes (as every test
    starts): one statement, ~1 ms. False whenever this cannot be told from outside the session (it is inside a
    transaction, which may hold rows flushed but not committed)."""
    session = db.session()
    if session.in_transaction() or session.new or session.dirty or session.deleted:
        return False
    if not _COUNT_ALL:
        tables = [statement.removeprefix("DELETE FROM ") for statement in _delete_statements()]
        _COUNT_ALL.append("SELECT " + " + ".join(f"(SELECT count(*) FROM {t})" for t in tables))  # noqa: S608
    with db.engine.connect() as conn:
        return conn.exec_driver_sql(_COUNT_ALL[0]).scalar() == 0


class Snapshot:
    """The whole database at one moment, copied out once, to copy back before a later test: milliseconds, where
    building the same rows through the factories and services costs up to seconds.

    Copies below the ORM, so every value comes back byte for byte and no trigger runs twice (the insights
    rollup tables are kept by triggers on enrollments and certificates; a trigger firing again on restored rows
    would count them twice):
    - SQLite: the backup API, page by page into memory and back (schema, rows and sequence state alike);
    - PostgreSQL: each table through COPY (text format), written back with triggers and foreign-key checks off
      (session_replication_role = replica: the suite's throwaway cluster runs as its superuser), and every
      sequence's position (nextval() is never rolled back, so it is read, not derived from the rows).
    """

    def __init__(self, app: Flask) -> None:
        self.app = app
        with app.app_context():
            if db.engine.dialect.name == "postgresql":
                self.copy = None
                with db.engine.connect() as conn:
                    cursor = conn.connection.driver_connection.cursor()
                    tables = [t.name for t in db.metadata.sorted_tables]
                    self.tables = [(name, data) for name in tables if (data := _copy_out(cursor, name))]
                    self.sequences = conn.exec_driver_sql(
                        "SELECT schemaname, sequencename, last_value FROM pg_sequences WHERE last_value IS NOT NULL"
                    ).all()
            else:
                self.copy = sqlite3.connect(":memory:")
                raw = db.engine.raw_connection()
                try:
                    raw.driver_connection.backup(self.copy)
                finally:
                    raw.close()

    def restore(self) -> None:
        """Put the database back as it was when the snapshot was taken (whatever it holds now)."""
        with self.app.app_context():
            db.session.remove()
            if self.copy is not None:
                raw = db.engine.raw_connection()
                try:
                    self.copy.backup(raw.driver_connection)
                finally:
                    raw.close()
                return
            with db.engine.begin() as conn:
                conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
                conn.exec_driver_sql(";".join(_delete_statements()))
                cursor = conn.connection.driver_connection.cursor()
                for name, data in self.tables:
                    with cursor.copy(f'COPY "{name}" FROM STDIN') as copy:
                        copy.write(data)
                if self.sequences:
                    setvals = ", ".join(
                        f'setval(\'"{schema}"."{name}"\', {int(value)})' for schema, name, value in self.sequences
                    )
                    conn.exec_driver_sql(f"SELECT {setvals}")


def _copy_out(cursor, table: str) -> bytes:
    with cursor.copy(f'COPY "{table}" TO STDOUT') as copy:
        return b"".join(bytes(chunk) for chunk in copy)


# a snapshot is reused this long at most: rows built into it may carry time-limited tokens (a password reset
# link lives an hour), and a test must find them as fresh as if it had just built them
SNAPSHOT_MAX_AGE = 600


@pytest.fixture(scope="module")
def _module_snapshots() -> dict:
    return {}


@pytest.fixture(scope="session")
def _session_snapshots() -> dict:
    return {}


@pytest.fixture
def prebuilt(app: Flask, _module_snapshots: dict, _session_snapshots: dict, _clean):
    """prebuilt(build) → build()'s return value, with the rows build() wrote, built once per test module.

    The first test in a module that asks runs ``build()`` on the empty database and keeps a Snapshot of every
    row; each later test gets the same rows copied back (the per-test cleanup still empties the database after
    every test, so a test that changes them changes only its own copy). ``build`` must return plain data (ids,
    slugs, tokens), never ORM objects, since later tests get the value without a session that loaded it. Key:
    ``build``'s qualified name, or ``key=``. ``shared=True`` keeps the snapshot for the whole session, for
    tests in any module (for builds that depend on nothing but the repository's files, e.g. shipped_framework).
    """

    def get(build, *, key: str | None = None, shared: bool = False):
        key = key or f"{build.__module__}.{build.__qualname__}"
        snapshots = _session_snapshots if shared else _module_snapshots
        kept = snapshots.get(key)
        if kept is not None and time.monotonic() - kept[2] < SNAPSHOT_MAX_AGE:
            snapshot, value, _ = kept
            snapshot.restore()
            return value
        value = build()
        db.session.commit()
        snapshots[key] = (Snapshot(app), value, time.monotonic())
        return value

    return get


def _load_shipped_framework() -> None:
    from core.database import utcnow
    from skills.services import load_framework_file

    load_framework_file(now=utcnow())


@pytest.fixture
def shipped_framework(prebuilt, ctx) -> None:
    """The shipped skills framework (skills/framework.yaml) loaded, as `flask skills load` does: loaded once per
    session and copied back for each test that asks (~0.1 s of CPU on SQLite, ~0.3 s on PostgreSQL, saved each time).
    The database must be empty when it is requested (ask for it before any fixture that writes rows)."""
    prebuilt(_load_shipped_framework, key="shipped_framework", shared=True)


@pytest.fixture
def prebuilt_certificate(prebuilt, ctx):
    """prebuilt_certificate(email=..., name=..., title=...) → the Certificate of tests.factories.certificate_world,
    built once per module and copied back for each test (~0.25 s of CPU saved per test on SQLite, more on
    PostgreSQL). Rows only: the certificate email the first build sent is not in a later test's outbox."""

    def get(**kwargs):
        from credentials.models import Certificate
        from tests.factories import certificate_world

        key = "certificate_world" + repr(sorted(kwargs.items()))
        return db.session.get(Certificate, prebuilt(lambda: certificate_world(**kwargs), key=key))

    return get


@pytest.fixture
def prebuilt_rows(prebuilt, ctx):
    """prebuilt_rows(build) → {name: ORM object} as ``build()`` returns it, built once per module (prebuilt):
    each test gets the same rows copied back and the objects loaded again, by primary key, in its own session."""

    def get(build, *, key: str | None = None):
        key = key or f"{build.__module__}.{build.__qualname__}"
        refs = prebuilt(lambda: {name: (type(row), row.id) for name, row in build().items()}, key=key)
        return {name: db.session.get(model, row_id) for name, (model, row_id) in refs.items()}

    return get


# folders the test config points into a temp dir; tests may point them elsewhere (or to None) for a while
_TEST_FOLDERS = ("MAIL_OUTBOX_DIR", "CERTIFICATE_DIR", "UPLOAD_DIR")


@pytest.fixture(autouse=True)
def _clean(app: Flask, request: pytest.FixtureRequest) -> Iterator[None]:
    limiter.reset()
    _forget_served_copies(app)
    folders = {key: app.config[key] for key in _TEST_FOLDERS}
    if request.node.get_closest_marker("nodb"):
        yield from _without_the_database(app, request.node.nodeid)
    else:
        yield
        _empty_database(app)
    app.config.update(folders)
    for folder in folders.values():
        for entry in os.scandir(folder):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)


def _forget_served_copies(app: Flask) -> None:
    """What the app keeps per process between requests (verification answers, served status lists, clients counted
    today) starts empty: the previous test's rows are gone, their IDs come back."""
    from credentials.counter import verification_counter

    for name in ("verify_facts", "verify_pages", "verify_drawings", "served_status_lists", "insights_dashboard"):
        app.extensions.pop(name, None)
    verification_counter.forget_clients()


def _without_the_database(app: Flask, nodeid: str) -> Iterator[None]:
    """A test marked ``nodb`` fails if it sends the suite's database a single statement; nothing to empty after.

    The mark is what lets `make test` run such a test once (in the SQLite half) instead of on both databases,
    so it must be true: this checks it on every run.
    """
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    with app.app_context():
        suite_url = db.engine.url
    statements: list[str] = []

    def listener(conn, cursor, statement, *rest) -> None:
        # every engine, not only the suite app's: an app a test builds on the suite's URL counts too
        if conn.engine.url == suite_url:
            statements.append(statement)

    event.listen(Engine, "before_cursor_execute", listener)
    try:
        yield
    finally:
        event.remove(Engine, "before_cursor_execute", listener)
    if statements:
        _empty_database(app)  # whatever it wrote must not leak into the next test
    assert not statements, f"{nodeid} is marked nodb but ran SQL on the suite's database: {statements[:3]}"


@pytest.fixture
def ctx(app: Flask) -> Iterator[None]:
    with app.app_context():
        yield
        db.session.remove()


class Client(FlaskClient):
    """A test client that fills in the CSRF token from a real page, as a browser would.

    Each request runs in an empty contextvars.Context, so it gets its own app context
    (its own ``g`` and database session) even while the test holds one open, exactly
    as separate HTTP requests would.
    """

    _csrf: tuple[str, str] | None = None  # (the session's raw CSRF secret, a token signed for it)

    def open(self, *args, **kwargs):
        kwargs.setdefault("buffered", True)  # streamed bodies are read inside the request's own context
        return contextvars.Context().run(super().open, *args, **kwargs)

    def csrf_token(self, page: str = "/login") -> str:
        html = self.get(page).get_data(as_text=True)
        match = CSRF_RE.search(html)
        assert match, f"no CSRF token on {page}"
        token = match.group(1) or match.group(2)
        secret = self._session_csrf_secret()
        self._csrf = (secret, token) if secret else None
        return token

    def _session_csrf_secret(self) -> str | None:
        cookie = self.get_cookie(self.application.config["SESSION_COOKIE_NAME"])
        if cookie is None:
            return None
        serializer = self.application.session_interface.get_signing_serializer(self.application)
        return serializer.loads(cookie.value).get("csrf_token")

    def submit(self, url: str, data: dict | None = None, *, page: str | None = None, **kwargs):
        """POST ``data`` with a CSRF token, as a browser would after loading ``page`` (default: ``url``).

        A token stays valid while the session keeps the secret it was signed for (Flask-WTF binds tokens to
        the session, not to a form), so the page is fetched only when the session has a new secret (a fresh
        client, or after login/logout cleared the session): one fetch per session instead of one per POST.
        """
        secret = self._session_csrf_secret()
        token = self._csrf[1] if self._csrf and secret and self._csrf[0] == secret else self.csrf_token(page or url)
        payload = {"csrf_token": token, **(data or {})}
        return self.post(url, data=payload, **kwargs)


@pytest.fixture
def client(app: Flask) -> Client:
    app.test_client_class = Client
    return app.test_client()


@pytest.fixture
def other_client(app: Flask) -> Client:
    app.test_client_class = Client
    return app.test_client()


class QueryCounter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *args, **kwargs) -> None:
        self.count += 1


def queries_run(app: Flask, fn) -> int:
    """The number of SQL statements fn() ran (e.g. one client request)."""
    from sqlalchemy import event

    counter = QueryCounter()
    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", counter)
    try:
        fn()
    finally:
        event.remove(engine, "before_cursor_execute", counter)
    return counter.count


@pytest.fixture
def count_queries(app):
    """count_queries(fn) → number of SQL statements fn() ran (e.g. one client request)."""
    return lambda fn: queries_run(app, fn)
