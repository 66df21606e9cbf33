"""``monitor score`` on a stream: batches, worker processes, order, bad lines, and a person
typing one line at a time (a real subprocess).

Speed is measured by ``bench/score.py``, never here.
"""

from __future__ import annotations

import io
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import pytest

from monitor import scorestream
from monitor.config import load
from monitor.errors import MonitorError
from monitor.model import Post, Score
from monitor.rules import RuleSet
from monitor.runtime import Runtime

MONITOR = str(Path(sys.executable).parent / "monitor")
WORD_RULES = """\
rules:
  - {id: thanks, severity: low, category: praise, when: {words: [thanks, love]}}
  - {id: rude, severity: high, category: abuse, when: {words: ["idiot*", hate]}}
"""
TEXTS = ["thanks, I love the new dashboard", "you idiots broke the editor again!!!",
         "fine", "I HATE THIS UPDATE, bring back the old one", "Where did the export button go?",
         "Das neue Update ist eine absolute Katastrophe, ich finde nichts mehr."]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("project")
    (folder / "sources").mkdir()
    (folder / "rules").mkdir()
    (folder / "rules" / "words.yaml").write_text(WORD_RULES)
    (folder / "config.yaml").write_text("sources: sources/\nrules: rules/\n")
    return folder / "config.yaml"


@pytest.fixture(scope="module")
def judge(project: Path) -> Runtime:
    return Runtime.of(load(project))


def lines_of(count: int, bad_every: int = 0) -> list[str]:
    """``count`` input lines, each text numbered so that order shows; every ``bad_every``-th
    line is broken JSON, and some are blank."""
    out = []
    for i in range(1, count + 1):
        if bad_every and i % bad_every == 0:
            out.append('{"text": "unclosed')
        elif i % 97 == 0:
            out.append("   ")
        else:
            out.append(json.dumps({"text": f"{TEXTS[i % len(TEXTS)]} (number {i})"}))
    return out


def one_at_a_time(lines: list[str], judge: Runtime) -> list[dict[str, Any]]:
    """What scoring each line alone gives: the reference for every batched path."""
    return [obj for number, line in enumerate(lines, 1) if line.strip()
            for obj in scorestream.score_batch([(number, line)], judge.rules, judge.scorer)]


def written(lines: Iterable[str], judge: Runtime, **options: Any) -> list[dict[str, Any]]:
    out = io.StringIO()
    scorestream.write_scores(lines, out, judge.rules, judge.scorer, **options)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_batches_keep_order_and_bad_lines_in_place(judge: Runtime) -> None:
    lines = lines_of(1_234, bad_every=50)  # three batches of up to 500
    expected = one_at_a_time(lines, judge)
    got = list(scorestream.score_lines(lines, judge.rules, judge.scorer))
    assert got == expected
    assert len(got) == 1_234 - 1_234 // 97
    errors = [obj["line"] for obj in got if "error" in obj]
    assert errors == [n for n in range(50, 1_235, 50) if n % 97]
    assert got[49]["line"] == 50  # the 50th line's answer is the 50th (no blank line before)
    assert got[49]["error"].startswith("line 50: not valid JSON")
    assert written(lines, judge, jobs=1) == expected


