"""How well and how fast ``monitor.backlash.themes`` groups posts into complaints.

    python bench/complaints.py [--data ../shared/data] [--heights 0.88,0.9,0.92,0.94]
                               [--compare old/themes.py]

1. Quality, on the URR golden set's dev part (``urr-golden-set/dev.jsonl``: Google Play reviews
   with topics labelled by hand, Ciurumelea et al., SANER 2017). Samples built by rule, as
   ``tests/fixtures/complaints/make_three_themes.py`` does: for each of 7 topic triples and 5
   seeds, up to 25 reviews per topic that carry it and neither other topic (at least 4 words),
   plus 8 reviews labelled only OTHER; and one large sample, every such review of 5 topics plus
   300 OTHER-or-ERROR reviews (513 in all). Printed per merge height: how many samples come back
   with their three topics as the three largest groups, each at least 80 % pure ("ok"); the
   mean purity of those three groups (0 for a missing one); the share of posts grouped; and,
   for the large sample (up to 30 groups), the largest group and the best group of each topic.
2. Quality in English and French, on Mini-BAR (``mini-bar/clustering/<app>/*.csv``: 200 Google
   Play problem reports and 200 feature requests per app, half English, half French, grouped by
   hand by "the same problem"; Wei et al., ICTAI 2023). Each file is grouped whole ("mixed"),
   and its English and its French posts alone, with no cap on the number of groups. Printed,
   new method then old (the module as of commit ``OLD``, English only, read with ``git show``;
   left out without git; or, with ``--compare``, the ``themes.py`` at that path):
   * ARI, sklearn's adjusted Rand index; a post left out counts as a group of its own;
   * purity: the share of grouped posts that are in their group's most common true group;
   * grouped: the share of posts in some group;
   * 5+: true groups of 5 or more posts that come back, of all such groups. One comes back when
     a single found group holds more than half of its posts and at least half of that found
     group's posts are its own;
   * across (mixed input only): of the pairs of posts in different languages that are in one
     true group, the share put in one found group;
   * opinion: groups named by opinion words only ("good", "hate / disappointing"; the words of
     ``themes._is_opinion``), which should be none.
2b. Launch words, on the mixed problem reports: the report groups posts found by a launch's
   keywords, and those keywords are often what people complain about. Here the keywords are the
   app's name and three features most reports of both apps are about (``KEYWORDS``: sync,
   Bluetooth, notifications); the posts are grouped without them, with them removed (``ignore``,
   what the report did before) and kept as launch words (``launch_words``); once as written,
   and once with every post starting with the app's name ("app named"), as every post the
   report groups names the launch. Printed: the figures of 2, and the first labels that hold a
   keyword's word (in "app named", the app's name should be in none).
2c. Sampling (issue 19): beyond ``themes.MAX_POSTS`` posts a uniform sample is grouped and the
   other posts are assigned to the nearest group (or none). Measured on Mini-BAR's problem
   reports and feature requests of one app (400 posts; a true group is a kind's group) and of
   both apps (800), grouped whole and with ``max_posts`` at half and a quarter of the posts:
   the figures of 2, over every post (an assigned post counts in its group).
3. Speed: one call on 500 short reviews, on 500 posts of about 250 words, on 2,000 posts (the
   URR dev reviews and GoEmotions Reddit comments of ``tests/fixtures/labelled``), and on 2,000
   Mini-BAR reviews (the first 1,000 English and 1,000 French of Garmin Connect); median of 3
   calls, after the import (whose time is printed too).

The merge height, the character n-gram weight and the French term map were chosen with this
script on URR and on Mini-BAR's Garmin Connect, so those figures are optimistic; Huawei Health was
only checked, once the settings were chosen. The test fixtures come from the same Garmin and URR
data. With 100 to 200 posts per figure, differences of a few hundredths are noise.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
import subprocess
import sys
import time
import types
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
APPS = ("Garmin Connect", "Huawei Health")
KINDS = ("problem_report", "feature_request")
OLD = "3665bb10a83abbc5445777fb2a881ff871aa8fe6"  # the last English-only complaints.py
KEYWORDS = {app: [app.lower(), "sync", "bluetooth", "notifications"] for app in APPS}


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


def grouped(sample: list[tuple[str, str]], max_groups: int = 8,
            module: types.ModuleType | None = None) -> list[list[str]]:
    """The topic labels of each group's posts, largest group first."""
    from monitor.backlash import themes

    items = list(enumerate(text for text, _ in sample))
    found = (module or themes).group_complaints(items, max_groups=max_groups)
    return [[sample[k][1] for k in c.keys] for c in found]


