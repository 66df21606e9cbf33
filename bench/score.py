"""Scoring speed: the full scorer against raw VADER, on the same texts, in one run.

    python bench/score.py [--data ../shared/data] [--batch 256] [--repeat 3]

First, whole processes, as a user runs them (the figure that counts): on the same texts, the
wall time of

* raw VADER: a ``python`` subprocess that reads the texts as JSON lines on stdin, calls
  ``SentimentIntensityAnalyzer().polarity_scores`` on each and writes each result as a JSON
  line (start-up included: Python, vaderSentiment);
* ``monitor score``: the installed CLI (``.venv/bin/monitor score < file``), the same JSON
  lines in, one JSON line out per text: every signal, both models and the rules of
  ``config.yaml``, start-up included (config, rules, models); with its default ``--jobs``
  (one worker process per CPU for a large input) and with ``--jobs 1``;

on 10,852 GoEmotions comments (the dev split, then the first 5,426 rows of train: short
Reddit comments), on all 48,836 of them (start-up weighs less, the per-text cost more) and on
1,000 long posts (twenty corpus texts joined, about 1,400 characters,
as a blog comment or forum post can be). Each figure is the best of ``--repeat`` runs, after
one untimed run (which fills the language model's cache, see ``scoring.detect._identifier``).
The ``monitor`` package is byte-compiled first, as ``pip install`` compiles it (and as
vaderSentiment is): a checkout run with ``PYTHONDONTWRITEBYTECODE=1`` would otherwise compile
every one of its modules in every process, about 0.1 s of start-up no installed copy pays.

Then, in this process, on the GoEmotions dev split and the four VADER paper corpora (tweets,
movie and Amazon reviews, NYT editorial snippets), about 29,000 texts of real English, each
one post without a title, and on the long posts: raw VADER's cost grows faster than the
length, ours does not, and long posts also take the per-sentence path. Each figure is the best
of ``--repeat`` runs:

* raw VADER: ``SentimentIntensityAnalyzer().polarity_scores`` on every text;
* our VADER (``monitor.scoring.vader``): the same numbers (checked equal on every corpus text);
* the scorer with every signal (VADER whole and per sentence, language, anger cues, change
  talk, churn) through ``Scorer.score_many`` in batches of ``--batch``, without the model;
* (corpus set) the same plus the rules of ``rules/*.yaml`` (``RuleSet.evaluate``), without and
  with the trained anger model (``monitor/scoring/models.py``, called once per batch);
* the speed of each relative to raw VADER (above 1x: faster than raw VADER).

Then the pathological posts: 1 MB of emoji, of "but but but", of "good but bad!!!", and one
1 MB word, each scored once by the full scorer (it must stay well under a second).
"""

from __future__ import annotations

import argparse
import compileall
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from monitor.model import Post
from monitor.rules import RuleSet, load_rules
from monitor.scoring import Scorer
from monitor.scoring.vader import vader

ROOT = Path(__file__).resolve().parent.parent
VADER_CORPORA = ("tweets", "movieReviewSnippets", "amazonReviewSnippets", "nytEditorialSnippets")
MONITOR = Path(sys.executable).parent / "monitor"
RAW_VADER = """\
import json, sys
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
analyzer = SentimentIntensityAnalyzer()
for line in sys.stdin:
    print(json.dumps(analyzer.polarity_scores(json.loads(line)["text"])))
"""


def corpus(data: Path) -> list[str]:
    """GoEmotions dev texts, then the VADER corpora texts (column 3 of *_GroundTruth.txt)."""
    with (data / "goemotions" / "dev.tsv").open(encoding="utf-8", newline="") as fh:
        texts = [row[0] for row in csv.reader(fh, delimiter="\t")]
    for name in VADER_CORPORA:
        path = data / "vader_groundtruth" / f"{name}_GroundTruth.txt"
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split("\t")
            if len(parts) >= 3:
                texts.append(parts[2])
    return texts


def goemotions(data: Path, count: int | None = 10_852) -> list[str]:
    """The GoEmotions dev split, then train rows up to ``count`` comments (None: all)."""
    texts: list[str] = []
    for split in ("dev", "train"):
        with (data / "goemotions" / f"{split}.tsv").open(encoding="utf-8", newline="") as fh:
            texts += [row[0] for row in csv.reader(fh, delimiter="\t")]
    return texts[:count]


def timed_process(command: list[str], stdin: Path, expected_lines: int) -> float:
    """Wall seconds of one whole process reading ``stdin``; its output is checked by count."""
    with stdin.open("rb") as source, tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        done = subprocess.run(command, stdin=source, stdout=out, stderr=subprocess.PIPE,
                              cwd=ROOT, check=False)
        took = time.perf_counter() - start
        out.seek(0)
        lines = sum(1 for _ in out)
    if done.returncode != 0 or lines != expected_lines:
        raise SystemExit(f"{' '.join(command)}: exit {done.returncode}, {lines} lines of "
                         f"{expected_lines}\n{done.stderr.decode(errors='replace')}")
    return took


