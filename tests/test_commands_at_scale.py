"""The everyday commands made fast for big stores (issue 19), checked on small ones: `queue
list` a page at a time (and --plain lines), `status` counting in SQL, `export --since`
streaming what it wrote before, the digest's day counts in one GROUP BY."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from monitor import export
from monitor.cli import main
from monitor.model import Fetch, Flag, Post
from monitor.outbox import file_case
from monitor.queue import Page, QueuePolicy
from monitor.store import Store
from monitor.store.schema import case_posts, cases, flags, posts
from monitor.store.storms import WRITTEN

NOW = datetime.now(UTC).replace(microsecond=0)
SEVERITIES = ("critical", "high", "medium", "low")


def _file(store: Store, n: int, *, thread: str | None = None, severity: str = "high",
          seen: datetime = NOW, reach: int | None = None, title: str | None = None) -> int:
    """Post ``n`` saved at ``seen``, flagged and filed into its thread's case (the case id)."""
    thread = thread or f"t{n}"
    post = Post("forum", f"p{n}", f"https://f.test/{n}", f"author{n % 3}",
                title if title is not None else f"Thread {thread}", f"post {n}\nline 2",
                seen - timedelta(minutes=5), thread_id=thread, reach=reach)
    store.save_fetch("forum", "discourse", Fetch((post,), None), seen)
    stored = store.stored_post("forum", post.external_id)
    assert stored is not None
    flag = Flag(severity=severity, rules=("r1",), reasons=(f"r1: says {n}",), category="bug")
    with store.engine.begin() as db:
        db.execute(flags.insert().values(post_id=stored.id, severity=severity, category="bug",
                                         rules=["r1"], reasons=list(flag.reasons), tags=["x"],
                                         flagged_at=seen, updated_at=seen))
        return file_case(db, post_id=stored.id, post=post, flag=flag, vip=False, now=seen,
                         group_key=f"thread:forum:{thread}", policy=QueuePolicy.of())


@pytest.fixture
def project(make_project, store_url: str):
    path = make_project([{"name": "forum", "kind": "discourse", "url": "https://f.test"}],
                        store=store_url)
    store = Store(store_url)
    yield path, store
    store.close()


def _cli(path: Path, *args: str) -> object:
    return CliRunner().invoke(main, [*args, "--config", str(path)], env={"COLUMNS": "160"})


def _fill(store: Store, count: int = 7) -> list[int]:
    """``count`` open cases of mixed severities (and so priorities), one thread each."""
    return [_file(store, n, severity=SEVERITIES[n % 4], seen=NOW - timedelta(hours=n),
                  reach=n * 10) for n in range(count)]


# --- queue list ------------------------------------------------------------------------------

def test_queue_list_pages_keep_the_order_of_the_whole_list(project) -> None:
    path, store = project
    _fill(store, 7)
    whole = [c["id"] for c in json.loads(_cli(path, "queue", "list", "--json").stdout)]
    assert len(whole) == 7
    assert [c.id for c in store.list_cases(now=datetime.now(UTC))] == whole
    paged = []
    for page in (1, 2, 3):
        shown = _cli(path, "queue", "list", "--json", "--limit", "3", "--page", str(page))
        paged += [c["id"] for c in json.loads(shown.stdout)]
    assert paged == whole
    assert store.count_listed(now=datetime.now(UTC)) == 7
    assert [c.id for c in store.list_cases(now=datetime.now(UTC), limit=2, offset=5)] == \
        whole[5:]


def test_queue_list_shows_a_page_and_says_where_it_is_on_stderr(project) -> None:
    path, store = project
    _fill(store, 7)
    first = _cli(path, "queue", "list", "--limit", "3")
    assert first.exit_code == 0, first.output
    assert len(first.stdout.splitlines()) == 1 + 3  # the header and three cases
    assert first.stderr == "page 1 of 3 (7 cases; --page 2 for more)\n"
    last = _cli(path, "queue", "list", "--limit", "3", "--page", "3")
    assert len(last.stdout.splitlines()) == 1 + 1
    assert last.stderr == "page 3 of 3 (7 cases)\n"
    beyond = _cli(path, "queue", "list", "--limit", "3", "--page", "9")
    assert (beyond.exit_code, beyond.stdout) == (0, "no cases\n")
    everything = _cli(path, "queue", "list", "--limit", "0")
    assert len(everything.stdout.splitlines()) == 1 + 7 and everything.stderr == ""
    default = _cli(path, "queue", "list")
    assert len(default.stdout.splitlines()) == 1 + 7
    assert default.stderr == "page 1 of 1 (7 cases)\n"


