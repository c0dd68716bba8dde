"""core/yamlload.load keeps parsed documents by text: each call still gets its own objects, equal to a fresh parse."""

from __future__ import annotations

import pytest
import yaml

from core import yamlload

pytestmark = pytest.mark.nodb

TEXT = "slug: ai-basics\nmodules:\n  - title: One\n    skills: [AIL-01]\n  - title: Two\n    due: 2026-01-31\n"


def test_a_second_load_returns_equal_objects_of_its_own_with_their_line_numbers():
    first = yamlload.load(TEXT)
    fresh = yaml.load(TEXT, Loader=yamlload._Loader)  # noqa: S506 (a SafeLoader subclass)
    first["slug"] = "changed"
    first["modules"][0]["skills"].append("AIL-02")
    second = yamlload.load(TEXT)
    assert second == fresh and second is not first
    assert second["modules"] is not first["modules"]
    assert (second.line, second["modules"].line, second["modules"][1].line) == (1, 3, 5)
    assert type(second["modules"][1]) is yamlload.LineDict and type(second["modules"]) is yamlload.LineList


def test_a_text_that_fails_fails_every_time_with_the_same_message():
    bad = "a: 1\na: 2\n"
    messages = []
    for _ in range(2):
        with pytest.raises(yamlload.YamlError) as error:
            yamlload.load(bad, source="course.yaml")
        messages.append(str(error.value))
    assert messages == ["course.yaml, line 2: duplicate key a"] * 2
    assert bad not in yamlload._PARSED


def test_the_kept_texts_stay_within_their_budget(monkeypatch):
    monkeypatch.setattr(yamlload, "_PARSED", yamlload.OrderedDict())
    monkeypatch.setattr(yamlload, "_parsed_chars", 0)
    monkeypatch.setattr(yamlload, "_PARSED_BUDGET", 800)
    texts = [f"n: {i}\npad: {'x' * 80}\n" for i in range(20)]
    for text in texts:
        assert yamlload.load(text)["n"] == int(text.split()[1])
    assert sum(map(len, yamlload._PARSED)) == yamlload._parsed_chars <= 800
    assert texts[-1] in yamlload._PARSED and texts[0] not in yamlload._PARSED  # the oldest went first
