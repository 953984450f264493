"""The building blocks of the universe file's models: YAML read with the line of every value,
and the field rules the universe and each source's settings share.

A YAML scalar reaches a model as `Scalar`: its text as written (symbols, paths and formats are
text, so `ON` or `007` never become a boolean or a number) and what YAML makes of it (`typed`,
for numbers and dates). Refusals name the key they concern through `refusal(..., key=...)`, so
that the universe can point at that key's line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, PlainValidator, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

Loc = tuple[str | int, ...]
MAX_DEPTH = 20
"""Levels of nesting a universe file may have (it needs four)."""
ALIAS_REFUSAL = "YAML aliases (*name) are not accepted in a universe file; write the value out"


@dataclass(frozen=True)
class Scalar:
    """One YAML scalar: `text` as written, `typed` as YAML reads it (None for null)."""

    text: str
    typed: Any


class TreeError(Exception):
    """The YAML cannot make a universe whatever its values (a key given twice)."""

    def __init__(self, loc: Loc, line: int, message: str) -> None:
        super().__init__(message)
        self.loc, self.line, self.message = loc, line, message


@dataclass(frozen=True)
class Tree:
    """The YAML as dicts, lists and `Scalar`s, with the line of every value and every key."""

    data: Any
    lines: dict[Loc, int]
    key_lines: dict[Loc, int]


def read_tree(text: str) -> Tree | None:
    """The document as a `Tree`, None when it is empty; yaml.YAMLError when it is not YAML."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)  # libyaml: 10x faster
    lines: dict[Loc, int] = {}
    key_lines: dict[Loc, int] = {}

    def scalar(node: yaml.ScalarNode) -> Scalar:
        try:
            return Scalar(node.value, loader.construct_object(node, deep=True))
        except (ValueError, OverflowError, yaml.constructor.ConstructorError):
            return Scalar(node.value, node.value)

    seen: set[int] = set()

    def walk(node: yaml.Node, loc: Loc, line: int) -> Any:
        # An alias is the node of its anchor met again: refused before it is expanded, so a
        # few hundred bytes of nested aliases cannot grow into gigabytes.
        if id(node) in seen:
            raise TreeError(loc, line, ALIAS_REFUSAL)
        if len(loc) > MAX_DEPTH:
            raise TreeError(loc, line, f"nested deeper than {MAX_DEPTH} levels")
        seen.add(id(node))
        lines[loc] = node.start_mark.line + 1
        if isinstance(node, yaml.SequenceNode):
            at = node.start_mark.line + 1
            return [walk(item, (*loc, index), at) for index, item in enumerate(node.value)]
        if not isinstance(node, yaml.MappingNode):
            return scalar(node)
        entries: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            line = key_node.start_mark.line + 1
            if key in entries:
                first = key_lines[(*loc, key)]
                raise TreeError((*loc, key), line, f"given twice (first on line {first})")
            key_lines[(*loc, key)] = line
            entries[key] = walk(value_node, (*loc, key), line)
        return entries

    try:
        root = loader.get_single_node()
        return None if root is None else Tree(walk(root, (), 1), lines, key_lines)
    finally:
        loader.dispose()


def refusal(message: str, key: str | None = None) -> PydanticCustomError:
    """A refusal of the value being validated, or of its `key` (present or missing)."""
    return PydanticCustomError("universe", "{message}", {"message": message, "key": key})


def typed(value: Any) -> Any:
    """What YAML makes of a scalar; any other value as it is."""
    return value.typed if isinstance(value, Scalar) else value


def is_null(value: Any) -> bool:
    return value is None or (isinstance(value, Scalar) and value.typed is None)


def text(value: Any) -> str:
    """A single value as written, stripped; refused when it is a list, a mapping or empty."""
    if isinstance(value, dict | list):
        raise ValueError("expected a single value, not a list or mapping")
    written = (value.text if isinstance(value, Scalar) else str(value)).strip()
    if not written or (is_null(value) and written in ("~", "null")):
        raise ValueError("is empty")
    return written


def shown(value: Any) -> str:
    """The value as the file has it, for a message."""
    if isinstance(value, dict | list):
        return "a list or mapping"
    return value.text if isinstance(value, Scalar) else str(value)


def whole_number(low: int, high: int | None = None) -> PlainValidator:
    """A whole number from `low` (to `high`): never a boolean, a float or text."""
    bounds = f">= {low}" if high is None else f"from {low} to {high}"

    def check(value: Any) -> int:
        number = typed(value)
        if type(number) is not int or number < low or (high is not None and number > high):
            raise ValueError(f"expected a whole number {bounds}")
        return number

    return PlainValidator(check)


def relative_path(value: Any, info: ValidationInfo) -> Path:
    """A path as an absolute one, a relative path taken from the universe file's folder."""
    raw = Path(text(value)).expanduser()
    folder = (info.context or {}).get("folder", Path())
    return (raw if raw.is_absolute() else folder / raw).resolve()


def a_list(expected: str) -> Callable[[Any], list]:
    """A check that the value is a list, refused with `expected` otherwise."""

    def check(value: Any) -> list:
        if not isinstance(value, list):
            raise ValueError(expected)
        return value

    return check


class Strict(BaseModel):
    """A mapping of known keys: anything else is refused naming the key and the allowed ones."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        allowed = ", ".join(cls.model_fields)
        if not isinstance(data, dict):
            raise refusal(f"expected a mapping with keys {allowed}")
        for key in data:
            if key not in cls.model_fields:
                raise refusal(f"unknown key; allowed keys are {allowed}", key)
        return data


class SourceSettings(Strict):
    """The `source:` block of one kind: what its resource is built with, and what it refuses."""

    def resource_options(self) -> dict[str, Any]:
        """Keyword arguments of the source's resource (those the file gives)."""
        return self.model_dump(exclude={"kind"}, exclude_unset=True)

    def timeframe_list(self) -> tuple:
        """Intraday candle sizes to keep, for a source that has them."""
        return ()

    def universe_refusal(
        self, market: str, tickers: list[tuple[str, str | None]]
    ) -> tuple[Loc, str] | None:
        """Where and why this source cannot serve the universe's market or (symbol,
        instrument_key) tickers, or None."""
        return None
