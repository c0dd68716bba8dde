"""Write pytest's assertion-rewritten bytecode of every test module and conftest.py once: `make bytecode` runs this
before `make test` starts its two halves.

Where PYTHONDONTWRITEBYTECODE is set (this machine sets it), pytest never caches the modules it rewrites, so each
half rewrote and compiled the ~25k lines of tests/ again: collecting the suite cost 12.8 s of CPU without the
cached files and 5.5 s with them (`pytest --collect-only`), so ~7 s per half. Written once here, on every core,
both halves read them. pytest checks a cached file against its source's hash (PEP 552 checked pyc) before it
uses it, so a stale or foreign file is simply rewritten again, as before.

This uses pytest's own rewriter (`_pytest.assertion.rewrite`, private); if a pytest release moves it, nothing is
written and the suite runs as it did without the cache.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _write(path: Path) -> None:
    from _pytest.assertion import rewrite

    pyc = rewrite.get_cache_dir(path) / (path.name[:-3] + rewrite.PYC_TAIL)
    if rewrite._read_pyc(path, pyc) is not None:
        return  # already there, for this very source
    source_hash, code = rewrite._rewrite_test(path, None)  # config None: no assertion pass hook, as in our ini
    pyc.parent.mkdir(exist_ok=True)
    partial = f"{pyc}.{os.getpid()}"
    with open(partial, "wb") as out:
        rewrite._write_pyc_fp(out, source_hash, code)
    os.replace(partial, pyc)  # atomic: a pytest starting meanwhile sees the whole file or none


def main() -> int:
    try:
        from _pytest.assertion import rewrite

        for name in ("get_cache_dir", "PYC_TAIL", "_read_pyc", "_rewrite_test", "_write_pyc_fp"):
            getattr(rewrite, name)
    except (ImportError, AttributeError) as error:
        print(f"rewrite_cache: pytest's rewriter moved ({error}); nothing cached", file=sys.stderr)
        return 0
    files = sorted(p for p in TESTS.rglob("*.py") if p.name == "conftest.py" or p.name.startswith("test_"))
    files = [p for p in files if "node_modules" not in p.parts]
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(_write, files, chunksize=4))
    return 0


if __name__ == "__main__":
    sys.exit(main())
