"""What the ``monitor`` commands share: the lazy command group, the --config option, errors
turned into exit codes, the config with its store opened and --since read, so each family of
commands says them once."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import wraps
from pathlib import Path
from typing import Any

import click

from monitor.errors import ConfigError, MonitorError


class LazyGroup(click.Group):
    """A group whose listed subcommands are imported only when run or listed in --help, so
    a quick command (``monitor score``) does not pay for every other command's imports."""

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})  # name -> "module:attribute"

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy and name not in self.commands:
            module, attribute = self.lazy[name].split(":")
            self.add_command(getattr(importlib.import_module(module), attribute), name)
        return super().get_command(ctx, name)


config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
    default="config.yaml", show_default=True, envvar="MONITOR_CONFIG",
    help="The config file; paths inside it are relative to it. [env: MONITOR_CONFIG]")


jobs_option = click.option(
    "--jobs", type=click.IntRange(1), metavar="N",
    help="Worker processes when there is much to score (the first batch is scored here, "
    "the rest in the workers) [default: one per CPU]; 1 scores all in this process.")


def checked_name(name: str, what: str) -> str:
    """A person's name as given (``what``: the option it came from, for the message), refused
    when blank, padded or holding control characters: without a ``team:`` any name is taken,
    and such a typo would be stored for good."""
    if not name.strip():
        raise click.BadParameter("a name cannot be blank", param_hint=what)
    if name != name.strip() or any(not c.isprintable() for c in name):
        raise click.BadParameter(f"{name!r}: a name cannot hold control characters or "
                                 "begin or end with spaces", param_hint=what)
    return name


def errors_to_exit_codes(command: Callable[..., Any]) -> Callable[..., Any]:
    """A configuration mistake exits 2, one line per problem; any other error we raise on
    purpose (the store, an illegal case transition) exits 1 with its message."""
    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ConfigError as error:
            for problem in error.problems:
                click.echo(f"error: {problem}", err=True)
            sys.exit(2)
        except MonitorError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(1)
        except BrokenPipeError:  # the reader stopped reading (``| head``): nothing to say
            _quiet_stdout()
            sys.exit(0)
        except Exception as error:  # a full disk, a store gone mid-command: a message
            if not _outside_failure(error):
                raise
            from monitor import logs

            click.echo(logs.mask(f"error: {_first_line(error)} (the unfinished write was rolled "
                                 "back: run it again once that is fixed)"), err=True)
            sys.exit(1)
    return wrapper


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush of what the closed pipe
    never took does not print a second BrokenPipeError on the way out."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _outside_failure(error: Exception) -> bool:
    """The machine's or the database's failure, not ours: an OSError with an errno (ENOSPC,
    EFBIG, EIO...) or a SQLAlchemy database error (checked by module, so the commands that
    never open a store do not import SQLAlchemy to start)."""
    if isinstance(error, OSError):
        return error.errno is not None
    return any(kind.__module__ == "sqlalchemy.exc" and kind.__name__ == "DBAPIError"
               for kind in type(error).__mro__)


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


@contextmanager
def opened(config_path: Path) -> Iterator[tuple[Any, Any]]:
    """(config, store) for a command, the store closed afterwards; the config's secrets are
    masked in log lines from here on (a stored error may quote a URL with a token in it)."""
    from monitor import config as configuration
    from monitor import logs
    from monitor.store import Store

    config = configuration.load(config_path)
    logs.protect(config)
    store = Store(config.store_url)
    try:
        yield config, store
    finally:
        store.close()


def parse_since(value: str, zone: Any) -> datetime:
    """--since as a UTC instant: a naive date or time is in ``zone`` (a date is read first, so
    20240501 is that day, not 20,240,501 seconds ago); an age (7d) counts back from now."""
    from monitor.units import parse_duration

    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    try:
        if parsed is None:
            return datetime.now(UTC) - timedelta(seconds=parse_duration(value))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=zone)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # not an age either, or beyond the calendar's ends
        raise click.BadParameter(f"{value!r} is not a date, a time or an age like 7d",
                                 param_hint="--since") from None