def quality(reviews: list[dict], module: types.ModuleType | None = None) -> None:
    ok, purities, shares, samples = 0, [], [], 0
    for topics in TRIPLES:
        for seed in range(1, 6):
            sample = themed(reviews, topics, 25, 8, ("OTHER",), seed)
            groups, samples = grouped(sample, module=module), samples + 1
            top = [Counter(g).most_common(1)[0] + (len(g),) for g in groups[:3]]
            purities += [n / size for _, n, size in top] + [0.0] * (3 - len(top))
            shares.append(sum(map(len, groups)) / len(sample))
            ok += {t for t, _, _ in top} == set(topics) and all(n / s >= 0.8 for _, n, s in top)
    print(f"  3 topics, {samples} samples: ok {ok}, purity of the 3 largest "
          f"{statistics.mean(purities):.2f}, grouped {statistics.mean(shares):.0%}")
    sample = themed(reviews, LARGE, None, 300, ("OTHER", "ERROR"), 1)
    groups = grouped(sample, max_groups=30, module=module)
    largest = Counter(groups[0]).most_common(1)[0][1] / len(groups[0]) if groups else 0
    best = {}
    for g in groups:
        topic, n = Counter(g).most_common(1)[0]
        if topic != "OFF" and n > best.get(topic, (0, 0))[0]:
            best[topic] = (n, len(g))
    print(f"  {len(sample)} reviews, 5 topics + 300 off-topic: {len(groups)} groups, "
          f"largest {len(groups[0]) if groups else 0} ({largest:.0%} one label); best group "
          "per topic: " + ", ".join(f"{t.lower()} {n}/{s}" for t, (n, s) in sorted(best.items())))


