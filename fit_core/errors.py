"""Exit codes (a contract) and the exceptions that map onto them."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """`fit` exit codes. Alerts are data, never a non-zero exit."""

    OK = 0  # everything synced
    PARTIAL = 1  # some records or sources failed; the rest went through
    USAGE = 2  # bad command line
    CONFIG = 3  # bad config, missing secret, 401/403 from a source
    UNAVAILABLE = 4  # sources unreachable
    LOCKED = 5  # another `fit sync` holds the lock
    INTERNAL = 6  # a bug: please report it


class FitError(Exception):
    """An error with a message for the user and the exit code it maps to.

    Messages name what went wrong and the next thing to do; they never contain patient data or
    secrets.
    """

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class ConfigError(FitError):
    """Bad or missing configuration, a missing secret, or a source refusing our credentials."""

    exit_code = ExitCode.CONFIG


class SourceUnavailable(FitError):
    """A source could not be reached (network down, server error after retries)."""

    exit_code = ExitCode.UNAVAILABLE


class SourceError(FitError):
    """A source answered, but not in a way we can go on with for this run (e.g. REDCap's 429)."""

    exit_code = ExitCode.PARTIAL


class LockedError(FitError):
    """Another sync holds the lock."""

    exit_code = ExitCode.LOCKED


class PluginError(FitError):
    """A plugin could not be loaded, or two plugins claim the same name."""

    exit_code = ExitCode.CONFIG
