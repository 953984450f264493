"""What a failed run shows on a console: the failure's message, without Dagster's stack trace
when the code failed on purpose.

A step that raises `dg.Failure` (a ticker's file missing, a source refusing a batch) has said in
its message what went wrong and where; the frames of Dagster's executor under it only bury that
message. `console_logger` is Dagster's colored console logger with such a failure shown as its
message alone, and `failure_lines` is what `breadth-assets run` prints for a failed run. An
unexpected exception (a bug) keeps its stack trace, and the run's event log (the UI) keeps every
stack trace.
"""

from __future__ import annotations

import logging
import re
import tempfile
import traceback
from collections.abc import Iterable

import dagster as dg

# Dagster's console logger, its log-record attribute and error type (no public API): the logger
# is Dagster's own with one filter. Can go when Dagster shows a Failure without its stack trace.
from dagster._core.log_manager import LOG_RECORD_EVENT_ATTR
from dagster._core.utils import coerce_valid_log_level
from dagster._utils.error import SerializableErrorInfo
from dagster._utils.log import create_console_logger

FAILURE = dg.Failure.__name__


def failure_text(data: object) -> str | None:
    """The message of a step or run failure (`event.event_specific_data`), or None if it has none.

    A `dg.Failure` is its description; another error is its type and message, taken from the
    exception user code raised when Dagster wrapped it.
    """
    error: SerializableErrorInfo | None = getattr(data, "error", None)
    if error is None:
        return None
    user = getattr(data, "user_failure_data", None)
    if user is not None and user.description:
        return user.description.strip()
    while error.cls_name != FAILURE and error.cause is not None and _wrapped(error):
        error = error.cause
    text = error.message.strip()
    if error.cls_name == FAILURE:
        head, _, rest = text.partition(": ")
        text = rest if head.endswith(f".{FAILURE}") or head == FAILURE else text
    return text


PROJECT_ERRORS = ("StoreError", "SourceError", "CredentialsError", "UniverseError")
"""The project's own errors, whose message already says what and where."""


def one_line(text: str) -> str:
    """A failure's first line, without the class name of one of the project's own errors."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    head, sep, rest = first.partition(": ")
    if sep and head.rsplit(".", 1)[-1] in PROJECT_ERRORS:
        return rest
    return first.rstrip(":")


def _wrapped(error: SerializableErrorInfo) -> bool:
    """Dagster's wrapper around an exception raised in user code ("Error occurred while ...")."""
    return (error.cls_name or "").startswith("Dagster") and error.cls_name.endswith("Error")


def failure_lines(events: Iterable[dg.DagsterEvent]) -> list[str]:
    """Each failed step's message (`failure_text`), for the lines a failed run prints."""
    lines = []
    for event in events:
        if event.is_step_failure and event.step_failure_data:
            text = failure_text(event.step_failure_data)
            if text:
                lines.append(text)
    return lines


def _intended(data: object) -> bool:
    """A failure raised on purpose (`dg.Failure`): a step's, or a run's whose error is one."""
    if getattr(data, "user_failure_data", None) is not None:
        return True
    error = getattr(data, "error", None)
    return error is not None and error.cls_name == FAILURE


def _without_failure_stack(record: logging.LogRecord) -> bool:
    """Replaces the stack trace Dagster appends to a failure event's line by the failure's
    message, when the failure was raised on purpose; every record is kept."""
    event = getattr(record, LOG_RECORD_EVENT_ATTR, None)
    data = getattr(event, "event_specific_data", None)
    error = getattr(data, "error", None)
    if error is None or not _intended(data):
        return True
    shown = "\n\n" + getattr(data, "error_display_string", error.to_string())
    message = str(record.msg)
    if message.endswith(shown):
        record.msg = message[: -len(shown)] + "\n" + (failure_text(data) or error.message.strip())
    return True


@dg.logger(
    config_schema={
        "log_level": dg.Field(
            str, is_required=False, default_value="INFO", description="The logger's threshold."
        ),
        "name": dg.Field(
            str, is_required=False, default_value="dagster", description="The logger's name."
        ),
    },
    description="Dagster's colored console logger; a dg.Failure shows its message, no stack.",
)
def console_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = create_console_logger(
        name=init_context.logger_config["name"],
        level=coerce_valid_log_level(init_context.logger_config["log_level"]),
    )
    logger.addFilter(_without_failure_stack)
    return logger


def crash_line(error: BaseException) -> str:
    """One line for an error the command could not go on after: its root cause (the innermost
    exception it came from, any password in a URL hidden), and where the whole traceback went."""
    root = error
    while True:
        # SQLAlchemy keeps the driver's exception as `orig` (and usually as the cause too).
        inner = root.__cause__ or getattr(root, "orig", None)
        if inner is None and not root.__suppress_context__:
            inner = root.__context__
        if not isinstance(inner, BaseException):
            break
        root = inner
    text = " ".join(str(root).split()) or type(root).__name__
    text = _PASSWORD.sub(r"\1***@", text)
    where = "Dagster's storage" if _from_storage(error) else type(error).__name__
    with tempfile.NamedTemporaryFile(
        "w", prefix="breadth-assets-", suffix=".log", delete=False
    ) as log:
        traceback.print_exception(error, file=log)
    return f"{where}: {type(root).__name__}: {text} (traceback: {log.name})"


_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


def _from_storage(error: BaseException) -> bool:
    """Raised by Dagster's instance storage: SQLAlchemy, SQLite, PostgreSQL or Dagster's own."""
    seen: BaseException | None = error
    while seen is not None:
        module = type(seen).__module__
        if module.startswith(("sqlalchemy", "sqlite3", "psycopg2", "dagster_postgres")):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
