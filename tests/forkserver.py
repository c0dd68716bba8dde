"""One Python process that imports the app once and forks the live tests' servers from it (``shared()``).

The live tests start gunicorn servers and `flask worker` processes, each a fresh interpreter that imported the
app (~2.3 s of CPU on this machine, ~3 s with WeasyPrint and boto3, which the PDF and S3 paths load): twelve per
database in tests/servers and tests/test_worker.py. gunicorn's own --preload does the same within one server: its
master imports the app and forks the workers. Here one process per pytest run, ``python -m tests.forkserver``,
imports what every one of them imports (the project's modules, by building an app and throwing it away; gunicorn,
Flask's CLI, Huey's consumer and any ``preload`` modules), freezes the collector, and then, on each request, forks a
child that becomes ``python -m MODULE ARG...`` (``runpy``, as ``python -m`` and tests/quick_exit.py do) with the
environment, working folder and output asked for. Each child builds its own app from its own environment (~0.1 s:
create_app reads the configuration, the modules are there) and ends as ``python -m`` would (SystemExit, atexit,
the collector frozen at exit as tests/quick_exit.py does).

The pytest side gets a ``Forked`` handle with the part of ``subprocess.Popen`` the tests use. The server leaves
each ended child a zombie until the server itself ends (status read with WNOWAIT), so a pidfd on it stays valid,
and tests/treecpu.py can still read what it spent. The children are named (/proc/PID/comm) after their command,
which tests/treecpu.py reads to tell a gunicorn from a task worker: their command lines are the server's.
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_PR_SET_NAME = 15
_PR_SET_PDEATHSIG = 1
# what the gunicorn servers and task workers import after the app (gunicorn's arbiter and workers, Flask's CLI,
# Huey's consumer, Redis for the limiter and the queue)
_ALWAYS = (
    "gunicorn.app.wsgiapp",
    "gunicorn.arbiter",
    "gunicorn.workers.sync",
    "gunicorn.workers.gthread",
    "flask.cli",
    "huey.consumer",
    "redis",
)


class Forked:
    """A process forked by the fork server: pid, returncode, poll, wait, send_signal, terminate and kill, as
    ``subprocess.Popen`` has them."""

    def __init__(self, server: ForkServer, pid: int, args: list[str]) -> None:
        self._server = server
        self.pid = pid
        self.args = args
        self.returncode: int | None = None
        # the server reaps nothing before it ends, so this pid cannot be reused while the handle lives
        self._pidfd = os.pidfd_open(pid)

    def _ended(self, timeout: float | None) -> bool:
        """Whether the process has ended, waiting up to ``timeout`` seconds (None: for as long as it takes)."""
        if self.returncode is None:
            poller = select.poll()
            poller.register(self._pidfd, select.POLLIN)  # a pidfd is readable once its process has ended
            if poller.poll(None if timeout is None else timeout * 1000):
                try:
                    self.returncode = self._server._returncode(self.pid)
                except (OSError, RuntimeError):  # the server is gone, and its children with it (PR_SET_PDEATHSIG)
                    self.returncode = -signal.SIGKILL
                if self.returncode is not None:
                    os.close(self._pidfd)
        return self.returncode is not None

    def poll(self) -> int | None:
        self._ended(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._ended(timeout):
            raise subprocess.TimeoutExpired(self.args, timeout)
        return self.returncode  # type: ignore[return-value]

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:  # an ended process is left alone, as Popen does
            signal.pidfd_send_signal(self._pidfd, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkServer:
    """The pytest side: starts ``python -m tests.forkserver`` and asks it for children."""

    def __init__(self, preload: tuple[str, ...] = ()) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._sock = ours
        self._lock = threading.Lock()
        handle, log = tempfile.mkstemp(prefix="awa-forkserver-", suffix=".log")
        os.close(handle)
        self._log = Path(log)
        with self._log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.forkserver", str(theirs.fileno()), *preload],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                pass_fds=[theirs.fileno()],
            )
        theirs.close()
        self._sock.settimeout(300)  # a server stuck in its imports fails the part instead of hanging it
        try:
            ready = self._sock.recv(64)
        except TimeoutError:
            self.process.kill()
            ready = b""
        self._sock.settimeout(None)
        if ready != b"ready":  # the imports done (or the server died: its output says why)
            self.process.wait(timeout=10)
            raise RuntimeError(f"the fork server did not start\n{self._log.read_text()[-3000:]}")

    def _ask(self, request: dict, fds: list[int] = ()) -> dict:  # type: ignore[assignment]
        with self._lock:
            socket.send_fds(self._sock, [json.dumps(request).encode()], list(fds))
            reply = self._sock.recv(1 << 16)
        if not reply:
            raise RuntimeError(f"the fork server ended\n{self._log.read_text()[-3000:]}")
        return json.loads(reply)

    def spawn(self, args: list[str], *, env: dict[str, str], cwd: Path | str, stdout, new_session: bool = False):
        """``python -m args[0] args[1:]`` forked from the server, in ``cwd`` with exactly ``env``; standard input
        from /dev/null, output and errors to ``stdout`` (an open file: the child gets its own copy), in a session
        of its own when ``new_session`` (as Popen's start_new_session)."""
        request = {"args": list(args), "env": dict(env), "cwd": str(cwd), "new_session": new_session}
        return Forked(self, self._ask(request, [stdout.fileno()])["pid"], list(args))

    def _returncode(self, pid: int) -> int | None:
        return self._ask({"status": pid})["returncode"]

    def close(self) -> None:
        """The server kills what is still running (the tests stop what they start), reaps it all and ends."""
        self._sock.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.unlink(missing_ok=True)


_SHARED: list[ForkServer] = []


def shared(preload: tuple[str, ...] = ()) -> ForkServer:
    """This process's fork server, started on first use with ``preload`` imported too (a later caller's modules are
    imported by its children) and stopped when this process exits (so until then its ended children stay readable
    to tests/treecpu.py)."""
    if not _SHARED or _SHARED[0].process.poll() is not None:
        _SHARED[:] = [ForkServer(preload)]
        atexit.register(_SHARED[0].close)
    return _SHARED[0]


# ---- the server side ----------------------------------------------------------------------------------------------


def _name(comm: str) -> None:
    """/proc/self/comm (15 bytes): how tests/treecpu.py tells the children apart."""
    import ctypes

    ctypes.CDLL(None).prctl(_PR_SET_NAME, comm.encode()[:15], 0, 0, 0)


def _preload(modules: list[str]) -> None:
    import importlib

    from core import create_app

    # the project's modules, the way a server loads them: an app built and thrown away (its database never opened)
    create_app({"APP_ENV": "test", "SECRET_KEY": "fork-server-" + "x" * 32, "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    if os.environ.get("TEST_DATABASE_URL"):
        modules = [*modules, "psycopg", "sqlalchemy.dialects.postgresql.psycopg"]
    for module in [*_ALWAYS, *modules]:
        importlib.import_module(module)


def _serve(sock: socket.socket) -> tuple[dict, list[int]] | None:
    """Answer requests until pytest closes its end (then None); in a forked child, return its request."""
    children: list[int] = []
    while True:
        data, fds, _flags, _address = socket.recv_fds(sock, 1 << 20, 4)
        if not data:
            break
        request = json.loads(data)
        if "status" in request:
            # WNOWAIT: the child stays a zombie, its pid not reused, until this server ends
            # blocking: pytest asks once the child's pidfd says it ended
            info = os.waitid(os.P_PID, request["status"], os.WEXITED | os.WNOWAIT)
            code = None if info is None else info.si_status if info.si_code == os.CLD_EXITED else -info.si_status
            sock.send(json.dumps({"returncode": code}).encode())
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        server = os.getpid()
        pid = os.fork()
        if pid == 0:
            import ctypes

            # killed with the server: a server ended by a signal (a CI timeout) leaves none of its children running
            ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != server:  # the server ended before that took effect
                os._exit(1)
            sock.close()
            return request, fds
        for fd in fds:
            os.close(fd)
        children.append(pid)
        sock.send(json.dumps({"pid": pid}).encode())
    _end(children)
    return None


def _end(children: list[int]) -> None:
    """Kill what is still running and reap it all."""
    for pid in children:
        if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            print(f"fork server: child {pid} still running at the end: killed", flush=True)
            os.kill(pid, signal.SIGKILL)
    for pid in children:
        os.waitpid(pid, 0)


def _become(request: dict, fds: list[int]) -> None:
    """In the forked child: become ``python -m MODULE ARG...`` as asked."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if request["new_session"]:
        os.setsid()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(fds[0], 1)
    os.dup2(fds[0], 2)
    os.close(devnull)
    os.close(fds[0])
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    args = request["args"]
    _name(" ".join(args[:2]) if args[0] == "flask" else args[0])
    sys.argv = list(args)
    import runpy

    # MODULE becomes argv[0], replaced by its path as `python -m` does; SystemExit and errors end the process as
    # they end `python -m MODULE`
    runpy.run_module(args[0], run_name="__main__", alter_sys=True)


def main() -> None:
    sock = socket.socket(fileno=int(sys.argv[1]))
    _name("forkserver")
    # a Ctrl+C reaches the whole process group: pytest's teardown still stops each child through this server, which
    # then ends when pytest closes its end (a SIGTERM or SIGKILL ends it at once, and its children with it)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _preload(sys.argv[2:])
    gc.collect()
    gc.freeze()  # what the imports made lives as long as every child: no collection walks it again
    atexit.register(gc.freeze)  # each child's exit skips the collector's passes, as tests/quick_exit.py's do
    sock.send(b"ready")
    forked = _serve(sock)
    if forked is not None:
        _become(*forked)


if __name__ == "__main__":
    main()
