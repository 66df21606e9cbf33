"""The readers behind ``monitor import`` (monitor/imports/): files to Posts.

The fixtures are in tests/fixtures/import/ (its README says where each shape comes from). The
oracles for "the same post as the live collector makes" are the collectors themselves: the
Reddit collector's conversion run on praw's recorded listings, and the RSS collector run on a
WordPress comment feed of the same comments as the WXR fixture.
"""

from __future__ import annotations

import io
import json
import random
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import zstandard
from conftest import FIXTURES
from hypothesis import given
from hypothesis import strategies as st

from monitor import export
from monitor.collectors.http import HttpClient, Response
from monitor.collectors.reddit import RedditCollector, RedditOptions, clean, title_text
from monitor.collectors.rss import read_feed
from monitor.errors import ConfigError
from monitor.imports import Position, Skipped, read
from monitor.imports.reddit_dump import _clean, _title
from monitor.model import Fetch, Post
from monitor.store import Store

HERE = FIXTURES / "import"
CASSETTES = FIXTURES / "reddit"
NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def everything(path: Path, source: str | None = "acme", **options: object) -> list[Post | Skipped]:
    return list(read(path, source, **options))  # type: ignore[arg-type]


def posts_of(items: list[Post | Skipped]) -> list[Post]:
    return [item for item in items if isinstance(item, Post)]


def skips_of(items: list[Post | Skipped]) -> list[Skipped]:
    return [item for item in items if isinstance(item, Skipped)]


@pytest.fixture(scope="module")
def http() -> Iterator[HttpClient]:
    with HttpClient("feedback-monitor-tests/1.0 (import)", retries=0) as client:
        yield client


# --- Reddit dumps ---------------------------------------------------------------------------


def _utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def test_reddit_submissions_dump() -> None:
    items = everything(HERE / "RS_acmeapp.ndjson")
    sync, notes, pricing = posts_of(items)
    assert sync == Post(
        "acme", "t3_c7fvha",
        "https://www.reddit.com/r/acmeapp/comments/c7fvha/sync_has_been_broken_for_three_days/",
        "frustrated_dev42", "Sync has been broken for three days",
        "Every time I open the app it says **sync failed**. I've reinstalled twice & nothing "
        "works.\n\nIf this isn't fixed by Friday I'm cancelling my subscription.",
        _utc(1561939210), thread_id="t3_c7fvha", parent_id=None, reach=14 + 3)
    # A link post: its title is its words; created_utc as a string (older Pushshift months).
    assert (notes.external_id, notes.title, notes.text, notes.published_at, notes.reach) == (
        "t3_c7g2kq", "Acme 4.0 release notes", "", _utc(1561942800), 3)
    # The author deleted the account; the words stay, without a name. Reach never below 0.
    assert (pricing.external_id, pricing.author, pricing.reach) == ("t3_17wz0ab", None, 0)
    assert [(s.where, s.why.split(" (")[0]) for s in skips_of(items)] == [
        ("RS_acmeapp.ndjson:3", "submission removed by moderators: no words to score"),
        ("RS_acmeapp.ndjson:4", "not JSON"),
    ]


def test_reddit_comments_dump_takes_titles_of_submissions_read_before() -> None:
    titles: dict[str, str] = {}
    everything(HERE / "RS_acmeapp.ndjson", thread_titles=titles)
    items = everything(HERE / "RC_acmeapp.ndjson", thread_titles=titles)
    first, reply, agreed = posts_of(items)
    # 2016 Pushshift shape: no name, no permalink: the collector's own fallbacks.
    assert first == Post(
        "acme", "t1_erzolw8", "https://www.reddit.com/r/acmeapp/comments/c7fvha/_/erzolw8/",
        "helpful_hannah", "Sync has been broken for three days",
        "Same here. Logging out and back in fixed it for me > for a day.", _utc(1561940000),
        thread_id="t3_c7fvha", parent_id="t3_c7fvha", reach=5)
    assert (reply.parent_id, reply.thread_id, reply.text, reply.reach) == (
        "t1_erzolw8", "t3_c7fvha", "For a DAY?? That's not a fix. \U0001F621", 0)
    assert reply.url.endswith("/c7fvha/sync_has_been_broken_for_three_days/erzp1x2/")
    assert (agreed.external_id, agreed.author, agreed.title) == (
        "t1_k9a0c2d", None, "The new pricing is a joke")
    assert [(s.where, s.why.split(" (")[0]) for s in skips_of(items)] == [
        ("RC_acmeapp.ndjson:3", "comment deleted by its author: no words to score"),
        ("RC_acmeapp.ndjson:4", "not JSON"),
        ("RC_acmeapp.ndjson:5", "comment removed by moderators: no words to score"),
        ("RC_acmeapp.ndjson:7", "no usable created_utc"),
    ]
    # Read alone, a comment has no title: the dump does not carry its thread's.
    assert posts_of(everything(HERE / "RC_acmeapp.ndjson"))[0].title is None


