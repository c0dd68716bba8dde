"""gunicorn settings for production, `make load` / `make load-compare` and the live tests' servers.

gunicorn reads ./gunicorn.conf.py from its working directory, so `gunicorn wsgi:app` (or plain `gunicorn`) in the
repository uses this file (elsewhere: `gunicorn --config /path/to/gunicorn.conf.py`); a flag on the command line or
in GUNICORN_CMD_ARGS overrides any setting here (a "sync" worker class needs `--threads 1` with it: gunicorn turns
sync with threads into gthread). The measurements behind each choice: docs/SCALING.md section 7 and
bench/RESULTS.md ("Load test: server configurations").
"""

import gc
import os
import sys

wsgi_app = "wsgi:app"
# WEB_CONCURRENCY: the usual knob of platforms that run gunicorn; 3 is what `make load` measures on 2 cores
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
# threads: while one request waits on PostgreSQL the worker's other thread has the core
worker_class = "gthread"
threads = 2
timeout = 60


def on_starting(server) -> None:
    """A gthread worker takes a connection only while it has a free thread: worker_connections = threads (whatever
    --threads says), so no connection is kept alive and requests wait in the kernel's one accept queue, first come
    first served, until any worker frees a thread. With gunicorn's default (1,000 connections a worker, kept alive)
    each worker accepts what arrives and keeps it: under `make load` the 24 clients' connections split by chance
    ([3, 18, 3], [9, 2, 13], ...) while each worker got the same share of the cores, so the crowded worker's clients
    waited in its thread pool's queue several times as long as the others. Behind a proxy (nginx, a load balancer)
    the browsers' connections stay kept alive at the proxy. `--worker-connections N` on the command line (or in
    GUNICORN_CMD_ARGS) wins."""
    given = " ".join(sys.argv[1:]) + " " + os.environ.get("GUNICORN_CMD_ARGS", "")
    if server.cfg.worker_class_str == "gthread" and "--worker-connections" not in given:
        server.cfg.set("worker_connections", server.cfg.threads)
        server.cfg.set("keepalive", 0)  # what the line above means anyway (and gunicorn would warn about it)


def post_worker_init(worker) -> None:
    """Move the objects the app's import created (~160,000: modules, classes, templates, the ORM's mappings) into the
    collector's permanent generation: they live as long as the worker, and every full collection would walk them all
    while both of the worker's threads wait (~85 ms of CPU on a quiet machine; up to 0.8-1.9 s of wall time per pause
    under `make load` on the shared machine, 0.18-0.52 s with them frozen)."""
    gc.freeze()