def test_the_footer_counts_with_thousands_separators() -> None:
    assert Page(1, 50, 15_812).footer() == "page 1 of 317 (15,812 cases; --page 2 for more)"
    assert Page(317, 50, 15_812).footer() == "page 317 of 317 (15,812 cases)"
    assert Page(1, 50, 1).footer() == "page 1 of 1 (1 case)"


def test_queue_list_plain_is_one_tab_separated_line_per_case(project) -> None:
    path, store = project
    ids = _fill(store, 4)
    odd = _file(store, 99, title="A\ttitle\nover  two lines", severity="critical")
    shown = _cli(path, "queue", "list", "--plain")
    assert shown.exit_code == 0 and shown.stderr == ""
    lines = shown.stdout.splitlines()
    assert len(lines) == 5
    fields = [line.split("\t") for line in lines]
    assert all(len(f) == 9 for f in fields)
    by_id = {int(f[0]): f for f in fields}
    assert set(by_id) == {*ids, odd}
    assert by_id[odd][1:3] == ["critical", "new"]
    assert by_id[odd][8] == "A title over two lines"
    assert by_id[odd][4] == "-"  # nobody's
    assert by_id[odd][5].endswith("Z")  # due, in UTC
    order = [c["id"] for c in json.loads(_cli(path, "queue", "list", "--json").stdout)]
    assert [int(f[0]) for f in fields] == order
    page = _cli(path, "queue", "list", "--plain", "--limit", "2", "--page", "2")
    assert [int(line.split("\t")[0]) for line in page.stdout.splitlines()] == order[2:4]
    assert _cli(path, "queue", "list", "--plain", "--json").exit_code == 2


def test_queue_list_of_an_empty_queue_has_no_footer(project) -> None:
    path, _ = project
    shown = _cli(path, "queue", "list")
    assert (shown.stdout, shown.stderr) == ("no cases\n", "")
    assert _cli(path, "queue", "list", "--plain").stdout == ""


# --- status ----------------------------------------------------------------------------------

def test_status_counts_open_and_overdue_cases_in_sql(project) -> None:
    path, store = project
    ids = _fill(store, 6)
    late = _file(store, 50, severity="critical", seen=NOW - timedelta(days=2))  # due long ago
    with store.engine.begin() as db:  # one closed, one answered: neither open-and-late
        db.execute(cases.update().where(cases.c.id == ids[0]).values(state="resolved"))
        db.execute(cases.update().where(cases.c.id == ids[1])
                   .values(state="responded", first_response_at=NOW))
    now = datetime.now(UTC)
    listed = store.list_cases(now=now)
    overdue = store.list_cases(now=now, overdue=True)
    assert late in [c.id for c in overdue]
    shown = json.loads(_cli(path, "status", "--json").stdout)
    assert shown["cases"] == {"open": len(listed), "overdue": len(overdue)}
    assert (len(listed), store.count_listed(now=now, overdue=True)) == (6, len(overdue))


# --- export ----------------------------------------------------------------------------------

def _old_posts(store: Store, since: datetime | None) -> list[dict]:
    """What export_posts read before: every written post by id, filtered by first seen."""
    from monitor.store.rows import SCORE_COLUMNS
    from monitor.store.schema import scores

    query = (select(posts, *SCORE_COLUMNS, scores.c.evidence, flags.c.severity,
                    flags.c.category, flags.c.tags, flags.c.rules, flags.c.reasons)
             .outerjoin(scores, scores.c.post_id == posts.c.id)
             .outerjoin(flags, flags.c.post_id == posts.c.id)
             .where(WRITTEN).order_by(posts.c.id))
    if since is not None:
        query = query.where(posts.c.first_seen_at >= since)
    with store.engine.connect() as db:
        return [dict(r._mapping) for r in db.execute(query)]


def _old_csv(records: list[dict]) -> list[list[str]]:
    """The CSV as pandas wrote it before (json_normalize, to_csv), read back."""
    out = io.StringIO()
    frame = pd.json_normalize([export._flat(r) for r in records])
    if len(frame):
        frame.to_csv(out, index=False)
    return list(csv.reader(io.StringIO(out.getvalue())))


def _same_cells(new: list[list[str]], old: list[list[str]]) -> None:
    """Equal cell by cell, but that pandas wrote a whole number of a column with gaps as
    ``12.0`` where the stream writes ``12``."""
    assert len(new) == len(old)
    for got, was in zip(new, old, strict=True):
        assert len(got) == len(was)
        for a, b in zip(got, was, strict=True):
            if a != b:
                assert float(a) == float(b), (a, b)


