"""Properties of the parsers people feed by hand: durations, ``--since``, matchers and their
``KEY=VALUE`` syntax, config values and the webhook signature header. Each is tried on many
generated inputs (hypothesis): it gives a value or raises its documented error, never a
traceback, and the value means what the README says.

The ``@example``\\ s are the inputs that crashed or were wrongly read before they were fixed."""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo, available_timezones

import click
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from monitor.cli.kit import parse_since
from monitor.config import MainConfig, _expand, _validate
from monitor.errors import ConfigError
from monitor.matchers import LABELS, at_least, compile_matcher, glob
from monitor.model import SEVERITIES
from monitor.receivers.webhook import sign, verify
from monitor.registry import _duration
from monitor.route import parse_matchers
from monitor.units import LONGEST, Duration, TimeZoneName, parse_duration, spoken

FAST = settings(max_examples=100, deadline=None)  # the whole file in a few seconds
UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}  # as the README says
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Pacific/Kiritimati"]

DURATION = TypeAdapter(Duration)
anything = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(),
                     st.lists(st.text(), max_size=3), st.dictionaries(st.text(), st.text(),
                                                                      max_size=2))
written = st.from_regex(r"\A\s*[0-9]{1,400}(\.[0-9]{1,30})?\s*[smhdw]?\s*\Z")


# --- durations ------------------------------------------------------------------------------

@FAST
@given(st.one_of(anything, written))
@example(10**400)            # was OverflowError: int too large to convert to float
@example(float("nan"))       # was NaN seconds
@example(float("inf"))       # was endless
@example("9" * 400 + "d")    # was inf seconds
@example(-5)                 # was -5 seconds
@example(10**12)             # was fine here, and an OverflowError in timedelta later
def test_a_duration_is_seconds_or_a_value_error(value: Any) -> None:
    try:
        seconds = parse_duration(value)
    except ValueError:
        with pytest.raises(ValidationError):
            DURATION.validate_python(value)
        return
    assert isinstance(seconds, float) and 0 <= seconds <= LONGEST
    assert DURATION.validate_python(value) == seconds
    datetime.now(UTC) - timedelta(seconds=seconds)  # every duration is usable as an age


@FAST
@given(st.integers(0, 10**9), st.sampled_from(sorted(UNITS)), st.sampled_from(["", " ", "\t"]))
def test_a_written_duration_is_its_number_times_its_unit(number: int, unit: str,
                                                         blank: str) -> None:
    text = f"{blank}{number}{blank}{unit}{blank}"
    if number * UNITS[unit] > LONGEST:
        with pytest.raises(ValueError, match="at most 1000 years"):
            parse_duration(text)
    else:
        assert parse_duration(text) == number * UNITS[unit]


@FAST
@given(st.floats(0, 50_000), st.floats(0, 50_000), st.sampled_from(sorted(UNITS)))
def test_durations_grow_with_their_number_and_unit(a: float, b: float, unit: str) -> None:
    low, high = sorted((a, b))
    assert parse_duration(f"{low:f}{unit}") <= parse_duration(f"{high:f}{unit}")
    assert parse_duration(low) <= parse_duration(high)
    assert parse_duration(f"{low:f}s") <= parse_duration(f"{low:f}{unit}")


@FAST
@given(st.integers(0, 999_999), st.sampled_from([1, 60, 3600, 86400]))
def test_a_shown_duration_reads_back(number: int, size: int) -> None:
    """The option tables show defaults with the registry's formatter: ``7d`` must read as
    the same seconds."""
    seconds = float(number * size)
    if seconds > LONGEST:
        with pytest.raises(ValueError, match="at most 1000 years"):
            parse_duration(_duration(seconds))
    else:
        assert parse_duration(_duration(seconds)) == seconds


def test_a_long_shown_duration_reads_back() -> None:
    assert parse_duration(_duration(1_000_001.0)) == 1_000_001.0


# --- --since --------------------------------------------------------------------------------