def whole_processes(sets: Sequence[tuple[str, list[str]]], repeat: int) -> None:
    """Raw VADER and ``monitor score`` as whole processes, side by side."""
    commands = [("raw VADER (python + vaderSentiment)", [sys.executable, "-c", RAW_VADER]),
                (f"monitor score (--jobs {os.cpu_count()}: default)",
                 [str(MONITOR), "score", "--config", str(ROOT / "config.yaml")]),
                ("monitor score --jobs 1",
                 [str(MONITOR), "score", "--jobs", "1", "--config", str(ROOT / "config.yaml")])]
    compileall.compile_dir(ROOT / "monitor", quiet=1)  # see the module's docstring
    print(f"whole processes, start-up included, best of {repeat} "
          f"({os.cpu_count()} CPUs; stdin a file of JSON lines, stdout a file):")
    with tempfile.TemporaryDirectory() as folder:
        for title, texts in sets:
            path = Path(folder) / "texts.jsonl"
            path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), "utf-8")
            print(f"\n{title:44} {'texts/s':>9} {'seconds':>8} {'vs raw VADER':>13}")
            base = None
            for name, command in commands:
                timed_process(command, path, len(texts))  # warm: caches, page cache
                seconds = min(timed_process(command, path, len(texts)) for _ in range(repeat))
                base = base or seconds
                print(f"{name:44} {len(texts) / seconds:9,.0f} {seconds:8.2f} "
                      f"{base / seconds:12.2f}x")


def best_of(repeat: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def batched(scorer: Scorer, pairs: Sequence[tuple[None, str]], batch: int) -> None:
    for at in range(0, len(pairs), batch):
        scorer.score_many(pairs[at:at + batch])


def full(scorer: Scorer, posts: Sequence[Post], rules: RuleSet, batch: int) -> None:
    for at in range(0, len(posts), batch):
        chunk = posts[at:at + batch]
        for post, score in zip(chunk, scorer.score_posts(chunk), strict=True):
            rules.evaluate(post, score)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--processes-only", action="store_true",
                        help="Only the whole-process figures.")
    args = parser.parse_args()

    texts = corpus(args.data)
    # Long posts (twenty corpus texts each, about 1,400 characters), timed on their own.
    long_texts = [" ".join(texts[i:i + 20]) for i in range(0, 20_000, 20)]
    comments = goemotions(args.data)
    every_comment = goemotions(args.data, None)
    whole_processes([(f"{len(comments):,} GoEmotions comments (dev + train), "
                      f"{sum(map(len, comments)) / len(comments):.0f} chars", comments),
                     (f"all {len(every_comment):,} GoEmotions comments, "
                      f"{sum(map(len, every_comment)) / len(every_comment):.0f} chars",
                      every_comment),
                     (f"{len(long_texts):,} long posts, "
                      f"{sum(map(len, long_texts)) / len(long_texts):,.0f} chars", long_texts)],
                    args.repeat)
    if args.processes_only:
        return 0
    print()
    now = datetime.now(UTC)
    posts = [Post("bench", str(i), f"https://example.invalid/{i}", None, None, t, now)
             for i, t in enumerate(texts)]
    print(f"{len(texts):,} corpus texts, {sum(map(len, texts)) / len(texts):.0f} characters "
          f"on average; {len(long_texts)} long posts of "
          f"{sum(map(len, long_texts)) / len(long_texts):,.0f}")

    raw = SentimentIntensityAnalyzer()
    ours = vader()
    mismatches = sum(raw.polarity_scores(t) != ours.polarity_scores(t) for t in texts)
    print(f"our VADER vs vaderSentiment: {mismatches} of {len(texts):,} texts differ")

    rules = load_rules(ROOT / "rules", ROOT)
    no_model = Scorer(anger_model=False)
    with_model = Scorer()
    for scorer in (no_model, with_model):  # load lazily loaded models before timing
        scorer.score_many([(None, t) for t in texts[:300]])

    def table(title: str, texts: list[str], posts: list[Post]) -> None:
        pairs = [(None, t) for t in texts]
        base = best_of(args.repeat, lambda: [raw.polarity_scores(t) for t in texts])
        rows = [("raw VADER (vaderSentiment polarity_scores)", base),
                ("our VADER (monitor.scoring.vader, the same numbers)",
                 best_of(args.repeat, lambda: [ours.polarity_scores(t) for t in texts])),
                ("scorer, all signals, no anger model",
                 best_of(args.repeat, lambda: batched(no_model, pairs, args.batch)))]
        if posts:
            rows.append((f"scorer + {len(rules.rules)} rules, no anger model",
                         best_of(args.repeat, lambda: full(no_model, posts, rules, args.batch))))
            if with_model.model is not None:
                rows.append((f"scorer + {len(rules.rules)} rules + anger model",
                             best_of(args.repeat,
                                     lambda: full(with_model, posts, rules, args.batch))))
        print(f"\n{title:52} {'posts/s':>9} {'µs/post':>9} {'vs raw VADER':>13}")
        for name, seconds in rows:
            print(f"{name:52} {len(texts) / seconds:9,.0f} {seconds / len(texts) * 1e6:9.1f} "
                  f"{base / seconds:12.2f}x")

    table(f"{len(texts):,} corpus texts", texts, posts)
    long_posts = [Post("bench", f"long-{i}", f"https://example.invalid/long/{i}", None, None, t,
                       now) for i, t in enumerate(long_texts)]
    table(f"{len(long_texts)} long posts", long_texts, long_posts)
    if with_model.model is None:
        print("(the anger model is not installed: monitor/scoring/languages/en/anger.npz)")

    print("\npathological posts (one post each, full scorer with model):")
    for name, text in (("1 MB of emoji", "😡🔥💩" * 90_000),
                       ("1 MB of 'but but but'", "but " * 262_144),
                       ("1 MB of 'good but bad ' with !!!", "good but bad!!! " * 65_536),
                       ("one 1 MB word", "a" * 1_048_576)):
        start = time.perf_counter()
        score = with_model.score(None, text)
        took = time.perf_counter() - start
        print(f"  {name:34} {took * 1000:8.1f} ms  truncated={score.truncated} "
              f"angry={score.angry}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
