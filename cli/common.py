"""Helpers every CLI module shares: one-line errors with exit code 2, consoles.

Called by the command modules in ``cli/``. Bad input (``InputError`` or a
``ValueError`` from the pure packages) prints ``error: <message>`` on one line
to stderr and exits 2; a retryable failure exits 3; any other
``PermanentError`` (a runtime failure: 403, a rejected write) exits 1 with
one line; nothing else is caught. Also: ``atomic_write`` (nothing
half-written), ``parse_labels`` (``--label k=v``) and ``parse_timestamp``
(flags that take an ISO 8601 time).
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import pandas as pd
import typer
from pydantic import ValidationError
from rich.console import Console

from controller.errors import InputError, PermanentError, RetryableError

P = ParamSpec("P")
R = TypeVar("R")

console = Console()
err_console = Console(stderr=True)

EXIT_RUNTIME = 1
EXIT_INPUT = 2
EXIT_RETRYABLE = 3


def validation_message(exc: ValidationError) -> str:
    """One line from a pydantic ValidationError: 'field.path: message'."""
    first = exc.errors()[0]
    loc = ".".join(str(part) for part in first.get("loc", ()) if part != "__root__")
    msg = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc and not msg.startswith(loc) else msg


def fail(message: str, code: int = EXIT_INPUT) -> typer.Exit:
    """Print a one-line error and return the Exit to raise."""
    err_console.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def guarded(func: Callable[P, R]) -> Callable[P, R]:
    """Turn bad input into a one-line error and exit code 2 (3 for retryable failures)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ValidationError as exc:
            raise fail(validation_message(exc)) from None
        except (InputError, ValueError) as exc:
            raise fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
        except RetryableError as exc:
            raise fail(str(exc), EXIT_RETRYABLE) from None
        except PermanentError as exc:
            raise fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, EXIT_RUNTIME) from None

    return wrapper


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Write ``path`` through a temporary file in its directory, renamed into place (never half-written)."""
    target = Path(path)
    if not target.resolve().parent.is_dir():
        raise InputError(f"directory {target.parent} does not exist", source=str(target))
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.resolve().parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def parse_labels(items: list[str], field: str = "--label") -> dict[str, str]:
    """``["team=slots", "tier=gold"]`` -> a dict; InputError naming ``field`` on anything but key=value."""
    labels: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"expected key=value, got {item!r}", field=field)
        labels[key.strip()] = value.strip()
    return labels


def parse_timestamp(text: str, field: str, *, naive_utc: bool = False) -> pd.Timestamp:
    """An ISO 8601 flag value as a UTC Timestamp; InputError naming ``field`` when it is not one.

    Without a zone it is an error, or UTC with ``naive_utc`` (the trace format's rule).
    """
    try:
        ts = pd.Timestamp(text.strip())
    except (ValueError, TypeError):
        ts = None
    if ts is None or ts is pd.NaT or not text.strip():
        raise InputError(f"expected an ISO 8601 timestamp such as 2026-11-27T20:00:00Z, got {text!r}", field=field)
    if ts.tzinfo is None:
        if not naive_utc:
            raise InputError(f"expected a timestamp with a zone, e.g. 2026-11-27T20:00:00Z, got {text!r}", field=field)
        return ts.tz_localize("UTC")
    return ts.tz_convert("UTC")
