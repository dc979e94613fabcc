"""Helpers every CLI module shares: one-line errors with exit code 2, consoles.

Called by the command modules in ``cli/``. Bad input (``InputError`` or a
``ValueError`` from the pure packages) prints ``error: <message>`` on one line
to stderr and exits 2; a retryable failure exits 3; nothing else is caught.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from controller.errors import InputError, RetryableError

P = ParamSpec("P")
R = TypeVar("R")

console = Console()
err_console = Console(stderr=True)

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

    return wrapper