def test_pool_gives_the_same_output_as_one_process(judge: Runtime,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    lines = lines_of(2_345, bad_every=333)
    pooled: list[int] = []
    real = scorestream._write_pooled

    def spy(*args: Any, **kwargs: Any) -> None:
        pooled.append(os.getpid())
        real(*args, **kwargs)

    monkeypatch.setattr(scorestream, "_write_pooled", spy)
    alone = written(lines, judge, jobs=1)
    assert not pooled
    assert written(lines, judge, jobs=2, pool_lines=10) == alone == one_at_a_time(lines, judge)
    assert pooled, "the pool was not used"
    assert written(lines[:5], judge, jobs=2, pool_lines=10) == alone[:5]  # small: no pool
    assert len(pooled) == 1
    long = [json.dumps({"text": " ".join(TEXTS * 20)})] * 30  # few lines, but long ones
    assert written(long, judge, jobs=2, pool_chars=50_000) == written(long, judge, jobs=1)
    assert len(pooled) == 2


class FailingScorer:
    """Scores like ``scorer`` but fails on a text holding ``poison``, the way ``how`` says."""

    def __init__(self, scorer: Any, poison: str, how: str) -> None:
        self.scorer, self.poison, self.how = scorer, poison, how

    def score_post(self, post: Post) -> Score:
        return self.score_posts([post])[0]

    def score_posts(self, posts: Iterable[Post]) -> list[Score]:
        posts = list(posts)
        if any(self.poison in p.text for p in posts):
            if self.how == "die":
                os._exit(3)  # a worker killed outright: no exception to send back
            raise RuntimeError("model file went missing")
        return self.scorer.score_posts(posts)

    def preload(self) -> None:
        self.scorer.preload()


@pytest.mark.parametrize(("how", "message"), [("raise", "model file went missing"),
                                              ("die", "worker process died")])
def test_a_failing_worker_stops_with_a_clear_error(judge: Runtime, how: str,
                                                   message: str) -> None:
    lines = lines_of(1_600)
    lines[1_200] = json.dumps({"text": "poison"})
    scorer = FailingScorer(judge.scorer, "poison", how)
    out = io.StringIO()
    finished: queue.Queue[BaseException | None] = queue.Queue()

    def run() -> None:
        try:
            scorestream.write_scores(lines, out, judge.rules, scorer, jobs=2, pool_lines=10)
        except BaseException as error:  # handed to the test below
            finished.put(error)
        else:
            finished.put(None)

    threading.Thread(target=run, daemon=True).start()
    error = finished.get(timeout=120)  # a hang fails here instead of blocking the suite
    assert isinstance(error, MonitorError) and message in str(error)
    assert out.getvalue().count("\n") <= 1_000  # answers before the failed batch only


def test_line_chunks_from_a_descriptor_end_where_the_input_paused() -> None:
    read, write = os.pipe()
    with os.fdopen(read, "rb", buffering=0) as source:
        chunks = scorestream.line_chunks(source)
        os.write(write, b'{"text": "one"}\n{"text": "two"}\n{"text": "thr')
        assert next(chunks) == ['{"text": "one"}', '{"text": "two"}']
        os.write(write, b'ee"}\n')
        assert next(chunks) == ['{"text": "three"}']
        os.write(write, b'{"text": "caf\xe9"}\n{"text": "last, no newline"}')
        os.close(write)
        assert list(chunks) == [['{"text": "caf\ufffd"}'], ['{"text": "last, no newline"}']]


def test_batches_are_cut_by_lines_and_by_characters() -> None:
    chunks = [["a" * 30] * 5, ["", "b" * 30, "  "], ["c" * 30] * 3]
    batches = list(scorestream._numbered_batches(chunks, size=3, chars=100))
    assert [[n for n, _ in batch] for batch in batches[0]] == [[1, 2, 3], [4, 5]]
    assert batches[1] == [[(7, "b" * 30)]]  # blank lines counted, not scored
    assert [[n for n, _ in b] for b in next(scorestream._numbered_batches(chunks[2:], 9, 50))] == [
        [1, 2], [3]]  # 60 characters reach 50: the next line starts a batch
    assert list(scorestream._numbered_batches([["", " "]])) == [[]]


def test_line_chunks_of_a_list_are_cut_by_count() -> None:
    assert [len(c) for c in scorestream.line_chunks([str(i) for i in range(7)], size=3)] \
        == [3, 3, 1]


def answers(stream: Iterable[str]) -> queue.Queue[str]:
    """A queue the subprocess's output lines arrive on, read by a thread."""
    arrived: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            arrived.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return arrived


def test_a_typed_line_is_answered_before_the_next_is_written(project: Path) -> None:
    process = subprocess.Popen([MONITOR, "score", "--config", str(project)], text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    assert process.stdin and process.stdout
    try:
        arrived = answers(process.stdout)
        process.stdin.write(json.dumps({"text": "you idiots"}) + "\n")
        process.stdin.flush()
        first = json.loads(arrived.get(timeout=60))  # start-up included
        assert first["rules"] == ["rude"]
        process.stdin.write("not json\n")
        process.stdin.flush()
        assert json.loads(arrived.get(timeout=20)) == {
            "line": 2, "error": "line 2: not valid JSON (Expecting value at column 1)"}
        process.stdin.write(json.dumps({"text": "thanks, love it"}) + "\n")
        process.stdin.flush()
        assert json.loads(arrived.get(timeout=20))["rules"] == ["thanks"]
        process.stdin.close()
        assert process.wait(timeout=20) == 0
    finally:
        process.kill()


def test_pooled_answers_are_not_held_back_while_the_input_pauses(project: Path,
                                                                judge: Runtime) -> None:
    """Over the pool threshold, then a pause with stdin still open: every answer so far must
    come out (a client that waits for its answers before writing more must not hang)."""
    lines = lines_of(scorestream.POOL_LINES + 500, bad_every=400)
    count = sum(1 for line in lines if line.strip())
    process = subprocess.Popen([MONITOR, "-v", "score", "--jobs", "2", "--config", str(project)],
                               text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    assert process.stdin and process.stdout
    try:
        arrived = answers(process.stdout)
        process.stdin.write("\n".join(lines) + "\n")
        process.stdin.flush()
        got = [json.loads(arrived.get(timeout=60)) for _ in range(count)]
        assert got == one_at_a_time(lines, judge)
        process.stdin.write(json.dumps({"text": "you idiots"}) + "\n")
        process.stdin.flush()
        assert json.loads(arrived.get(timeout=20))["rules"] == ["rude"]
        process.stdin.close()
        assert process.wait(timeout=20) == 0
        assert process.stderr and "scoring in 2 worker processes" in process.stderr.read()
    finally:
        process.kill()


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status  # a zombie has ended, whoever reaps it


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc (Linux)")
def test_workers_end_when_their_parent_is_killed(project: Path) -> None:
    process = subprocess.Popen([MONITOR, "score", "--jobs", "2", "--config", str(project)],
                               text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
    assert process.stdin and process.stdout
    try:
        arrived = answers(process.stdout)
        lines = lines_of(scorestream.POOL_LINES + 100)
        process.stdin.write("\n".join(lines) + "\n")
        process.stdin.flush()
        for _ in range(sum(1 for line in lines if line.strip())):
            arrived.get(timeout=60)  # all answered; the pool waits for more input
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        workers = [int(pid) for pid in children]
        assert len(workers) == 2
    finally:
        process.kill()  # no shutdown, stdin left open: the workers are on their own
        process.wait(timeout=20)
    deadline = time.monotonic() + 15
    while any(map(alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(alive, workers))


def test_the_cached_language_model_answers_as_py3langid_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    from monitor.scoring import detect

    texts = [*TEXTS, "La nouvelle mise à jour est une catastrophe, je vais résilier.",
             "Esto es un desastre, quiero mi dinero de vuelta", "これは日本語です", "", "A" * 400]
    reference = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    try:
        for _ in range(2):  # unpacked into the cache, then read from it
            detect._identifier.cache_clear()
            assert [detect._identifier().classify(t) for t in texts] == \
                [reference.classify(t) for t in texts]
        assert list((tmp_path / "feedback-monitor").glob("py3langid-*/classes.json"))
    finally:
        detect._identifier.cache_clear()


def test_an_empty_rule_set_and_an_empty_input_write_nothing(judge: Runtime) -> None:
    out = io.StringIO()
    scorestream.write_scores([], out, RuleSet(()), judge.scorer, jobs=2, pool_lines=1)
    scorestream.write_scores(["", "  "], out, RuleSet(()), judge.scorer, jobs=2, pool_lines=1)
    assert out.getvalue() == ""


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_reader_that_stops_early_ends_it_quietly(project: Path, jobs: str) -> None:
    """``monitor score < big | head -1``: the closed pipe ends the command with exit 0 and
    nothing on stderr, not an error about a rolled-back write."""
    lines = "".join(json.dumps({"text": f"the new editor is broken, day {i}"}) + "\n"
                    for i in range(6000))
    process = subprocess.Popen([MONITOR, "score", "--jobs", jobs, "--config", str(project)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    writer = threading.Thread(target=_feed, args=(process.stdin, lines.encode()))
    writer.start()
    assert json.loads(process.stdout.readline())["flagged"] in (True, False)
    process.stdout.close()
    writer.join(60)
    assert process.wait(60) == 0
    assert process.stderr.read().decode() == ""


def _feed(pipe: IO[bytes], data: bytes) -> None:
    try:
        pipe.write(data)
        pipe.close()
    except BrokenPipeError:  # the command stopped reading once its output was closed
        pass
