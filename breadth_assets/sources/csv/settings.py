"""The csv source's settings: the `source: {kind: csv}` block and `CsvSource`'s fields."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, PlainValidator

from breadth_assets.fields import SourceSettings, refusal, relative_path, text

LAYOUTS = ("per_ticker", "long")
COLUMNS = ("date", "open", "high", "low", "close", "volume", "ticker")
"""Our column names, which `columns` may map to the file's headers."""
DEFAULT_FILE_PATTERN = "{ticker}.csv"


def layout(value: Any) -> str:
    name = text(value).lower()
    if name not in LAYOUTS:
        raise ValueError(f"unknown layout {text(value)!r}; valid layouts are {', '.join(LAYOUTS)}")
    return name


def file_pattern(value: Any) -> str:
    pattern = text(value)
    try:
        ok = "{ticker}" in pattern and bool(pattern.format(ticker="X"))
    except (KeyError, IndexError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{pattern!r} must contain {{ticker}} and no other {{...}} field")
    return pattern


def columns(value: Any) -> dict[str, str]:
    """Our column name -> the file's header."""
    if not isinstance(value, dict):
        raise ValueError("expected a mapping of our column name to the file's header")
    headers = {}
    for name, header in value.items():
        if name not in COLUMNS:
            raise refusal(f"unknown key; allowed keys are {', '.join(COLUMNS)}", name)
        try:
            headers[name] = text(header)
        except ValueError as error:
            raise refusal(str(error), name) from None
    return headers


def date_format(value: Any) -> str | None:
    if value is None:
        return None
    written = text(value)
    if "%" not in written:
        raise ValueError(f"{written!r} is not a strftime format such as %d/%m/%Y")
    return written


Layout = Annotated[str, PlainValidator(layout)]
FilePattern = Annotated[str, PlainValidator(file_pattern)]
Columns = Annotated[dict[str, str], PlainValidator(columns)]
DateFormat = Annotated[str | None, PlainValidator(date_format)]


def find_header(headers: Iterable[Any], wanted: str) -> Any | None:
    """The file's header for `wanted` (stripped): matched exactly, else ignoring case, else None.

    The one rule for the source and for `tickers: all`, so both find the same ticker column.
    """
    headers = list(headers)
    exact = {str(header).strip(): header for header in headers}
    by_lower = {str(header).strip().lower(): header for header in headers}
    wanted = wanted.strip()
    return exact.get(wanted, by_lower.get(wanted.lower()))


def file_problem(error: OSError, path: Path) -> str:
    """Why a csv file or folder cannot be used, in a few words: missing, a directory, no
    permission to read it, or the system's reason."""
    if isinstance(error, FileNotFoundError):
        return (
            "file not found"
            if path.parent.is_dir()
            else f"file not found (no folder {path.parent})"
        )
    if isinstance(error, IsADirectoryError):
        return "is a directory, not a file"
    if isinstance(error, PermissionError):
        return "cannot be read: permission denied"
    reason = error.strerror or str(error) or type(error).__name__
    return f"cannot be read: {reason[:1].lower()}{reason[1:]}"


def default_layout(path: Path) -> str:
    """A folder holds per-ticker files; a file (or a name with a suffix) is a long file."""
    if path.is_dir():
        return "per_ticker"
    return "long" if path.is_file() or path.suffix else "per_ticker"


class CsvSettings(SourceSettings):
    kind: Literal["csv"]
    path: Annotated[Path, PlainValidator(relative_path)]
    layout: Layout | None = None
    file_pattern: FilePattern = DEFAULT_FILE_PATTERN
    columns: Columns = Field(default_factory=dict)
    date_format: DateFormat = None

    def resource_options(self) -> dict[str, Any]:
        options = super().resource_options()
        options["path"] = str(self.path)
        options["layout"] = self.layout or default_layout(self.path)
        return options
