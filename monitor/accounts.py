"""Accounts of the web inbox, without the web: who may do what, the password rules, argon2
hashes, and logins that a guesser cannot hurry.

Why here and not in the web layer: the CLI (``monitor users``) and the web share these rules,
and they are tested without a server. The store keeps the rows (``monitor.store.users``);
nothing here is ever deleted, because a case's history names its actors: an account that
leaves is disabled.

A refused login looks the same whatever the reason (unknown name, wrong password, disabled,
slowed down): ``None``, after about the same work (one argon2 verification), so neither the
answer nor its time tells a guesser which names exist. Each refusal is logged at WARNING
with the name, never the password.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from monitor.errors import MonitorError

log = logging.getLogger(__name__)

ROLES = ("staff", "lead", "admin")
"""From least to most trusted: each role may do what the ones before it may."""

ACTIONS = {  # action -> the least role that may do it
    "work_case": "staff",
    "assign": "lead",
    "see_reports": "lead",
    "manage_users": "admin",
    "manage_silences": "admin",
    "manage_deliveries": "admin",
}

MIN_PASSWORD = 12
"""Characters a password needs at least: length is what makes a guess unlikely."""

MAX_NAME = 100  # the width of the name columns (users, case_events.actor, cases.assignee)
NAME = re.compile(r"[a-z0-9._-]+")
"""What a new account's name is made of: one way to write each name (no "ANA" beside "ana"),
nothing a page, a URL or a log line must escape. Accounts made before the rule keep working."""

SLOW_AFTER = 5
"""Failed logins in a row a name may have before each further try must wait."""
FIRST_DELAY = timedelta(seconds=1)  # the wait after SLOW_AFTER failures, doubling with each one
MAX_DELAY = timedelta(minutes=5)

HASHER = PasswordHasher()
"""argon2id with argon2-cffi's defaults (RFC 9106's low-memory profile); a hash made with
other parameters is redone at the next good login."""


class AccountError(MonitorError):
    """An account command that cannot be done: an unknown name, a name taken (exit 1)."""


class InvalidAccount(ValueError):
    """A name, role or password the rules refuse (the CLI's bad usage, exit 2)."""


@dataclass(frozen=True, slots=True)
class User:
    """An account as the rest of the monitor sees it: never with its hash."""

    name: str
    role: str
    created_at: datetime
    password_changed_at: datetime
    disabled_at: datetime | None = None
    last_login_at: datetime | None = None
    failed_logins: int = 0

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None

    def may(self, action: str) -> bool:
        return not self.disabled and may(self.role, action)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> User:
        return cls(name=row["name"], role=row["role"], created_at=row["created_at"],
                   password_changed_at=row["password_changed_at"],
                   disabled_at=row["disabled_at"], last_login_at=row["last_login_at"],
                   failed_logins=row["failed_logins"] or 0)


def may(role: str, action: str) -> bool:
    """Whether ``role`` may do ``action`` (one of ``ACTIONS``). An unknown role may do nothing
    (a row written by a newer monitor); an unknown action is a bug, and raises."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}: one of {', '.join(ACTIONS)}")
    return role in ROLES and ROLES.index(role) >= ROLES.index(ACTIONS[action])


# --- rules -----------------------------------------------------------------------------------

def check_name(name: str) -> str:
    """``name`` if a new account may have it: it is shown in case histories, lists and URLs,
    so lowercase letters, digits, '.', '_' and '-' (``NAME``), at most ``MAX_NAME`` long."""
    if not name or name != name.strip():
        raise InvalidAccount("a user name may not be empty or start or end with a space")
    if len(name) > MAX_NAME:
        raise InvalidAccount(f"a user name has at most {MAX_NAME} characters")
    if not NAME.fullmatch(name):
        raise InvalidAccount(f"a user name is made of lowercase letters a-z, digits, '.', '_' "
                             f"and '-' ({shown_name(name)} is not)")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidAccount(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    return role


def check_password(password: str) -> str:
    """``password`` if the rules take it: at least ``MIN_PASSWORD`` characters."""
    if len(password) < MIN_PASSWORD:
        raise InvalidAccount(f"a password needs at least {MIN_PASSWORD} characters "
                             f"(this one has {len(password)})")
    return password


def hash_password(password: str, hasher: PasswordHasher | None = None) -> str:
    """The argon2id hash (a PHC string with its own salt and parameters) to store."""
    return (hasher or HASHER).hash(_bytes(password))


# --- accounts --------------------------------------------------------------------------------

def add_user(store: Any, name: str, role: str, password: str, now: datetime,
             hasher: PasswordHasher | None = None) -> User:
    """A new account, its password checked against the rules and hashed."""
    check_name(name)
    check_role(role)
    check_password(password)
    taken = store.user_named_like(name)
    if taken is not None or not store.add_user(name, role, hash_password(password, hasher),
                                               now):
        raise AccountError(f"there is already a user named {taken or name!r} (disabled or "
                           "not, in capitals or not: names are never reused, a case history "
                           "may name them)")
    log.info("user %s added (%s)", shown_name(name), role)
    return User.from_row(store.get_user(name))


def get_user(store: Any, name: str) -> User | None:
    row = store.get_user(name)
    return None if row is None else User.from_row(row)


def list_users(store: Any) -> list[User]:
    return [User.from_row(row) for row in store.list_users()]


def set_password(store: Any, name: str, password: str, now: datetime,
                 hasher: PasswordHasher | None = None) -> None:
    """Replace ``name``'s password (and clear its failed logins); its web sessions end, so
    whoever had the old one is logged out."""
    check_password(password)
    if not store.set_password(name, hash_password(password, hasher), now):
        raise AccountError(f"no user named {name!r}")
    store.end_sessions(now, user=name)
    log.info("password of user %s changed", shown_name(name))


def disable_user(store: Any, name: str, now: datetime) -> datetime:
    """Refuse ``name``'s logins from now on; when it was disabled (earlier if it was already).
    The account stays, so the history that names it still reads."""
    when = store.disable_user(name, now)
    if when is None:
        raise AccountError(f"no user named {name!r}")
    store.end_sessions(now, user=name)
    log.info("user %s disabled", shown_name(name))
    return when


# --- logging in ------------------------------------------------------------------------------

def delay_after(failures: int) -> timedelta:
    """How long a name must wait after ``failures`` failed logins in a row: nothing up to
    ``SLOW_AFTER - 1``, then ``FIRST_DELAY`` doubling with each failure, at most ``MAX_DELAY``."""
    if failures < SLOW_AFTER:
        return timedelta(0)
    return min(FIRST_DELAY * 2 ** min(failures - SLOW_AFTER, 32), MAX_DELAY)


def next_try_at(failures: int, last_failed_at: datetime | None) -> datetime | None:
    """From when the next login of a name is tried; None: right away."""
    wait = delay_after(failures)
    if not wait or last_failed_at is None:
        return None
    return last_failed_at + wait


def check_login(store: Any, name: str, password: str, now: datetime,
                hasher: PasswordHasher | None = None) -> User | None:
    """The account if ``password`` is ``name``'s and it may log in now; else None (why is
    logged, not returned). A try while the name must wait is refused unchecked and not counted,
    so a guesser gets one guess per wait however fast they send; a good login clears the count
    and redoes a hash made with older parameters."""
    hasher = hasher or HASHER
    row = store.get_user(name)
    if row is None:
        _verify(hasher, _dummy_hash(hasher), password)  # the time a real account would take
        log.warning("login refused: no user named %s", shown_name(name))
        return None
    if row["disabled_at"] is not None:
        _verify(hasher, _dummy_hash(hasher), password)
        log.warning("login refused: user %s is disabled", shown_name(name))
        return None
    failures = row["failed_logins"] or 0
    wait_until = next_try_at(failures, row["last_failed_at"])
    if wait_until is not None and now < wait_until:
        _verify(hasher, _dummy_hash(hasher), password)
        log.warning("login refused: user %s has %d failed logins in a row, next try from %s",
                    shown_name(name), failures, wait_until.isoformat(timespec="seconds"))
        return None
    if not _verify(hasher, row["password_hash"], password):
        store.record_login(name, ok=False, now=now)
        log.warning("login failed: wrong password for user %s (%d in a row)", shown_name(name),
                    failures + 1)
        return None
    if hasher.check_needs_rehash(row["password_hash"]):
        store.set_password(name, hash_password(password, hasher), now, rehash=True)
        log.info("password hash of user %s redone with the current parameters", shown_name(name))
    store.record_login(name, ok=True, now=now)
    log.info("login: user %s", shown_name(name))
    return User.from_row({**row, "failed_logins": 0, "last_login_at": now})


def _verify(hasher: PasswordHasher, stored: str, password: str) -> bool:
    try:
        return hasher.verify(stored, _bytes(password))
    except (VerificationError, InvalidHashError):  # a mismatch, or a row no hash of ours
        return False


@lru_cache(maxsize=8)
def _dummy_hash(hasher: PasswordHasher) -> str:
    """A hash of a random secret, made with ``hasher``'s parameters, to verify against when
    there is no real one: the refusal then costs what a wrong password costs."""
    return hasher.hash(secrets.token_urlsafe(32))


def _bytes(password: str) -> bytes:
    """UTF-8, lone surrogates kept (a form may send them): any str hashes, none raises."""
    return password.encode("utf-8", "surrogatepass")


def shown_name(name: str) -> str:
    """A name as a log line shows it: quoted, escaped (no forged lines), cut if long."""
    return repr(name[:MAX_NAME]) + ("..." if len(name) > MAX_NAME else "")
