"""gunicorn settings for production, `make load` / `make load-compare` and the live tests' servers.

gunicorn reads ./gunicorn.conf.py from its working directory, so `gunicorn wsgi:app` (or plain `gunicorn`) in the
repository uses this file; a flag on the command line or in GUNICORN_CMD_ARGS overrides any setting here. The
figures behind each choice: docs/SCALING.md ("Serving: the gunicorn configuration") and bench/RESULTS.md.
"""

import os

wsgi_app = "wsgi:app"
# WEB_CONCURRENCY: the usual knob of platforms that run gunicorn; 3 is what `make load` measures on 2 cores
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
worker_class = "gthread"
threads = 2
timeout = 60
