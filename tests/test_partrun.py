"""tests/partrun.py: the wall time and whole-tree CPU that `make test` prints for each of its parts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# burns 0.3 s of its own CPU, then exits
BURN = "import time; t = time.process_time(); [0 for _ in iter(lambda: time.process_time() - t < 0.3, False)]"


def _partrun(table: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tests.partrun", *args],
        cwd=ROOT,
        env={**os.environ, "PARTRUN_TABLE": str(table)},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.nodb
def test_a_part_counts_the_cpu_of_the_processes_its_command_left_behind(tmp_path):
    """The shell starts the burner in the background and exits at once with 3: the burner outlives its parent (as
    the PostgreSQL server that pg_ctl starts does), and its CPU still counts, with the command's exit code."""
    table = tmp_path / "parts.tsv"
    run = _partrun(table, "demo part", "--", "sh", "-c", f'"{sys.executable}" -c "{BURN}" & exit 3')
    assert run.returncode == 3, run.stderr
    assert run.stdout.startswith("part demo part: wall "), run.stdout
    name, wall, cpu, code = table.read_text(encoding="utf-8").strip().split("\t")
    assert (name, code) == ("demo part", "3")
    assert float(cpu) >= 0.3, (wall, cpu)

    summary = _partrun(table, "--summary")
    assert summary.returncode == 0
    lines = summary.stdout.splitlines()
    assert lines[0].split() == ["part", "wall", "s", "CPU", "s", "exit"]
    assert lines[1].split()[:2] == ["demo", "part"] and lines[1].split()[-1] == "3"
    assert lines[-1].split()[:2] == ["all", "parts"]

    assert _partrun(table, "--reset").returncode == 0
    assert not table.exists()


PROBE = """import atexit, gc, sys
print(sys.argv[1:])
atexit._run_exitfuncs()  # what the exit runs first, now: the handlers
print(gc.get_freeze_count() > 0)
sys.exit(7)
"""


@pytest.mark.nodb
def test_quick_exit_runs_the_module_as_python_m_would_and_freezes_the_collector_at_exit(tmp_path):
    (tmp_path / "awa_probe.py").write_text(PROBE, encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "tests.quick_exit", "awa_probe", "a", "b c"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 7, run.stderr
    assert run.stdout.splitlines() == ["['a', 'b c']", "True"]
