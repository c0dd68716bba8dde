"""python -m tests.quick_exit MODULE ARG...: run ``python -m MODULE ARG...`` with the garbage collector frozen at exit.

The servers the live tests start (gunicorn, `flask worker`, moto) and the test parts of `make test` run through it.
A process that has imported the app holds ~200,000 objects, and Python's finalization collects them in several
passes: ~0.95 s of CPU per process exit, in every gunicorn master and worker, measured with the app after five
requests; with the objects frozen (gc.freeze() in an atexit handler, so after every other handler) the exit
costs ~0.07 s. The operating system frees the memory either way; what the process still does at exit (logging's
flush, the standard streams, objects freed by reference counting) is unchanged. A forked gunicorn worker inherits
the handler from its master.
"""

from __future__ import annotations

import atexit
import gc
import runpy
import sys


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    atexit.register(gc.freeze)
    del sys.argv[0]  # MODULE becomes argv[0], replaced by its path as `python -m` does
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
