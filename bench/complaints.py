"""How well and how fast ``monitor.reports.complaints`` groups posts into complaints.

    python bench/complaints.py [--data ../shared/data] [--heights 0.9,0.93,0.94,0.95,0.97]

1. Quality, on the URR golden set's dev part (``urr-golden-set/dev.jsonl``: Google Play reviews
   with topics labelled by hand, Ciurumelea et al., SANER 2017). Samples built by rule, as
   ``tests/fixtures/complaints/make_three_themes.py`` does: for each of 7 topic triples and 5
   seeds, up to 25 reviews per topic that carry it and neither other topic (at least 4 words),
   plus 8 reviews labelled only OTHER; and one large sample, every such review of 5 topics plus
   300 OTHER-or-ERROR reviews (513 in all). Printed per merge height: how many samples come back
   with their three topics as the three largest groups, each at least 80 % pure ("ok"); the
   mean purity of those three groups (0 for a missing one); the share of posts grouped; and,
   for the large sample (up to 30 groups), the largest group and the best group of each topic.
2. Speed: one call on 500 short reviews, on 500 posts of about 250 words, and on 2,000 posts
   (the URR dev reviews and GoEmotions Reddit comments of ``tests/fixtures/labelled``);
   median of 3 calls, after the import (whose time is printed too).

The merge height was chosen with this script, so these quality figures are optimistic; the
test fixture comes from the same data.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data"
LABELLED = REPO / "tests" / "fixtures" / "labelled"
TRIPLES = [
    ("MEMORY", "SECURITY", "BATTERY"), ("PRIVACY", "LICENSING", "MEMORY"),
    ("BATTERY", "PRIVACY", "SECURITY"), ("LICENSING", "BATTERY", "SECURITY"),
    ("MEMORY", "PRIVACY", "BATTERY"), ("UI", "MEMORY", "BATTERY"),
    ("PERFORMANCE", "SECURITY", "LICENSING"),
]
LARGE = ("MEMORY", "SECURITY", "BATTERY", "PRIVACY", "LICENSING")


def themed(reviews: list[dict], topics: tuple[str, ...], per_topic: int | None, off: int,
           off_labels: tuple[str, ...], seed: int) -> list[tuple[str, str]]:
    """(text, topic or OFF) pairs, shuffled: the sampling rule of the module docstring."""
    rng = random.Random(seed)
    rows = []
    for topic in topics:
        pool = [r for r in reviews if topic in r["labels"]
                and not (set(topics) - {topic}) & set(r["labels"]) and len(r["text"].split()) >= 4]
        picked = pool if per_topic is None else rng.sample(pool, min(per_topic, len(pool)))
        rows += [(r["text"], topic) for r in picked]
    pool = [r for r in reviews if r["labels"] in [[label] for label in off_labels]
            and len(r["text"].split()) >= (6 if per_topic else 1)]
    rows += [(r["text"], "OFF") for r in rng.sample(pool, off)]
    rng.shuffle(rows)
    return rows


def grouped(sample: list[tuple[str, str]], max_groups: int = 8) -> list[list[str]]:
    """The topic labels of each group's posts, largest group first."""
    from monitor.reports.complaints import group_complaints

    items = list(enumerate(text for text, _ in sample))
    found = group_complaints(items, max_groups=max_groups)
    return [[sample[k][1] for k in c.keys] for c in found]


def quality(reviews: list[dict]) -> None:
    ok, purities, shares, samples = 0, [], [], 0
    for topics in TRIPLES:
        for seed in range(1, 6):
            sample = themed(reviews, topics, 25, 8, ("OTHER",), seed)
            groups, samples = grouped(sample), samples + 1
            top = [Counter(g).most_common(1)[0] + (len(g),) for g in groups[:3]]
            purities += [n / size for _, n, size in top] + [0.0] * (3 - len(top))
            shares.append(sum(map(len, groups)) / len(sample))
            ok += {t for t, _, _ in top} == set(topics) and all(n / s >= 0.8 for _, n, s in top)
    print(f"  3 topics, {samples} samples: ok {ok}, purity of the 3 largest "
          f"{statistics.mean(purities):.2f}, grouped {statistics.mean(shares):.0%}")
    sample = themed(reviews, LARGE, None, 300, ("OTHER", "ERROR"), 1)
    groups = grouped(sample, max_groups=30)
    largest = Counter(groups[0]).most_common(1)[0][1] / len(groups[0]) if groups else 0
    best = {}
    for g in groups:
        topic, n = Counter(g).most_common(1)[0]
        if topic != "OFF" and n > best.get(topic, (0, 0))[0]:
            best[topic] = (n, len(g))
    print(f"  {len(sample)} reviews, 5 topics + 300 off-topic: {len(groups)} groups, "
          f"largest {len(groups[0]) if groups else 0} ({largest:.0%} one label); best group "
          "per topic: " + ", ".join(f"{t.lower()} {n}/{s}" for t, (n, s) in sorted(best.items())))


def speed() -> None:
    from monitor.reports.complaints import group_complaints

    urr = [json.loads(line)["text"] for line in (LABELLED / "urr-dev.jsonl").open(encoding="utf-8")]
    reddit = [json.loads(line)["text"]
              for line in (LABELLED / "goemotions-dev-2000.jsonl").open(encoding="utf-8")]
    rng = random.Random(1)
    long = [" ".join(rng.sample(urr, 12)) for _ in range(500)]
    cases = {"500 reviews": urr[:500], "500 posts of ~250 words": long,
             "2,000 reviews and comments": (urr + reddit)[:2000]}
    for name, texts in cases.items():
        words = statistics.mean(len(t.split()) for t in texts)
        times = []
        for _ in range(3):
            started = time.perf_counter()
            found = group_complaints(list(enumerate(texts)))
            times.append(time.perf_counter() - started)
        print(f"  {name} ({words:.0f} words on average): {statistics.median(times):.2f} s, "
              f"{len(found)} groups, {sum(c.count for c in found)} posts grouped")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--heights", default="", help="merge heights to compare, e.g. 0.9,0.95")
    args = parser.parse_args()
    started = time.perf_counter()
    from monitor.reports import complaints  # scikit-learn and scipy come with it
    imported = time.perf_counter() - started

    lines = (args.data / "urr-golden-set" / "dev.jsonl").read_text("utf-8").splitlines()
    reviews = sorted((json.loads(line) for line in lines), key=lambda r: r["id"])
    shipped = complaints.MERGE_DISTANCE
    heights = [float(h) for h in args.heights.split(",") if h] or [shipped]
    for height in heights:
        complaints.MERGE_DISTANCE = height
        print(f"quality, merge height {height}" + (" (shipped)" if height == shipped else ""))
        quality(reviews)
    complaints.MERGE_DISTANCE = shipped
    print(f"speed (import of the module: {imported:.2f} s)")
    speed()


if __name__ == "__main__":
    main()
