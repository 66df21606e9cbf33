"""Scoring speed: the full scorer against raw VADER, on the same texts, in one run.

    python bench/score.py [--data ../shared/data] [--batch 256] [--repeat 3]

Texts: the GoEmotions dev split (Reddit comments) and the four VADER paper corpora (tweets,
movie and Amazon reviews, NYT editorial snippets), about 29,000 texts of real English, each one
post without a title. Then, on their own, 200 long posts (twenty corpus texts joined, about
1,400 characters, as a blog comment or forum post can be): raw VADER's cost grows faster than
the length, ours does not, and long posts also take the per-sentence path.

Printed for each set, each figure the best of ``--repeat`` runs:

* raw VADER: ``SentimentIntensityAnalyzer().polarity_scores`` on every text;
* our VADER (``monitor.vader``): the same numbers (checked equal on every corpus text);
* the scorer with every signal (VADER whole and per sentence, language, anger cues, change
  talk, churn) through ``Scorer.score_many`` in batches of ``--batch``, without the model;
* (corpus set) the same plus the rules of ``rules/*.yaml`` (``RuleSet.evaluate``), without and
  with the trained anger model (``monitor/anger_model.py``, called once per batch);
* the speed of each relative to raw VADER (above 1x: faster than raw VADER).

Then the pathological posts: 1 MB of emoji, of "but but but", of "good but bad!!!", and one
1 MB word, each scored once by the full scorer (it must stay well under a second).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from monitor.model import Post
from monitor.rules import RuleSet, load_rules
from monitor.scoring import Scorer
from monitor.vader import vader

ROOT = Path(__file__).resolve().parent.parent
VADER_CORPORA = ("tweets", "movieReviewSnippets", "amazonReviewSnippets", "nytEditorialSnippets")


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
    args = parser.parse_args()

    texts = corpus(args.data)
    # Long posts (twenty corpus texts each, about 2,000 characters), timed on their own.
    long_texts = [" ".join(texts[i:i + 20]) for i in range(0, 4000, 20)]
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
                ("our VADER (monitor.vader, the same numbers)",
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
        print("(the anger model is not installed: monitor/languages/en/anger.npz)")

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
