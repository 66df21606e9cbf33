"""The exceptions feedback-monitor raises, one tree so callers can catch at the right depth.

    MonitorError                 anything we raise on purpose
    ├── ConfigError(file, key)   a config, source or rule file is wrong  -> exit code 2
    ├── SourceError(retryable)   one source could not be collected        -> that source only
    ├── StoreError               the database is unusable (newer schema, unreachable)
    └── DeliveryError(retryable) a receiver could not take a flag
"""

from __future__ import annotations


class MonitorError(Exception):
    """Base of every error we raise on purpose."""


class ConfigError(MonitorError):
    """A mistake in a file the user wrote; the message names the file and the key path."""

    def __init__(self, message: str, file: str | None = None, key: str | None = None) -> None:
        self.file, self.key, self.message = file, key, message
        self.problems: tuple[ConfigError, ...] = (self,)
        super().__init__(": ".join(part for part in (file, key, message) if part))

    @classmethod
    def combine(cls, errors: list[ConfigError]) -> ConfigError:
        """One error that carries all of ``errors``, one per line (for ``monitor check``)."""
        flat = [p for e in errors for p in e.problems]
        if len(flat) == 1:
            return flat[0]
        combined = cls("\n".join(str(p) for p in flat))
        combined.problems = tuple(flat)
        return combined


class SourceError(MonitorError):
    """One source failed as a whole; ``retryable`` says a later pass may well succeed."""

    def __init__(self, message: str, retryable: bool = True) -> None:
        self.retryable = retryable
        super().__init__(message)


class StoreError(MonitorError):
    """The database cannot be used as it is."""


class DeliveryError(MonitorError):
    """A receiver refused or could not be reached."""

    def __init__(self, message: str, retryable: bool = True) -> None:
        self.retryable = retryable
        super().__init__(message)
