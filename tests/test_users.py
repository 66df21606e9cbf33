"""Accounts of the web inbox (issue 17's first brick): `monitor users ...`, argon2 hashes,
logins refused and slowed down, the roles table. A real store on SQLite and PostgreSQL, real
argon2 (cheap parameters where many hashes are made, the defaults through the CLI)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher, extract_parameters
from click.testing import CliRunner

from monitor import accounts
from monitor import config as configuration
from monitor.accounts import (
    ACTIONS,
    HASHER,
    MAX_DELAY,
    ROLES,
    SLOW_AFTER,
    AccountError,
    InvalidAccount,
    User,
    check_login,
    delay_after,
    may,
)
from monitor.cli import users as users_cli
from monitor.store import Store

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # argon2id all the same


@pytest.fixture
def project(make_project, store_url: str):
    path = make_project([{"name": "blog", "kind": "rss", "url": "https://x.test/feed"}],
                        store=store_url, timezone="Europe/Berlin")
    store = Store(configuration.load(path).store_url)
    yield path, store
    store.close()


@pytest.fixture
def store(store_url: str):
    opened = Store(store_url)
    yield opened
    opened.close()


def cli(path: Path, *args: str, input: str | None = None):
    return CliRunner().invoke(users_cli.users, [args[0], "--config", str(path), *args[1:]],
                              input=input)


def typed(password: str) -> str:
    """What a person types at the prompt: the password, then again to confirm it."""
    return f"{password}\n{password}\n"


def refused(result, code: int) -> bool:
    """Exited with ``code`` on purpose: no traceback."""
    return result.exit_code == code and isinstance(result.exception, SystemExit)


# --- the commands ----------------------------------------------------------------------------

def test_add_list_disable_and_password_through_the_cli(project, tmp_path: Path) -> None:
    path, store = project
    added = cli(path, "add", "ana", "--role", "lead", input=typed(PASSWORD))
    assert added.exit_code == 0, added.output
    assert "user ana added (lead)" in added.output and PASSWORD not in added.output
    assert cli(path, "add", "bo", "--role", "staff", input=typed(PASSWORD)).exit_code == 0
    assert check_login(store, "ana", PASSWORD, NOW) is not None

    listed = cli(path, "list")
    assert listed.exit_code == 0
    lines = listed.output.splitlines()
    assert lines[0].split() == ["name", "role", "state", "last", "login"]
    assert lines[1].split()[:3] == ["ana", "lead", "active"]
    assert lines[1].split()[3:] == ["2026-12-03", "10:00", "CET"]  # the configured zone
    assert lines[2].split() == ["bo", "staff", "active", "-"]

    disabled = cli(path, "disable", "bo")
    assert disabled.exit_code == 0 and "user bo disabled" in disabled.output
    again = cli(path, "disable", "bo")
    assert again.exit_code == 0 and "already disabled" in again.output
    assert check_login(store, "bo", PASSWORD, NOW) is None

    file = tmp_path / "new-password"
    file.write_text("a brand new passphrase\n")  # the line ending is not part of it
    changed = cli(path, "password", "ana", "--password-file", str(file))
    assert changed.exit_code == 0 and "password of user ana changed" in changed.output
    assert check_login(store, "ana", PASSWORD, NOW) is None
    assert check_login(store, "ana", "a brand new passphrase", NOW) is not None

    data = json.loads(cli(path, "list", "--json").output)
    assert [(u["name"], u["role"], u["disabled"]) for u in data] == [
        ("ana", "lead", False), ("bo", "staff", True)]
    assert data[0]["last_login_at"] == NOW.isoformat()
    assert all("password_hash" not in u for u in data)
    assert store.get_user("bo") is not None  # disabled, never deleted


def test_what_cannot_be_done_exits_1_and_bad_usage_2(project, tmp_path: Path) -> None:
    path, store = project
    assert cli(path, "list").output.strip() == "no users"
    assert cli(path, "add", "ana", "--role", "admin", input=typed(PASSWORD)).exit_code == 0
    taken = cli(path, "add", "ana", "--role", "staff")  # refused before asking a password
    assert refused(taken, 1) and "already a user named 'ana'" in taken.output
    for args in (("disable", "zed"), ("password", "zed")):
        unknown = cli(path, *args)
        assert refused(unknown, 1) and "no user named 'zed'" in unknown.output

    short = cli(path, "add", "bo", "--role", "staff", input=typed("too short"))
    assert refused(short, 2) and "at least 12 characters (this one has 9)" in short.output
    assert "too short" not in short.output.replace("Password: ", "")
    assert store.get_user("bo") is None
    file = tmp_path / "pw"
    file.write_text("short\n")
    assert refused(cli(path, "password", "ana", "--password-file", str(file)), 2)
    assert refused(cli(path, "add", "x", "--role", "boss", "--password-file", str(file)), 2)
    assert refused(cli(path, "add", " ana", "--role", "staff"), 2)
    assert refused(cli(path, "add", "two\nlines", "--role", "staff"), 2)
    assert refused(cli(path, "add", "bo", "--role", "staff", "--password-file",
                       str(tmp_path / "missing")), 2)
    file.write_bytes(b"\xff" * 20)
    assert refused(cli(path, "add", "bo", "--role", "staff", "--password-file", str(file)), 2)


def test_the_hash_stored_is_argon2id_and_not_the_password(project, tmp_path: Path) -> None:
    path, store = project
    file = tmp_path / "pw"
    file.write_text(PASSWORD)
    assert cli(path, "add", "ana", "--role", "staff", "--password-file", str(file)).exit_code \
        == 0
    stored = store.get_user("ana")["password_hash"]
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert extract_parameters(stored) == HASHER._parameters  # the defaults, not cheap ones
    assert HASHER.verify(stored, PASSWORD)


def test_the_cli_offers_the_roles_accounts_knows() -> None:
    assert users_cli._ROLES == ROLES


# --- logging in ------------------------------------------------------------------------------

def test_login_ok_wrong_unknown_and_disabled(store: Store,
                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="monitor.accounts")
    accounts.add_user(store, "ana", "staff", PASSWORD, NOW, hasher=FAST)
    user = check_login(store, "ana", PASSWORD, NOW + timedelta(minutes=1), hasher=FAST)
    assert user == accounts.get_user(store, "ana")
    assert isinstance(user, User) and (user.name, user.role, user.disabled) == \
        ("ana", "staff", False)
    assert user.last_login_at == NOW + timedelta(minutes=1)

    assert check_login(store, "ana", "wrong password!", NOW, hasher=FAST) is None
    assert store.get_user("ana")["failed_logins"] == 1
    assert check_login(store, "nobody", PASSWORD, NOW, hasher=FAST) is None
    accounts.disable_user(store, "ana", NOW)
    assert check_login(store, "ana", PASSWORD, NOW, hasher=FAST) is None

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["login failed: wrong password for user 'ana' (1 in a row)",
                        "login refused: no user named 'nobody'",
                        "login refused: user 'ana' is disabled"]
    assert PASSWORD not in caplog.text and "wrong password!" not in caplog.text


def test_failed_logins_slow_a_name_down(store: Store) -> None:
    accounts.add_user(store, "ana", "staff", PASSWORD, NOW, hasher=FAST)
    at = NOW
    for _ in range(SLOW_AFTER):  # no wait before these
        assert check_login(store, "ana", "a wrong guess", at, hasher=FAST) is None
    assert store.get_user("ana")["failed_logins"] == SLOW_AFTER
    # now one second, even for the right password; a refused try is not counted
    assert check_login(store, "ana", PASSWORD, at + timedelta(seconds=0.5), hasher=FAST) is None
    assert store.get_user("ana")["failed_logins"] == SLOW_AFTER
    assert check_login(store, "ana", "a wrong guess", at + timedelta(seconds=1),
                       hasher=FAST) is None  # the sixth: two seconds from then
    at += timedelta(seconds=1)
    assert check_login(store, "ana", PASSWORD, at + timedelta(seconds=1.9), hasher=FAST) is None
    assert check_login(store, "ana", PASSWORD, at + timedelta(seconds=2), hasher=FAST) \
        is not None
    assert store.get_user("ana")["failed_logins"] == 0  # a good login starts the count again
    assert check_login(store, "ana", "a wrong guess", at, hasher=FAST) is None
    assert check_login(store, "ana", PASSWORD, at, hasher=FAST) is not None  # no wait after one


def test_a_new_password_clears_the_failures(store: Store) -> None:
    accounts.add_user(store, "ana", "staff", PASSWORD, NOW, hasher=FAST)
    for _ in range(SLOW_AFTER + 3):
        check_login(store, "ana", "a wrong guess", NOW, hasher=FAST)
    accounts.set_password(store, "ana", "the admin's new one", NOW, hasher=FAST)
    assert check_login(store, "ana", "the admin's new one", NOW, hasher=FAST) is not None


def test_the_delay_doubles_up_to_five_minutes() -> None:
    assert [delay_after(n).total_seconds() for n in range(SLOW_AFTER + 4)] == \
        [0, 0, 0, 0, 0, 1, 2, 4, 8]
    assert delay_after(SLOW_AFTER + 8) == timedelta(seconds=256)
    assert delay_after(SLOW_AFTER + 9) == MAX_DELAY == delay_after(10**6)


def test_a_hash_with_old_parameters_is_redone_at_login(store: Store) -> None:
    accounts.add_user(store, "ana", "staff", PASSWORD, NOW, hasher=FAST)
    old = store.get_user("ana")
    stronger = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)
    assert check_login(store, "ana", PASSWORD, NOW + timedelta(hours=1), hasher=stronger)
    new = store.get_user("ana")
    assert new["password_hash"] != old["password_hash"]
    assert extract_parameters(new["password_hash"]) == stronger._parameters
    assert new["password_changed_at"] == old["password_changed_at"]  # the same password
    assert check_login(store, "ana", PASSWORD, NOW, hasher=stronger) is not None
    assert not stronger.check_needs_rehash(store.get_user("ana")["password_hash"])


def test_account_rules(store: Store) -> None:
    with pytest.raises(InvalidAccount, match="at least 12 characters"):
        accounts.add_user(store, "ana", "staff", "x" * 11, NOW, hasher=FAST)
    with pytest.raises(InvalidAccount, match="unknown role"):
        accounts.add_user(store, "ana", "boss", PASSWORD, NOW, hasher=FAST)
    with pytest.raises(InvalidAccount, match="at most 100"):
        accounts.add_user(store, "a" * 101, "staff", PASSWORD, NOW, hasher=FAST)
    assert store.list_users() == []
    accounts.add_user(store, "ana", "staff", "x" * 12, NOW, hasher=FAST)
    with pytest.raises(AccountError, match="already a user named 'ana'"):
        accounts.add_user(store, "ana", "admin", PASSWORD, NOW, hasher=FAST)
    with pytest.raises(AccountError, match="no user named"):
        accounts.set_password(store, "zed", PASSWORD, NOW, hasher=FAST)


# --- roles -----------------------------------------------------------------------------------

def test_the_roles_table() -> None:
    allowed = {role: {action for action in ACTIONS if may(role, action)} for role in ROLES}
    assert allowed == {
        "staff": {"work_case"},
        "lead": {"work_case", "assign", "see_reports"},
        "admin": set(ACTIONS),
    }
    assert set(ACTIONS) == {"work_case", "assign", "see_reports", "manage_users",
                            "manage_silences", "manage_deliveries"}
    assert not may("owner", "work_case")  # a role this monitor does not know may do nothing
    with pytest.raises(ValueError, match="unknown action"):
        may("admin", "delete_everything")
    admin = User("ana", "admin", NOW, NOW)
    assert admin.may("manage_users")
    assert not User("ana", "admin", NOW, NOW, disabled_at=NOW).may("work_case")


def test_the_cli_ends_the_web_sessions_of_an_account_disabled_or_given_a_new_password(
        tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from monitor import accounts
    from monitor.store import Store

    with Store(f"sqlite:///{tmp_path / 'm.db'}") as store:
        now = datetime.now(UTC)
        for name in ("ana", "bo"):
            accounts.add_user(store, name, "staff", "a long enough password", now)
            store.add_session(f"{name}-session", name, "csrf", now)
        accounts.set_password(store, "ana", "another long password", now)
        accounts.disable_user(store, "bo", now)
        assert store.get_session("ana-session")["ended_at"] == now
        assert store.get_session("bo-session")["ended_at"] == now