def _zst(data: bytes, window_log: int = 31) -> bytes:
    """Compressed as Pushshift and Arctic Shift do (--long=31): a 2 GiB window, no size."""
    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=window_log,
                                                            enable_ldm=True)
    out = io.BytesIO()
    with zstandard.ZstdCompressor(compression_params=params).stream_writer(
            out, closefd=False) as writer:
        writer.write(data)
    return out.getvalue()


def test_reddit_dump_as_zst_with_a_long_window(tmp_path: Path) -> None:
    plain = (HERE / "RC_acmeapp.ndjson").read_bytes()
    packed = tmp_path / "RC_acmeapp.zst"
    packed.write_bytes(_zst(plain))
    with pytest.raises(zstandard.ZstdError):  # the library's default window refuses it
        zstandard.ZstdDecompressor().stream_reader(io.BytesIO(packed.read_bytes())).read()
    expected = [(i.where.replace(".ndjson", ".zst"), i.why) if isinstance(i, Skipped) else i
                for i in everything(HERE / "RC_acmeapp.ndjson")]
    got = [(i.where, i.why) if isinstance(i, Skipped) else i for i in everything(packed)]
    assert got == expected


def test_broken_zst_is_refused_naming_the_file(tmp_path: Path) -> None:
    garbage = tmp_path / "RC_2023-01.zst"
    garbage.write_bytes(b"\x28\xb5\x2f\xfd" + b"\x00\xff" * 50)
    with pytest.raises(ConfigError, match="RC_2023-01.zst.*broken .zst"):
        read(garbage, "acme")
    not_zstd = tmp_path / "RS_2023-01.zst"
    not_zstd.write_bytes((HERE / "RS_acmeapp.ndjson").read_bytes())
    with pytest.raises(ConfigError, match="RS_2023-01.zst.*not zstd-compressed"):
        read(not_zstd, "acme")