@FAST
@given(st.one_of(st.text(), written), st.sampled_from(ZONES))
@example("99999999d", "UTC")     # was OverflowError: date value out of range
@example("1000000w", "UTC")
@example("20240501", "UTC")      # a basic ISO date, was read as an age of 20240501 seconds
def test_since_is_a_utc_instant_or_a_bad_parameter(value: str, zone: str) -> None:
    if value == "20240501":
        assert parse_since(value, ZoneInfo(zone)) == datetime(2024, 5, 1, tzinfo=UTC)
    try:
        start = parse_since(value, ZoneInfo(zone))
    except click.BadParameter:
        return
    assert start.tzinfo is UTC


@FAST
@given(st.integers(0, 50_000), st.sampled_from(sorted(UNITS)))
def test_an_age_counts_back_from_now(number: int, unit: str) -> None:
    before = datetime.now(UTC)
    start = parse_since(f"{number}{unit}", ZoneInfo("UTC"))
    back = timedelta(seconds=number * UNITS[unit])
    assert before - back <= start <= datetime.now(UTC) - back


@FAST
@given(st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31)),
       st.sampled_from(ZONES), st.booleans())
def test_a_written_time_reads_back(when: datetime, zone: str, aware: bool) -> None:
    """A naive time is in the config's zone; one with an offset is that instant."""
    tz = ZoneInfo(zone)
    if aware:
        when = when.replace(tzinfo=tz)
    assert parse_since(when.isoformat(), tz) == when.replace(tzinfo=when.tzinfo or tz)


@pytest.mark.parametrize(("value", "zone"), [("0001-01-01", "Europe/Berlin"),
                                             ("9999-12-31T23:00", "America/New_York")])
def test_since_at_the_ends_of_the_calendar(value: str, zone: str) -> None:
    with pytest.raises(click.BadParameter):
        parse_since(value, ZoneInfo(zone))


# --- matchers -------------------------------------------------------------------------------

def labels(**values: Any) -> SimpleNamespace:
    """A labels object with every attribute a matcher reads, none of them set."""
    empty = {"source": None, "kind": None, "author": None, "language": None,
             "source_tags": (), "vip": False, "severity": None, "category": None,
             "tags": (), "rules": ()}
    return SimpleNamespace(**(empty | values))


ATTRIBUTE = {"source_tag": "source_tags", "flag_tag": "tags", "rule": "rules"}
TEXT_LABELS = sorted(set(LABELS) - {"vip", "severity"})
# case-insensitive matching is re's: a character whose other case is one character
cased = st.characters(exclude_categories=("Cs",)).filter(
    lambda c: len(c.upper()) == len(c.lower()) == len(c.swapcase()) == 1 and c != "*")


def with_label(label: str, value: str | None) -> SimpleNamespace:
    attribute = ATTRIBUTE.get(label, label)
    return labels(**{attribute: (value,) if label in ATTRIBUTE else value})


@FAST
@given(st.sampled_from(TEXT_LABELS), st.text(cased, min_size=1).map(str.strip))
def test_a_name_matches_itself_in_any_case(label: str, name: str) -> None:
    assume(name)
    matcher = compile_matcher({label: name})
    for shown in (name, name.upper(), name.lower(), name.swapcase()):
        assert matcher(with_label(label, shown))
    assert compile_matcher({label: [f"other{name}", f"  {name.upper()}\t"]})(
        with_label(label, name))


@FAST
@given(st.sampled_from(TEXT_LABELS), st.text())
def test_a_star_matches_any_value_but_no_value(label: str, value: str) -> None:
    assert compile_matcher({label: "*"})(with_label(label, value)) is bool(value)
    assert not compile_matcher({label: "*"})(with_label(label, None))


def naive(pattern: str) -> re.Pattern[str]:
    """The plain translation, ``*`` -> ``.*``: right, but slow on many stars."""
    return re.compile(re.escape(pattern.strip()).replace(r"\*", ".*"), re.I | re.S)


@FAST
@given(st.text("ab*\n", min_size=1, max_size=9), st.text("abAB\n", max_size=10))
def test_a_star_is_any_run_of_characters(pattern: str, text: str) -> None:
    assume(pattern.strip())
    assert bool(glob([pattern]).fullmatch(text)) == bool(naive(pattern).fullmatch(text))


