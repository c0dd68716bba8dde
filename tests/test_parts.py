"""`--part K/N` (tests/conftest.py): every selected file in exactly one part, the parts of about equal cost."""

from __future__ import annotations

import pytest

from tests.conftest import part_of, part_weights

pytestmark = pytest.mark.nodb


def test_every_file_lands_in_exactly_one_part_and_the_split_is_the_same_every_time():
    files = [f"tests/test_{n}.py" for n in "abcdefghij"]
    weights = dict(zip(files, [9, 1, 4, 4, 2, 8, 3, 5, 7, 6], strict=True))
    parts = part_of(files, 3, weights)
    assert sorted(parts) == sorted(files)
    assert set(parts.values()) == {0, 1, 2}
    assert part_of(list(reversed(files)), 3, weights) == parts  # not the order the files were collected in
    loads = [sum(weights[f] for f in files if parts[f] == k) for k in range(3)]
    assert loads == [17, 16, 16]  # 49 in all: no split of these costs does better


def test_a_file_the_table_does_not_know_counts_as_one_of_median_cost():
    weights = {"tests/test_big.py": 10.0, "tests/test_mid.py": 3.0, "tests/test_small.py": 1.0}
    parts = part_of([*weights, "tests/test_new.py"], 2, weights)
    # big alone; mid, then the new file (median: 3.0), then small on the other part
    assert parts == {"tests/test_big.py": 0, "tests/test_mid.py": 1, "tests/test_new.py": 1, "tests/test_small.py": 1}


def test_the_checked_in_table_splits_the_suite_into_two_parts_within_five_percent(monkeypatch):
    for database_url in (None, "postgresql://example/x"):
        if database_url:
            monkeypatch.setenv("TEST_DATABASE_URL", database_url)
        weights = part_weights()
        assert len(weights) > 40
        parts = part_of(sorted(weights), 2, weights)
        loads = [sum(w for f, w in weights.items() if parts[f] == k) for k in range(2)]
        assert abs(loads[0] - loads[1]) < 0.05 * sum(loads), loads


def test_files_dealt_after_others_start_from_the_loads_those_left():
    weights = {"tests/test_big.py": 10.0, "tests/test_mid.py": 3.0, "tests/test_small.py": 1.0}
    assert part_of(["tests/test_new.py", "tests/test_small.py"], 2, weights, loads=[2.0, 10.0]) == {
        "tests/test_new.py": 0,  # median cost 3.0 on the lighter part: 5.0 against 10.0
        "tests/test_small.py": 0,
    }
