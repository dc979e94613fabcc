"""The Pitboss error vocabulary, in one place.

Every failure the control plane raises or catches is one of two kinds:

* ``RetryableError``: the world may change and the same call may then succeed
  (a timeout, a 5xx, a 409 conflict, Prometheus restarting, Alertmanager down).
  Callers retry with backoff and jitter, or hold and try again next cycle.
  Never scale *down* on a retryable error.
* ``PermanentError``: the same call will fail the same way until a person
  changes something (a 403, a 404, an invalid spec, a malformed file).
  Callers report it (condition, incident, one-line CLI error) and move on.

``InputError`` is the permanent error for bad user input (files, flags,
specs). Its message is one line that names the file or object, the row when
there is one, the field and what was expected; the CLI prints it and exits 2.

Pure packages (``forecasting``, ``controller.core``) do not import this
module: they raise ``ValueError`` with a message naming the field, which
callers treat as an ``InputError``.
"""

from __future__ import annotations


class PitbossError(Exception):
    """Base of every error Pitboss raises on purpose."""

    retryable: bool = False


class RetryableError(PitbossError):
    """A transient failure: retry later, hold state meanwhile."""

    retryable = True


class PermanentError(PitbossError):
    """A failure that repeats until a person changes something."""

    retryable = False


class InputError(PermanentError):
    """Bad user input: a file, a flag or a spec. Exit code 2 in the CLI."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        row: int | None = None,
        field: str | None = None,
    ) -> None:
        self.source = source
        self.row = row
        self.field = field
        parts = []
        if source:
            parts.append(source)
        if row is not None:
            parts.append(f"row {row}")
        if field:
            parts.append(f"field '{field}'")
        prefix = ", ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)


def is_retryable(exc: BaseException) -> bool:
    """True when ``exc`` is worth retrying (our own vocabulary, or a network timeout)."""
    if isinstance(exc, PitbossError):
        return exc.retryable
    return isinstance(exc, TimeoutError | ConnectionError)