def old_module(compare: Path | None = None) -> types.ModuleType | None:
    """The grouping as of commit ``OLD`` (then ``monitor/reports/complaints.py``), or None
    without git or that commit; or the module at ``compare``."""
    if compare is not None:
        module = types.ModuleType("complaints_compared")
        sys.modules[module.__name__] = module
        exec(compile(compare.read_text("utf-8"), str(compare), "exec"), module.__dict__)
        return module
    try:
        source = subprocess.run(
            ["git", "show", f"{OLD}:monitor/reports/complaints.py"], cwd=REPO, check=True,
            capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    module = types.ModuleType("complaints_before_french")
    sys.modules[module.__name__] = module  # dataclasses looks the module up
    exec(compile(source, f"{OLD[:7]}:monitor/reports/complaints.py", "exec"), module.__dict__)
    return module


def read_minibar(data: Path, app: str, kind: str) -> list[dict]:
    path = data / "mini-bar" / "clustering" / app / f"{kind}.csv"
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def scores(module: types.ModuleType, rows: list[dict], **options: object) -> dict[str, float]:
    """The figures of the module docstring for one input (``rows`` of a Mini-BAR file);
    ``options`` go to ``group_complaints``."""
    from sklearn.metrics import adjusted_rand_score

    from monitor.backlash.themes import _is_opinion

    found = module.group_complaints(list(enumerate(r["data"] for r in rows)),
                                    max_groups=len(rows), **options)
    group_of = {k: g for g, c in enumerate(found) for k in c.keys}
    truth = [r["ground_truth"] for r in rows]
    labels = [group_of.get(i, len(found) + i) for i in range(len(rows))]  # alone: its own
    grouped = sum(c.count for c in found)
    majority = sum(Counter(truth[k] for k in c.keys).most_common(1)[0][1] for c in found)
    sizes = Counter(truth)
    back = 0
    for true, size in sizes.items():
        back += size >= 5 and any(2 * n > size and 2 * n >= c.count for c in found
                                  if (n := sum(truth[k] == true for k in c.keys)))
    pairs = together = 0
    for i in range(len(rows)):
        for j in range(i):
            if truth[i] == truth[j] and rows[i]["ori_lang"] != rows[j]["ori_lang"]:
                pairs += 1
                together += i in group_of and group_of.get(j) == group_of[i]
    return {"ari": adjusted_rand_score(truth, labels), "purity": majority / max(grouped, 1),
            "grouped": grouped / len(rows), "back": back,
            "big": sum(size >= 5 for size in sizes.values()),
            "across": together / pairs if pairs else float("nan"),
            "opinion": sum(all(_is_opinion(w) for p in c.phrases[:2] for w in p.split())
                           for c in found),
            "labels": [c.label for c in found]}


def minibar(module: types.ModuleType, data: Path) -> dict[tuple[str, str, str], dict]:
    """Figures per (app, file, input): the English posts, the French posts, and all of them."""
    figures = {}
    for app in APPS:
        for kind in KINDS:
            rows = read_minibar(data, app, kind)
            for lang in ("en", "fr", "mixed"):
                part = [r for r in rows if lang in ("mixed", r["ori_lang"])]
                figures[app, kind, lang] = scores(module, part)
    return figures


def print_minibar(new: dict, old: dict | None) -> None:
    def line(f: dict) -> str:
        across = f"  across {f['across']:4.0%}" if f["across"] == f["across"] else ""  # not NaN
        return (f"ARI {f['ari']:5.2f}  purity {f['purity']:.2f}  grouped {f['grouped']:4.0%}  "
                f"5+ {f['back']:2}/{f['big']:<2}  opinion {f['opinion']}{across}").rstrip()

    for (app, kind, lang), f in new.items():
        print(f"  {app:14} {kind:15} {lang:5}  new: {line(f)}")
        if old:
            print(f"  {'':36}  old: {line(old[app, kind, lang])}")


def launch(module: types.ModuleType, data: Path) -> None:
    """Part 2b of the module docstring."""
    for app in APPS:
        rows = read_minibar(data, app, "problem_report")
        named = [dict(r, data=f"{app}: {r['data']}") for r in rows]
        keywords = KEYWORDS[app]
        for posts, sample in (("as written", rows), ("app named", named)):
            for name, options in (("none", {}), ("ignore", {"ignore": keywords}),
                                  ("launch_words", {"launch_words": keywords})):
                try:
                    f = scores(module, sample, **options)
                except TypeError:  # a module without launch_words
                    continue
                hits = [label for label in f["labels"]
                        if any(w in label.split() for k in keywords for w in k.split())]
                print(f"  {app:14} {posts:10} {name:12}  ARI {f['ari']:5.2f}  "
                      f"purity {f['purity']:.2f}  5+ {f['back']:2}/{f['big']:<2}  "
                      f"opinion {f['opinion']}  keyword in: {'; '.join(hits[:4]) or '-'}")


def sampling(module: types.ModuleType, data: Path) -> None:
    """Part 2c of the module docstring."""
    inputs: dict[str, list[dict]] = {}
    for app in APPS:
        rows = [dict(r, ground_truth=f"{app}/{kind}/{r['ground_truth']}")
                for kind in KINDS for r in read_minibar(data, app, kind)]
        inputs[app] = rows
    inputs["both apps"] = [r for app in APPS for r in inputs[app]]
    for name, rows in inputs.items():
        for cap in (len(rows), len(rows) // 2, len(rows) // 4):
            try:
                f = scores(module, rows, max_posts=cap)
            except TypeError:  # a module without max_posts
                if cap != len(rows):
                    continue
                f = scores(module, rows)
            shown = "all grouped" if cap == len(rows) else f"{cap} grouped"
            print(f"  {name:14} {len(rows):3} posts, {shown:12}  ARI {f['ari']:5.2f}  "
                  f"purity {f['purity']:.2f}  grouped {f['grouped']:4.0%}  "
                  f"5+ {f['back']:2}/{f['big']:<2}")


def speed(data: Path) -> None:
    from monitor.backlash.themes import group_complaints

    urr = [json.loads(line)["text"] for line in (LABELLED / "urr-dev.jsonl").open(encoding="utf-8")]
    reddit = [json.loads(line)["text"]
              for line in (LABELLED / "goemotions-dev-2000.jsonl").open(encoding="utf-8")]
    rng = random.Random(1)
    long = [" ".join(rng.sample(urr, 12)) for _ in range(500)]
    cases = {"500 reviews": urr[:500], "500 posts of ~250 words": long,
             "2,000 reviews and comments": (urr + reddit)[:2000]}
    both = [data / "mini-bar" / "classification" / f"Garmin Connect.{lang}.csv"
            for lang in ("en", "fr")]
    if all(path.exists() for path in both):
        texts = []
        for path in both:
            with path.open(encoding="utf-8", newline="") as f:
                texts += [row["data"] for row in csv.DictReader(f)][:1000]
        cases["2,000 Mini-BAR reviews, half French"] = texts[:2000]
        more = []
        for path in sorted((data / "mini-bar" / "classification").glob("*.csv")):
            with path.open(encoding="utf-8", newline="") as f:
                more += [row["data"] for row in csv.DictReader(f)]
        if len(more) > len(texts):  # a sample grouped, the rest assigned
            cases[f"{len(more):,} Mini-BAR reviews (a sample grouped)"] = more
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
    parser.add_argument("--compare", type=Path,
                        help="a themes.py to compare with, instead of the English-only commit")
    args = parser.parse_args()
    started = time.perf_counter()
    from monitor.backlash import themes  # scikit-learn and scipy come with it
    imported = time.perf_counter() - started

    lines = (args.data / "urr-golden-set" / "dev.jsonl").read_text("utf-8").splitlines()
    reviews = sorted((json.loads(line) for line in lines), key=lambda r: r["id"])
    old = old_module(args.compare)
    old_figures = minibar(old, args.data) if old else None
    shipped = themes.MERGE_DISTANCE
    heights = [float(h) for h in args.heights.split(",") if h] or [shipped]
    for height in heights:
        themes.MERGE_DISTANCE = height
        print(f"quality, merge height {height}" + (" (shipped)" if height == shipped else ""))
        quality(reviews)
        print("  Mini-BAR" + ("" if old else " (old method left out: no git)"))
        print_minibar(minibar(themes, args.data), old_figures)
    themes.MERGE_DISTANCE = shipped
    print("launch words, mixed problem reports")
    launch(themes, args.data)
    print("sampling: a part grouped, the rest assigned (problem reports and feature requests)")
    sampling(themes, args.data)
    if old:
        shown = args.compare or f"commit {OLD[:7]}"
        print(f"quality of the old method ({shown}, merge height {old.MERGE_DISTANCE})")
        quality(reviews, old)
        print("  launch words")
        launch(old, args.data)
    print(f"speed (import of the module: {imported:.2f} s)")
    speed(args.data)


if __name__ == "__main__":
    main()
