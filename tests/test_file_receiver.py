"""``type: file``: each notice one JSON line, appended; a relative path is refused at check."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.errors import ConfigError, DeliveryError
from monitor.model import Flag, FlaggedPost, Notice, Post, Score
from monitor.receivers import build_receiver


def notice(key: str) -> Notice:
    post = Post("blog", "c-1", "https://example.com/c-1", "ana", "New look", "A disaster.",
                datetime(2026, 12, 1, tzinfo=UTC))
    flagged = FlaggedPost(post, Score(-0.6, 0.0, 0.5, 0.5), Flag("high", ("r",), ("why",)))
    return Notice(key, "log", "thread:blog:c-1", (flagged,))


def test_notices_are_appended_as_json_lines(tmp_path: Path) -> None:
    receiver = build_receiver("log", {"type": "file", "path": str(tmp_path / "notices.jsonl")})
    receiver.send(notice("flag:1:log"))
    receiver.send(notice("flag:2:log"))
    lines = [json.loads(line) for line in (tmp_path / "notices.jsonl").read_text().splitlines()]
    assert [line["key"] for line in lines] == ["flag:1:log", "flag:2:log"]
    assert lines[0]["posts"][0]["text"] == "A disaster." and lines[0]["severity"] == "high"


def test_a_missing_folder_is_a_retryable_failure(tmp_path: Path) -> None:
    receiver = build_receiver("log", {"type": "file", "path": str(tmp_path / "no" / "x.jsonl")})
    with pytest.raises(DeliveryError) as failed:
        receiver.send(notice("flag:1:log"))
    assert failed.value.retryable and "cannot write" in str(failed.value)


def test_a_relative_path_is_refused() -> None:
    with pytest.raises(ConfigError) as refused:
        build_receiver("log", {"type": "file", "path": "notices.jsonl"}, "config.yaml")
    assert "receivers.log.path" in str(refused.value) and "absolute" in str(refused.value)