def test_zst_cut_short_fails_after_the_lines_it_could_read(tmp_path: Path) -> None:
    line = (HERE / "RC_acmeapp.ndjson").read_bytes().splitlines()[1] + b"\n"
    packed = _zst(line * 3000, window_log=20)  # ~1.4 MB: more than the format sniff reads
    cut = tmp_path / "cut.zst"
    cut.write_bytes(packed[: len(packed) * 3 // 4])
    items = read(cut, "acme")
    read_before = 0
    with pytest.raises(ConfigError, match=r"cut.zst.*broken .zst after line \d+"):
        for _ in items:
            read_before += 1
    assert read_before > 100


@pytest.mark.parametrize("packed", [False, True], ids=["plain", "zst"])
def test_position_follows_the_file_on_disk(tmp_path: Path, packed: bool) -> None:
    """What the import's progress bar shows: bytes of the file on disk read so far (of a .zst
    file, compressed bytes), rising as records are read, never past the file's size."""
    line = json.loads((HERE / "RC_acmeapp.ndjson").read_bytes().splitlines()[1])
    noise = random.Random(7)  # bodies that do not compress away
    lines = [json.dumps({**line, "id": f"c{i}", "body": noise.randbytes(300).hex()}).encode()
             + b"\n" for i in range(6000)]
    path = tmp_path / ("RC_big.zst" if packed else "RC_big.ndjson")
    path.write_bytes(_zst(b"".join(lines), window_log=20) if packed else b"".join(lines))
    size = path.stat().st_size
    assert size > 1 << 20  # more than one read of the reader's buffer
    position = Position()
    seen = []
    for n, _ in enumerate(read(path, "acme", position=position), 1):
        if n % 500 == 0:
            seen.append(position())
    assert seen == sorted(seen) and len(set(seen)) >= 2
    assert seen[0] > 0 and seen[-1] <= size
    if not packed:  # a plain file: exactly the lines read so far
        assert seen[0] == len(b"".join(lines[:500]))
    assert position() == 0  # the file is closed once read


def _collector_post(http: HttpClient, kind: str, data: dict) -> Post | None:
    """The live collector's Post for one listing child (its own conversion)."""
    collector = RedditCollector("acme", RedditOptions(subreddits=["acmeapp"]), http)
    return collector._post(kind, data)


@pytest.mark.parametrize("cassette", [
    "TestSubredditListings.test_new.json",  # submissions
    "TestSubredditListings.test_comments.json",  # 2016 comments, no permalink
    "TestSubredditStreams.test_comments__with_continue_after_id.json",  # 2023 comments
])
def test_reddit_dump_posts_are_the_live_collectors_posts(
        cassette: str, http: HttpClient, tmp_path: Path) -> None:
    """Each recorded listing child written as a dump line (the dumps hold the same ``data``
    objects) imports as the very Post the collector makes of it: same id, url, thread,
    parent, title, text, time and reach. Written a second time as older Pushshift lines
    (no ``name``, no ``link_title``), with the thread titles read from submissions first."""
    body = json.loads(CASSETTES.joinpath(cassette).read_text("utf-8"))["interactions"][-1]
    children = json.loads(body["response"]["body"]["string"])["data"]["children"]
    dump, old = tmp_path / "dump.ndjson", tmp_path / "old.ndjson"
    dump.write_text("".join(json.dumps(c["data"]) + "\n" for c in children), "utf-8")
    old.write_text("".join(json.dumps({k: v for k, v in c["data"].items()
                                       if k not in ("name", "link_title")}) + "\n"
                           for c in children), "utf-8")
    live = {p.external_id: p for c in children
            if (p := _collector_post(http, c["kind"], c["data"])) is not None}
    imported = {p.external_id: p for p in posts_of(everything(dump))}
    assert len(live) >= 50
    assert {k: imported[k] for k in live} == live
    titles = {f"t3_{c['data']['link_id'].removeprefix('t3_')}": c["data"]["link_title"]
              for c in children if "link_title" in c["data"]}
    assert {k: v for k, v in {p.external_id: p for p in posts_of(
        everything(old, thread_titles=titles))}.items() if k in live} == live
    # What the collector never stores: only deleted authors whose words remain are imported.
    for external_id in imported.keys() - live.keys():
        assert imported[external_id].author is None


@given(st.lists(st.sampled_from(
    list("ab [](&;#x20B)\n\t\r \u00a0\u00ad\u200b\ufeff\u2003\x1cé😀'\"=")
    + ["&amp;", "&#x200B;", "[text](http://x.example)", "  "]), max_size=30).map("".join))
def test_the_fast_path_cleans_exactly_as_the_collector(text: str) -> None:
    assert _clean(text) == clean(text)
    assert _title(text) == title_text(text)


def test_a_dump_is_read_line_by_line(tmp_path: Path) -> None:
    """2,000 lines of 10 KB (20 MB) are read holding a few lines, never the file."""
    line = (HERE / "RC_acmeapp.ndjson").read_text("utf-8").splitlines()[1]
    big = tmp_path / "RC_big.ndjson"
    with big.open("w", encoding="utf-8") as out:
        for number in range(2_000):
            record = json.loads(line)
            record["id"] = f"x{number:07d}"
            record["body"] = f"comment {number} " + "words " * 1700
            out.write(json.dumps(record) + "\n")
    tracemalloc.start()
    try:
        count = sum(1 for item in read(big, "acme") if isinstance(item, Post))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 2_000
    assert peak < 5 * 1024 * 1024, peak


def test_an_overlong_line_is_skipped_unread(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("monitor.imports.MAX_LINE", 2000)
    lines = (HERE / "RC_acmeapp.ndjson").read_text("utf-8").splitlines()
    path = tmp_path / "dump.ndjson"
    path.write_text("\n".join([lines[0], '{"body": "' + "x" * 10_000 + '"}', lines[1]]) + "\n")
    items = everything(path)
    assert [type(i).__name__ for i in items] == ["Post", "Skipped", "Post"]
    assert items[1].where == "dump.ndjson:2" and "longer than" in items[1].why


# --- WordPress exports ----------------------------------------------------------------------


PRICING = "https://blog.acme.example/2024/02/20/introducing-the-new-pricing/"


def test_wordpress_export_approved_comments_only() -> None:
    items = everything(HERE / "wordpress-export.xml")
    maria, team, jonas = posts_of(items)
    assert maria == Post(
        "acme", "https://blog.acme.example/?p=12#comment-34", PRICING + "#comment-34",
        "Maria K.", "Comment on Introducing the new pricing by Maria K.",
        "This is a 40% price rise. I\u2019ve been a customer since 2015\u2026 not anymore."
        "\n\nCancelling today.", datetime(2024, 2, 20, 10, 15, tzinfo=UTC),
        thread_id=PRICING, parent_id=PRICING)
    # Nested replies (comment_parent 34, 35) thread under their post, as the feed has them.
    assert {(p.thread_id, p.parent_id) for p in (team, jonas)} == {(PRICING, PRICING)}
    assert [(s.where, s.why) for s in skips_of(items)] == [
        ("wordpress-export.xml:item 1 comment 36", "not an approved comment (spam)"),
        ("wordpress-export.xml:item 1 comment 37", "a pingback, not a comment"),
        ("wordpress-export.xml:item 1 comment 39",
         "not an approved comment (pending moderation)"),
        ("wordpress-export.xml:item 3 comment 50", "on a post that is not public (private)"),
    ]


def test_wordpress_comments_are_the_rss_collectors_posts() -> None:
    """The blog's /comments/feed/ for the same comments (what WordPress renders for them, see
    the fixtures' README), read by the RSS collector's own reading of a fetched feed, gives
    the same posts."""
    url = "https://blog.acme.example/comments/feed/"
    feed = (HERE / "wordpress-comments-feed.xml").read_bytes()
    read = read_feed(Response(200, url, {"content-type": "application/rss+xml"}, feed),
                     "acme", NOW, comments=False)
    assert not read.problems
    live = {e.post.external_id: e.post for e in read.entries if e.post is not None}
    imported = {p.external_id: p for p in posts_of(everything(HERE / "wordpress-export.xml"))}
    assert len(live) == 3
    assert imported == live


ENTITY_BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
 <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
 <!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
 <!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">
 <!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;">
]>
<rss version="2.0" xmlns:wp="http://wordpress.org/export/1.2/"><channel><item>
<title>&g;</title><guid>https://x.example/?p=1</guid><link>https://x.example/p/</link>
<wp:comment><wp:comment_id>1</wp:comment_id><wp:comment_content>&g;</wp:comment_content>
<wp:comment_approved>1</wp:comment_approved>
<wp:comment_date_gmt>2024-01-01 00:00:00</wp:comment_date_gmt></wp:comment>
</item></channel></rss>
"""


def test_an_entity_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    bomb = tmp_path / "export.xml"
    bomb.write_bytes(ENTITY_BOMB)
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError, match="export.xml.*refused.*entit"):
            list(read(bomb, "blog"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024 * 1024


def test_wordpress_export_cut_short_keeps_what_came_before(tmp_path: Path) -> None:
    whole = (HERE / "wordpress-export.xml").read_text("utf-8")
    cut = tmp_path / "cut.xml"
    cut.write_text(whole[: whole.index("<title><![CDATA[About]]>")], "utf-8")
    items = everything(cut)
    assert len(posts_of(items)) == 3
    assert "breaks off" in items[-1].why and items[-1].where.startswith("cut.xml:line ")
    not_xml = tmp_path / "broken.xml"
    not_xml.write_text('<?xml version="1.0"?><rss xmlns:wp="http://wordpress.org/export/1.2/">'
                       "<channel><item><title>x</titl></item>", "utf-8")
    with pytest.raises(ConfigError, match="broken.xml.*not well-formed"):
        list(read(not_xml, "blog"))


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["RS_acmeapp.ndjson", "wordpress-export.xml"])
def test_a_missing_source_is_refused(fixture: str) -> None:
    with pytest.raises(ConfigError, match=f"{fixture}.*pass --source NAME"):
        read(HERE / fixture, None)


@pytest.mark.parametrize("content", [
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", b"name,email\nann,a@x.example\n",
    b'{"hello": "world"}\n', b'<?xml version="1.0"?><rss><channel/></rss>', b"",
])
def test_an_unknown_format_is_refused_naming_the_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "mystery.dat"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match="mystery.dat.*expected `monitor export` posts"):
        read(path, "acme")


def test_an_unreadable_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nowhere.ndjson.*cannot read it"):
        read(tmp_path / "nowhere.ndjson", "acme")


# --- our own export -------------------------------------------------------------------------


HOSTILE = [
    Post("blog", "x1", "https://blog.example/a#c1", "=HYPERLINK(\"http://evil.test\",\"x\")",
         "+SUM(A1:A9)", "=cmd|' /C calc'!A0\nsecond line, \"quoted\", with commas",
         NOW - timedelta(hours=3), thread_id="https://blog.example/a", parent_id="t-1",
         reach=12),
    Post("forum", "x2", "https://forum.example/t/2", None, None,
         "-minus first\r\n\ttabbed \U0001F621 emoji and a lone surrogate \ud800 here",
         NOW - timedelta(hours=2)),
    Post("forum", "x3", "https://forum.example/t/3", "@handle", "\tTab title",
         "plain", NOW - timedelta(minutes=5, microseconds=1234), thread_id="t3", reach=0),
    Post("forum", "x4", "https://forum.example/t/4", "ann", "", "", NOW - timedelta(hours=1)),
]


@pytest.fixture
def exported(sqlite_url: str, tmp_path: Path) -> dict[str, Path]:
    store = Store(sqlite_url)
    for source in ("blog", "forum"):
        mine = tuple(p for p in HOSTILE if p.source == source)
        store.save_fetch(source, "rss", Fetch(mine, None), NOW)
    paths = {}
    for fmt in ("jsonl", "csv"):
        paths[fmt] = tmp_path / f"posts.{fmt}"
        with paths[fmt].open("w", encoding="utf-8", newline="") as out:
            assert export.write(export.post_records(store), fmt, out) == len(HOSTILE)
    return paths


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_export_then_import_gives_the_same_posts(exported: dict[str, Path], fmt: str) -> None:
    items = everything(exported[fmt], None)
    assert not skips_of(items)
    for got, want in zip(posts_of(items), HOSTILE, strict=True):
        for name in ("source", "external_id", "url", "author", "text", "published_at",
                     "thread_id", "parent_id", "reach"):
            assert getattr(got, name) == getattr(want, name), (fmt, want.external_id, name)
        # CSV writes None and "" alike: an empty title reads back as None.
        assert got.title == (want.title or None if fmt == "csv" else want.title)
        assert got.published_at.tzinfo is not None
    assert "\ufffd" in posts_of(items)[1].text  # the lone surrogate, as the store holds it


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_source_given_replaces_the_exported_one(exported: dict[str, Path], fmt: str) -> None:
    assert {p.source for p in posts_of(everything(exported[fmt], "archive"))} == {"archive"}


def test_bad_export_records_are_skipped_by_place(exported: dict[str, Path],
                                                 tmp_path: Path) -> None:
    lines = exported["jsonl"].read_text("utf-8").splitlines()
    broken = json.loads(lines[0])
    broken["published_at"] = "last tuesday"
    no_text = json.loads(lines[1])
    del no_text["text"]
    path = tmp_path / "edited.jsonl"
    path.write_text("\n".join([lines[0], json.dumps(broken), "{not json", json.dumps(no_text),
                               lines[2]]) + "\n", "utf-8")
    items = everything(path, None)
    assert [(s.where, s.why.split(" (")[0]) for s in skips_of(items)] == [
        ("edited.jsonl:2", "bad published_at"), ("edited.jsonl:3", "not JSON"),
        ("edited.jsonl:4", "no text")]
    assert len(posts_of(items)) == 2
    rows = exported["csv"].read_text("utf-8").split("\n")
    header = rows[0]
    bad_csv = tmp_path / "edited.csv"
    bad_csv.write_text(header + "\n" + "only,three,cells\n", "utf-8")
    items = everything(bad_csv, None)
    assert [s.where for s in skips_of(items)] == ["edited.csv:2"] and not posts_of(items)
