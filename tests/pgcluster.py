"""Run a command against a throwaway PostgreSQL cluster.

    python -m tests.pgcluster -- pytest -q

Starts a cluster from the machine's own PostgreSQL binaries in a temp folder on a free
loopback port (as the unprivileged user ``nobody`` when run as root, because PostgreSQL
refuses to run as root), exports TEST_DATABASE_URL, runs the command, then stops the
cluster and deletes the folder. If TEST_DATABASE_URL is already set, it is used as is.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def find_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if not candidates:
        sys.exit(f"pgcluster: {name} not found; install PostgreSQL (apt-get install postgresql-15)")
    return candidates[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A throwaway cluster: start(), stop() and start() again (same data, same port), close() to delete it."""

    def __init__(self, database: str = "academy_test") -> None:
        self.run_as: dict = {}
        self.workdir = tempfile.mkdtemp(prefix="awa-pg-")
        if os.geteuid() == 0:
            user = pwd.getpwnam("nobody")
            os.chmod(self.workdir, 0o700)
            os.chown(self.workdir, user.pw_uid, user.pw_gid)
            self.run_as = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        self.data = os.path.join(self.workdir, "data")
        self.port = free_port()
        self.database = database
        self.env = {**os.environ, "LC_ALL": "C.UTF-8", "HOME": self.workdir}
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"
        self._initialised = False

    def _run(self, args: list[str], **kwargs) -> None:
        subprocess.run(
            args, check=True, stdout=subprocess.DEVNULL, env=self.env, cwd=self.workdir, **self.run_as, **kwargs
        )

    def start(self) -> Cluster:
        if not self._initialised:
            self._run(
                [find_bin("initdb"), "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]
            )
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.workdir} -c fsync=off -c full_page_writes=off"
        log = os.path.join(self.workdir, "log")
        self._run([find_bin("pg_ctl"), "-D", self.data, "-o", options, "-l", log, "-w", "start"])
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        if not self._initialised:
            createdb = [find_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
            subprocess.run([*createdb, self.database], check=True, env=self.env)
            self._initialised = True
        return self

    def stop(self, mode: str = "fast") -> None:
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            self._run([find_bin("pg_ctl"), "-D", self.data, "-m", mode, "-w", "stop"])

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


_MEMORY_FOLDER: list[str] = []


def memory_folder(fallback) -> str:
    """A folder in memory-backed /dev/shm for this process's throwaway SQLite files (``fallback`` where there is
    none), deleted when the process exits.

    On the disk every SQLite commit waits for fdatasync: ~5 ms at the median and up to ~130 ms on this shared
    machine, and the live servers' setup alone syncs ~690 times (migrations, skills, 13 catalog courses). That is
    waiting, not work, and both halves of `make test` queue on the same disk. The suite's own database lives
    there for the same reason (tests/conftest.py, database_url); the PostgreSQL cluster runs with fsync=off.
    """
    shm = "/dev/shm"
    if not (os.path.isdir(shm) and os.access(shm, os.W_OK)):
        return str(fallback)
    if not _MEMORY_FOLDER:
        _MEMORY_FOLDER.append(tempfile.mkdtemp(prefix="awa-test-files-", dir=shm))
        atexit.register(shutil.rmtree, _MEMORY_FOLDER[0], ignore_errors=True)
    return _MEMORY_FOLDER[0]


def sibling_database(folder, suffix: str) -> str:
    """A fresh, empty database for a live server: ``<TEST_DATABASE_URL's database>_<suffix>`` on the same
    PostgreSQL, or a SQLite file when the suite runs on SQLite (in memory_folder(), else in ``folder``)."""
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        path = os.path.join(memory_folder(folder), suffix + ".db")
        for leftover in (path, path + "-journal", path + "-wal", path + "-shm"):  # fresh, even if asked twice
            if os.path.exists(leftover):
                os.unlink(leftover)
        return f"sqlite:///{path}"
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    sibling = base.set(database=f"{base.database}_{suffix}")
    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{sibling.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{sibling.database}"'))
    engine.dispose()
    return sibling.render_as_string(hide_password=False)


def main(argv: list[str]) -> int:
    if "--" in argv:
        argv = argv[argv.index("--") + 1 :]
    if not argv:
        sys.exit("usage: python -m tests.pgcluster -- COMMAND ...")
    if os.environ.get("TEST_DATABASE_URL"):
        return subprocess.call(argv)
    with Cluster() as cluster:
        print(f"pgcluster: PostgreSQL on 127.0.0.1:{cluster.port}", flush=True)
        return subprocess.call(argv, env={**os.environ, "TEST_DATABASE_URL": cluster.url})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
