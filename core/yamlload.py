"""Safe YAML loading that remembers line numbers, so data-file errors can name the line."""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from typing import Any

import yaml


class LineDict(dict):
    """A mapping from a YAML file that knows the line it started on (1-based)."""

    line: int = 0


class LineList(list):
    line: int = 0


MAX_QUOTED = 60


def quoted(value: Any, limit: int = MAX_QUOTED) -> str:
    """A value for an error message: its text, cut to ``limit`` characters (a message never grows with the input)."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


class _Loader(yaml.SafeLoader):
    def compose_node(self, parent, index):
        # An alias (*name) repeats a node by reference; nested aliases expand exponentially ("billion laughs":
        # a 47 KB bundle became a 178 MB error message). Course files never need them, so they are refused.
        if self.check_event(yaml.events.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, f"aliases (*{quoted(event.anchor, 40)}) are not allowed in course files", event.start_mark
            )
        return super().compose_node(parent, index)


def _mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {quoted(key)}", key_node.start_mark)
        result[key] = loader.construct_object(value_node, deep=True)
    return result


def _sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    return result


def _timestamp(loader: _Loader, node: yaml.ScalarNode):
    # 2026-13-01 looks like a date to the resolver; without this its ValueError would carry no line number
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError as error:
        raise yaml.constructor.ConstructorError(
            None, None, f"{quoted(node.value)} is not a valid date ({error})", node.start_mark
        ) from None


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)


class YamlError(ValueError):
    """The text is not valid YAML; the message names the line."""


# Documents already parsed, by their text. The same files are read again and again (every `courses import` and
# `skills load` rereads the whole catalog and framework, the test suite hundreds of times), and PyYAML's
# pure-Python parser is slow (~1 s for the catalog); a copy of the parsed objects costs ~2 % of that. libyaml's C
# parser would be ~10x faster too, but it accepts texts the Python parser refuses (tabs, odd flow keys), so a
# course file's verdict would depend on how PyYAML was built. Only successful parses are kept, within a budget
# of source characters, least recently used dropped first.
_PARSED: OrderedDict[str, Any] = OrderedDict()
_PARSED_BUDGET = 4_000_000
_parsed_chars = 0
_parsed_lock = threading.Lock()


def load(text: str, *, source: str = "file") -> Any:
    """The YAML document in ``text`` (mappings as LineDict, sequences as LineList). Raises YamlError naming the line.

    Each call returns its own objects (callers may change them), equal to a fresh parse's, line numbers included.
    """
    global _parsed_chars
    with _parsed_lock:
        parsed = _PARSED.get(text)
        if parsed is not None:
            _PARSED.move_to_end(text)
    if parsed is not None:
        return copy.deepcopy(parsed)
    try:
        parsed = yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 0
        raise YamlError(f"{source}, line {line}: {error.problem or error}") from None
    except yaml.YAMLError as error:
        raise YamlError(f"{source}: {error}") from None
    if len(text) <= _PARSED_BUDGET // 8:
        with _parsed_lock:
            if text not in _PARSED:
                _PARSED[text] = copy.deepcopy(parsed)
                _parsed_chars += len(text)
                while _parsed_chars > _PARSED_BUDGET:
                    _parsed_chars -= len(_PARSED.popitem(last=False)[0])
    return parsed


def line_of(value: Any, default: int = 0) -> int:
    return getattr(value, "line", default)


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: _Dumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _list(dumper: _Dumper, value: list):
    # short lists of ids read best on one line: [AIL-01, AIL-02]
    flow = bool(value) and all(isinstance(v, (str, int)) and len(str(v)) <= 24 for v in value)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)


_Dumper.add_representer(str, _str)
_Dumper.add_representer(list, _list)
_Dumper.add_representer(LineDict, _Dumper.represent_dict)
_Dumper.add_representer(LineList, _list)


def dump(data: Any) -> str:
    """Canonical YAML: key order kept, block style, unicode as is, 100-column folding."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100, default_flow_style=False)