def test_many_stars_do_not_hang() -> None:
    """``.*`` per star took minutes here (every split of the name tried): now microseconds."""
    started = time.monotonic()
    assert glob(["*a" * 12 + "*b", "*" * 40 + "x"]).fullmatch("a" * 200) is None
    assert time.monotonic() - started < 1


matcher_values = st.one_of(anything, st.dictionaries(st.sampled_from(["min", "max"]),
                                                     anything, max_size=2))


@FAST
@given(st.dictionaries(st.one_of(st.sampled_from(sorted(LABELS)), st.text()), matcher_values,
                       max_size=3),
       st.text(), st.booleans())
def test_any_spec_is_a_matcher_or_a_value_error(spec: dict[str, Any], value: str,
                                                vip: bool) -> None:
    try:
        matcher = compile_matcher(spec)
    except ValueError:
        return
    seen = labels(source=value, kind=value, author=value, language=value, vip=vip,
                  severity=value, category=value, source_tags=(value,), tags=(value,),
                  rules=(value,))
    assert matcher(seen) in (True, False)


@FAST
@given(st.sampled_from(SEVERITIES), st.sampled_from([str.lower, str.upper, str.title]),
       st.sampled_from(["", " "]), st.sampled_from(SEVERITIES))
@example("high", str.upper, "", "critical")  # {min: HIGH} was refused, severity: HIGH not
def test_min_severity_means_it_and_above(low: str, case: Any, blank: str, flagged: str) -> None:
    written = f"{blank}{case(low)}{blank}"
    assert at_least({"min": written}) == list(SEVERITIES[SEVERITIES.index(low):])
    hit = compile_matcher({"severity": {"min": written}})(labels(severity=flagged))
    assert hit is (SEVERITIES.index(flagged) >= SEVERITIES.index(low))


@FAST
@given(st.dictionaries(st.text(), anything, max_size=2))
def test_any_other_mapping_is_not_a_severity(value: dict[str, Any]) -> None:
    assume(set(value) != {"min"} or str(value["min"]).strip().lower() not in SEVERITIES)
    with pytest.raises(ValueError, match="min: SEVERITY"):
        at_least(value)


@FAST
@given(st.lists(st.text(), max_size=3))
def test_cli_matchers_are_read_or_refused(items: list[str]) -> None:
    try:
        found = parse_matchers(items)
    except ValueError:
        return
    assert found and all(value for value in found.values())


@FAST
@given(st.sampled_from(TEXT_LABELS), st.text(min_size=1), st.sampled_from(["", " "]))
def test_key_equals_value_reads_back(label: str, value: str, blank: str) -> None:
    assume(value.strip())
    written = f"{blank}{label.upper()}{blank}={blank}{value}"
    assert parse_matchers([written]) == {label: value.strip()}


# --- config values --------------------------------------------------------------------------

@FAST
@given(st.one_of(st.text(), st.sampled_from(sorted(available_timezones()))))
@example("Europe")      # was IsADirectoryError: a folder of zones
@example("a" * 5000)    # was OSError: file name too long
def test_a_time_zone_is_known_or_refused(name: str) -> None:
    try:
        assert TypeAdapter(TimeZoneName).validate_python(name) == name
    except ValidationError:
        return
    ZoneInfo(name)


@FAST
@given(st.sampled_from(sorted(available_timezones())))
def test_every_iana_zone_is_known(name: str) -> None:
    assert TypeAdapter(TimeZoneName).validate_python(name) == name


http_values = st.fixed_dictionaries({}, optional={
    key: st.one_of(anything, st.floats(), written)
    for key in ("connect_timeout", "read_timeout", "total_timeout", "backoff")})


@FAST
@given(st.fixed_dictionaries({}, optional={"interval": st.one_of(anything, written),
                                           "quiet_after": anything, "timezone": anything,
                                           "http": http_values}))
