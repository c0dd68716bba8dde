"""gunicorn settings for bench/load_ab.py: the repository's gunicorn.conf.py plus a record of every request.

    gunicorn --config python:bench.gunicorn_probe …   (LOAD_PROBE_DIR: where each worker writes probe-<pid>.tsv)

Each worker writes one line per request, tab-separated:

    R  start (epoch s)  wall ms in the app  thread CPU ms  ms queued in the worker  client port  status
       cumulative collector passes of generations 0, 1, 2  and their cumulative ms

and one line per full (generation 2) collection: G  epoch s  ms  objects collected.

"Wall ms in the app" runs from gunicorn's pre_request hook (request parsed, a thread has it) to its post_request hook
(response written). "Queued in the worker" is, for gthread, the time from the worker's main thread handing the
readable connection to its thread pool to a thread starting on it; sync workers have no such queue (0). Locust's
latency minus the two is the time in the kernel's queues (accept backlog, socket buffers) and the client. Thread CPU
minus wall is the time the request's thread waited: for the database, for the GIL held by the worker's other
threads, or for a core.
"""

from __future__ import annotations

import gc
import os
import runpy
import threading
import time
from pathlib import Path

_BASE = runpy.run_path(str(Path(__file__).resolve().parents[1] / "gunicorn.conf.py"))
globals().update({k: v for k, v in _BASE.items() if not k.startswith("_") and k not in ("os", "gc")})

_DIR = os.environ.get("LOAD_PROBE_DIR", "")
_local = threading.local()
_lock = threading.Lock()
_gc_start = [0.0]
_gc_count = [0, 0, 0]
_gc_ms = [0.0, 0.0, 0.0]
_out: list = []


def _write(line: str) -> None:
    with _lock:
        _out[0].write(line)


def _on_gc(phase: str, info: dict) -> None:
    if phase == "start":
        _gc_start[0] = time.perf_counter()
        return
    ms = 1000 * (time.perf_counter() - _gc_start[0])
    generation = info["generation"]
    _gc_count[generation] += 1
    _gc_ms[generation] += ms
    if generation == 2 and _out:
        _out[0].write(f"G\t{time.time():.4f}\t{ms:.2f}\t{info['collected']}\n")


def post_fork(server, worker) -> None:
    base = _BASE.get("post_fork")
    if base is not None:
        base(server, worker)
    if not _DIR:
        return
    _out.append(open(Path(_DIR) / f"probe-{os.getpid()}.tsv", "a", buffering=1))  # noqa: SIM115 (closed at exit)
    gc.callbacks.append(_on_gc)
    if hasattr(worker, "enqueue_req"):  # gthread: stamp the hand-over to the thread pool
        enqueue, handle = worker.enqueue_req, worker.handle

        def enqueue_req(conn) -> None:
            conn.probe_queued = time.time()
            enqueue(conn)

        def handle_conn(conn):
            _local.queued = getattr(conn, "probe_queued", None)
            _local.picked = time.time()
            return handle(conn)

        worker.enqueue_req, worker.handle = enqueue_req, handle_conn


# trials of the collector's settings (bench/load_ab.py's gc-* variants): LOAD_GC_FREEZE=1 moves every object that
# exists once the app is loaded into the permanent generation (in the master before it forks when the app is
# preloaded, else in each worker after it loaded the app); LOAD_GC_GEN0 sets generation 0's threshold
_FREEZE = os.environ.get("LOAD_GC_FREEZE", "")
_GEN0 = os.environ.get("LOAD_GC_GEN0", "")


def when_ready(server) -> None:
    base = _BASE.get("when_ready")
    if base is not None:
        base(server)
    if _FREEZE == "1" and server.cfg.preload_app:
        gc.freeze()


def post_worker_init(worker) -> None:
    base = _BASE.get("post_worker_init")
    if base is not None:
        base(worker)
    if _GEN0:
        gc.set_threshold(int(_GEN0), *gc.get_threshold()[1:])
    if _FREEZE == "1" and not worker.cfg.preload_app:
        gc.freeze()
    elif _FREEZE == "0":
        gc.unfreeze()


def pre_request(worker, req) -> None:
    base = _BASE.get("pre_request")
    if base is not None:
        base(worker, req)
    _local.start = time.time()
    _local.cpu = time.thread_time()


def post_request(worker, req, environ, resp) -> None:
    base = _BASE.get("post_request")
    if base is not None:
        base(worker, req, environ, resp)
    if not _out:
        return
    start = getattr(_local, "start", None)
    if start is None:
        return
    wall = 1000 * (time.time() - start)
    cpu = 1000 * (time.thread_time() - _local.cpu)
    queued = getattr(_local, "queued", None)
    waited = 1000 * (_local.picked - queued) if queued is not None else 0.0
    _local.queued = None
    status = getattr(resp, "status_code", 0)
    _write(
        f"R\t{start:.4f}\t{wall:.2f}\t{cpu:.2f}\t{waited:.2f}\t{environ.get('REMOTE_PORT', '')}\t{status}\t"
        f"{_gc_count[0]}\t{_gc_count[1]}\t{_gc_count[2]}\t{_gc_ms[0]:.1f}\t{_gc_ms[1]:.1f}\t{_gc_ms[2]:.1f}\n"
    )


def worker_exit(server, worker) -> None:
    base = _BASE.get("worker_exit")
    if base is not None:
        base(server, worker)
    if _out:
        _out[0].flush()