def _posts_at_several_times(store: Store) -> None:
    for n in range(12):  # first seen 0..11 days ago, a few flagged, a hostile one
        seen = NOW - timedelta(days=n)
        post = Post("blog", f"b{n}", f"https://b.test/{n}", None if n % 4 else f"a{n}",
                    "=cmd|' /C calc'!A0" if n == 3 else None, f"text, \"quoted\"\n{n}",
                    seen, reach=None if n % 2 else n)
        store.save_fetch("blog", "rss", Fetch((post,), None), seen)
    _fill(store, 5)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_since_writes_what_it_wrote_before(project, fmt: str) -> None:
    path, store = project
    _posts_at_several_times(store)
    since = NOW - timedelta(days=7, hours=1)
    old = _old_posts(store, since)
    assert 0 < len(old) < len(_old_posts(store, None))
    new = list(store.export_posts(since))
    assert sorted(r["id"] for r in new) == [r["id"] for r in old]
    assert [r["first_seen_at"] for r in new] == sorted(r["first_seen_at"] for r in new)
    by_id = {r["id"]: r for r in old}
    old_in_new_order = [{k: by_id[r["id"]][k] for k in r} for r in new]
    assert [dict(r) for r in new] == old_in_new_order  # the same rows, first seen first

    written = io.StringIO()
    count = export.write(export.post_records(store, since), fmt, written)
    assert count == len(old)

    def records(rows: list[dict]) -> list[dict]:
        class Rows:
            def export_posts(self, _since: object) -> list[dict]:
                return rows
        return list(export.post_records(Rows(), None))  # type: ignore[arg-type]

    if fmt == "csv":
        _same_cells(list(csv.reader(io.StringIO(written.getvalue()))),
                    _old_csv(records(old_in_new_order)))
    else:
        expected = io.StringIO()
        export.write(records(old_in_new_order), "jsonl", expected)
        assert written.getvalue() == expected.getvalue()
    shown = _cli(path, "export", "posts", "--since", "7d", "--format", fmt)
    assert shown.exit_code == 0, shown.output
    assert shown.stderr.endswith(" posts exported\n")


def test_export_cases_reads_members_in_batches_as_it_did_one_by_one(
        project, monkeypatch: pytest.MonkeyPatch) -> None:
    import monitor.store as store_module

    path, store = project
    first = _file(store, 101, thread="shared", severity="low", seen=NOW - timedelta(days=3))
    _file(store, 102, thread="shared", severity="critical", seen=NOW - timedelta(days=2))
    _fill(store, 5)
    monkeypatch.setattr(store_module, "EXPORT_BATCH", 2)  # several batches of cases

    def old_members(case_id: int, head: int) -> list[dict]:
        with store.engine.connect() as db:
            return [dict(m._mapping) for m in db.execute(
                select(posts).join(case_posts, case_posts.c.post_id == posts.c.id)
                .where(case_posts.c.case_id == case_id)
                .order_by(posts.c.id != head, case_posts.c.added_at, posts.c.id))]

    exported = list(store.export_cases())
    assert [c["id"] for c in exported] == sorted(c["id"] for c in exported)
    assert len(exported) == 6
    for case in exported:
        assert case["members"] == old_members(case["id"], case["post_id"])
    shared = next(c for c in exported if c["id"] == first)
    assert len(shared["members"]) == 2
    recent = list(store.export_cases(NOW - timedelta(days=2, hours=1)))
    assert first not in [c["id"] for c in recent] and len(recent) == 5
    written = io.StringIO()
    export.write(export.case_records(store), "csv", written)
    _same_cells(list(csv.reader(io.StringIO(written.getvalue()))),
                _old_csv(list(export.case_records(store))))


# --- the digest's counts ---------------------------------------------------------------------

def test_post_counts_put_each_post_in_its_window(project) -> None:
    _, store = project
    _posts_at_several_times(store)
    windows = [(NOW - timedelta(days=n + 1), NOW - timedelta(days=n)) for n in range(9, -1, -1)]
    got = store.post_counts(windows)
    with store.engine.connect() as db:
        seen = [r.first_seen_at for r in db.execute(select(posts.c.first_seen_at)
                                                    .where(WRITTEN))]
    assert [c.read for c in got] == [sum(start <= s < end for s in seen)
                                     for start, end in windows]
    assert all(c.scored == 0 and c.negative == 0 for c in got)  # nothing scored here
    assert store.post_counts([]) == []