@example({"interval": 10**400})  # was OverflowError, a traceback from `monitor check`
@example({"interval": 0})        # was accepted: a source polled without a pause
@example({"http": {"total_timeout": float("inf")}})   # was accepted: a pass never ends
def test_config_values_load_or_name_their_key(raw: dict[str, Any]) -> None:
    """A value is refused naming its key, or it lies within the bounds the README gives."""
    try:
        main = _validate(MainConfig, raw, "config.yaml", "")
    except ConfigError as error:
        assert all(p.key.split(".")[0] in raw for p in error.problems)
        return
    assert 1 <= main.interval <= 30 * 86400 and 0 < main.quiet_after <= 365 * 86400
    http = main.http
    assert all(0 < t <= 3600 for t in (http.connect_timeout, http.read_timeout,
                                        http.total_timeout))
    assert 0 <= http.backoff <= 3600


@FAST
@given(st.integers(0, 999_999), st.sampled_from([1, 60, 3600, 86400]))
def test_a_spoken_bound_reads_back(number: int, size: int) -> None:
    """Bound messages say durations as config is written (``30d``): they must read back."""
    seconds = float(number * size)
    assume(seconds <= LONGEST)
    assert parse_duration(spoken(seconds)) == seconds


env_value = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"))
json_like = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text()),
                         lambda inner: st.lists(inner, max_size=3)
                         | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                         max_leaves=10)
NAME = "FM_PROPERTY_VAR"


def expand(value: Any, key: str = "") -> tuple[Any, list[str]]:
    """config's ``_expand``: the value, and the mistakes it gathered (as text)."""
    unset: list[ConfigError] = []
    return _expand(value, "config.yaml", key, unset), [str(e) for e in unset]


@FAST
@given(json_like)
def test_values_without_a_variable_are_left_alone(value: Any) -> None:
    assume("${" not in repr(value))
    assert expand(value) == (value, [])


@FAST
@given(env_value, env_value.filter(lambda d: "}" not in d), st.text(max_size=5),
       st.text(max_size=5))
@example("${HOME}", "", "", "")  # a value is not expanded again: a secret may hold "${"
def test_a_variable_is_its_value_or_its_default(value: str, default: str, before: str,
                                                after: str) -> None:
    assume("${" not in before + after)
    with mock.patch.dict(os.environ, {NAME: value}):
        assert expand(f"{before}${{{NAME}}}{after}") == (before + value + after, [])
        assert expand({"a": [f"${{{NAME}:-{default}}}"]}) == ({"a": [value or default]}, [])
        del os.environ[NAME]
        assert expand(f"${{{NAME}:-{default}}}") == (default, [])
        assert expand({"store": [f"{before}${{{NAME}}}"]}) == ({"store": [before]}, [
            f"config.yaml: store[0]: environment variable {NAME} is not set"])
        os.environ[NAME] = ""  # set but empty: the default, as a shell gives
        assert expand(f"${{{NAME}:-{default}}}") == (default, [])


@FAST
@given(st.text(st.sampled_from("${}:-AZ_9x "), max_size=20))
def test_any_dollar_text_expands_or_names_the_variable(text: str) -> None:
    with mock.patch.dict(os.environ, {"A": "1"}):
        os.environ.pop("Z", None)
        value, unset = expand(text, "k")
    assert isinstance(value, str)
    assert all(re.fullmatch(r"config\.yaml: k: environment variable \w+ is not set", e)
               for e in unset)


# --- the webhook signature header ----------------------------------------------------------

@FAST
@given(st.text(), st.binary(max_size=64), st.floats(allow_nan=False))
@example("t=" + "9" * 5000 + ",v1=00", b"{}", 0.0)   # int() of 5000 digits raises
@example("t=1,v1=\u00e9", b"{}", 1.0)                # compare_digest refuses non-ASCII
def test_any_signature_header_is_true_or_false(header: str, body: bytes, now: float) -> None:
    assert verify("key", header, body, now=now) in (True, False)


@FAST
@given(st.one_of(st.text(min_size=1), st.binary(min_size=1)), st.binary(max_size=256),
       st.integers(0, 10**11), st.integers(-300, 300))
def test_a_signature_verifies_its_body_within_five_minutes(key: str | bytes, body: bytes,
                                                           t: int, skew: int) -> None:
    header = sign(key, body, t)
    assert verify(key, header, body, now=t + skew)
    assert not verify(key, header, body + b"x", now=t)
    assert not verify(key, header, body, now=t + 301)
