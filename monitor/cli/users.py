"""``monitor users``: the web inbox's accounts (add, list, disable, password).

A password is typed twice at a hidden prompt, or read from ``--password-file`` (its first
line ending is not part of it, so ``echo secret > file`` works); it is never printed, logged
or passed as an argument (a shell history and ``ps`` would show it).
Exit codes: 0 done, 1 cannot be done (unknown user, name taken), 2 bad usage (a password the
rules refuse, a bad name or file).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

import click

from monitor.cli.kit import config_option, errors_to_exit_codes, opened

_ROLES = ("staff", "lead", "admin")  # monitor.accounts.ROLES; not imported: --help stays quick

password_file_option = click.option(
    "--password-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read the password from this file (else it is asked for twice, hidden).")


@click.group("users")
def users() -> None:
    """Accounts of the web inbox. staff work cases; leads also assign and see reports; admins
    also manage users, silences and dead deliveries. Accounts are disabled, never deleted."""


@users.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(_ROLES), help="What they may do.")
@password_file_option
@config_option
@errors_to_exit_codes
def add(name: str, role: str, password_file: Path | None, config_path: Path) -> None:
    """Add an account NAME with a password of at least 12 characters."""
    from monitor import accounts

    _checked(accounts.check_name, name, "NAME")
    with opened(config_path) as (_config, store):
        if accounts.get_user(store, name) is not None:  # before asking for a password
            raise accounts.AccountError(f"there is already a user named {name!r}")
        password = _password(password_file)
        _checked(accounts.check_password, password, "password")
        accounts.add_user(store, name, role, password, datetime.now(UTC))
    click.echo(f"user {name} added ({role})")


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts (UTC times).")
@config_option
@errors_to_exit_codes
def list_(as_json: bool, config_path: Path) -> None:
    """Every account, disabled ones too, with its last login."""
    from monitor import accounts

    with opened(config_path) as (config, store):
        found = accounts.list_users(store)
    if as_json:
        click.echo(json.dumps([{"name": u.name, "role": u.role, "disabled": u.disabled,
                                "disabled_at": _iso(u.disabled_at),
                                "created_at": _iso(u.created_at),
                                "password_changed_at": _iso(u.password_changed_at),
                                "last_login_at": _iso(u.last_login_at),
                                "failed_logins": u.failed_logins} for u in found],
                              indent=2, sort_keys=True))
        return
    if not found:
        click.echo("no users")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("name", "role", "state", "last login"):
        table.add_column(column, no_wrap=True)
    for u in found:
        state = f"disabled {_time(u.disabled_at, config.timezone)}" if u.disabled else "active"
        table.add_row(u.name, u.role, state, _time(u.last_login_at, config.timezone))
    Console(highlight=False, soft_wrap=True, no_color=not sys.stdout.isatty()).print(table)


@users.command("disable")
@click.argument("name")
@config_option
@errors_to_exit_codes
def disable(name: str, config_path: Path) -> None:
    """Refuse NAME's logins from now on. The account stays (case histories name it)."""
    from monitor import accounts

    now = datetime.now(UTC)
    with opened(config_path) as (config, store):
        when = accounts.disable_user(store, name, now)
    click.echo(f"user {name} disabled" if when == now else
               f"user {name} was already disabled ({_time(when, config.timezone)})")


@users.command("password")
@click.argument("name")
@password_file_option
@config_option
@errors_to_exit_codes
def password(name: str, password_file: Path | None, config_path: Path) -> None:
    """Set NAME's password (their failed logins are cleared)."""
    from monitor import accounts

    with opened(config_path) as (_config, store):
        if accounts.get_user(store, name) is None:  # before asking for a password
            raise accounts.AccountError(f"no user named {name!r}")
        new = _password(password_file)
        _checked(accounts.check_password, new, "password")
        accounts.set_password(store, name, new, datetime.now(UTC))
    click.echo(f"password of user {name} changed")


def _password(path: Path | None) -> str:
    if path is None:
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise click.BadParameter("not UTF-8 text", param_hint="--password-file") from None
    return text.removesuffix("\n").removesuffix("\r")


def _checked(check: Any, value: str, what: str) -> None:
    """A rule of ``monitor.accounts`` broken: bad usage (exit 2), the rule said."""
    from monitor.accounts import InvalidAccount

    try:
        check(value)
    except InvalidAccount as error:
        raise click.BadParameter(str(error), param_hint=what) from None


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def _time(value: datetime | None, zone: tzinfo) -> str:
    """``2026-10-25 02:30 CEST``: local, and which side of a DST change it is on."""
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z") if value else "-"
