"""Run a command against a throwaway PostgreSQL cluster.

    python -m tests.pgcluster -- pytest -q

Starts a cluster from the machine's own PostgreSQL binaries in a temp folder on a free
loopback port (as the unprivileged user ``nobody`` when run as root, because PostgreSQL
refuses to run as root), exports TEST_DATABASE_URL, runs the command, then stops the
cluster and deletes the folder. If TEST_DATABASE_URL is already set, it is used as is.
"""

from __future__ import annotations

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


def main(argv: list[str]) -> int:
    if "--" in argv:
        argv = argv[argv.index("--") + 1 :]
    if not argv:
        sys.exit("usage: python -m tests.pgcluster -- COMMAND ...")
    if os.environ.get("TEST_DATABASE_URL"):
        return subprocess.call(argv)

    run_as = {}
    workdir = tempfile.mkdtemp(prefix="awa-pg-")
    if os.geteuid() == 0:
        user = pwd.getpwnam("nobody")
        os.chmod(workdir, 0o700)
        os.chown(workdir, user.pw_uid, user.pw_gid)
        run_as = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    data = os.path.join(workdir, "data")
    port = free_port()
    pg_ctl = find_bin("pg_ctl")
    env = {**os.environ, "LC_ALL": "C.UTF-8", "HOME": workdir}
    try:
        subprocess.run(
            [find_bin("initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
            check=True,
            stdout=subprocess.DEVNULL,
            env=env,
            cwd=workdir,
            **run_as,
        )
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {workdir} -c fsync=off -c full_page_writes=off"
        subprocess.run(
            [pg_ctl, "-D", data, "-o", options, "-l", os.path.join(workdir, "log"), "-w", "start"],
            check=True,
            stdout=subprocess.DEVNULL,
            env=env,
            cwd=workdir,
            **run_as,
        )
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        subprocess.run(
            [find_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "academy_test"],
            check=True,
            env=env,
        )
        url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/academy_test"
        print(f"pgcluster: PostgreSQL on 127.0.0.1:{port}", flush=True)
        return subprocess.call(argv, env={**os.environ, "TEST_DATABASE_URL": url})
    finally:
        if os.path.exists(os.path.join(data, "postmaster.pid")):
            subprocess.run(
                [pg_ctl, "-D", data, "-m", "fast", "-w", "stop"],
                stdout=subprocess.DEVNULL,
                env=env,
                cwd=workdir,
                **run_as,
            )
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
