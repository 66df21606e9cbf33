"""Does ``monitor learn`` help? Replay labelled posts week by week, with and without learning.

    python bench/learn_replay.py [--data ../shared/data] [--weeks 4] [--seed 0]

Stream: the URR golden set (``urr-golden-set/dev.jsonl``: 950 Google Play reviews of apps the
complaint model never saw), shuffled with ``--seed`` and cut into ``--weeks`` equal weeks. The
truth is URR's stand-in for "reports a problem" (``bench/train_complaint.py``: ERROR among its
topics, or 2 stars or fewer with a topic other than OTHER). A post is flagged when its
complaint signal is 0.5 or more.

Week 1 goes through the real path in a throwaway SQLite store: posts saved, scored by the
shipped models, flagged posts filed as cases; a simulated team then dismisses each false flag
("not a complaint") and confirms each true one, and ``monitor.learn.learn`` runs with its
defaults. Weeks 2.. are scored twice, by the shipped models and by the models in the store
after learning, and the flags' precision and recall are printed for both.

Caveat: the shipped English complaint threshold was chosen to reach precision 0.75 on URR
(among others), so "shipped" is tuned to this stream already; its labels are stand-ins.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from monitor import cases
from monitor.learn import learn
from monitor.model import Fetch, Flag, Post
from monitor.outbox import record
from monitor.runtime import learned_models
from monitor.scoring import Scorer
from monitor.scoring.training import prf
from monitor.store import Store
from monitor.store.casework import case_of_post

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data"
START = datetime(2026, 11, 2, tzinfo=UTC)


def read_urr(data: Path) -> list[tuple[str, bool]]:
    rows = [json.loads(line) for line in (data / "urr-golden-set" / "dev.jsonl").open()]
    return [(r["text"], ("ERROR" in r["labels"]) or (r["rating"] <= 2 and r["labels"] != ["OTHER"]))
            for r in rows]


def week_one(store: Store, rows: list[tuple[str, bool]], scorer: Scorer) -> tuple[int, int]:
    """Week 1 through the store; the team's verdicts. (dismissed, confirmed)."""
    dismissed = confirmed = 0
    for i, (text, truth) in enumerate(rows):
        post = Post(source="reviews", external_id=str(i), url=f"https://r.test/{i}",
                    author=None, title=None, text=text, published_at=START + timedelta(hours=i))
        store.save_fetch("reviews", "rss", Fetch((post,), None), START)
        stored = store.stored_post("reviews", str(i))
        score = scorer.score_post(post)
        flag = Flag("medium", ("complaint",), ("a problem report",), "complaint") \
            if score.complaint >= 0.5 else None
        with store.transaction() as db:
            record(db, [(stored, score, flag)], START, {}, None)
            case = case_of_post(db, stored.id) if flag else None
        if case is None:
            continue
        if truth:
            cases.confirm(store, case, actor="team", now=START)
            confirmed += 1
        else:
            cases.dismiss(store, case, "not a complaint", actor="team", now=START)
            dismissed += 1
    return dismissed, confirmed


def figures(scorer: Scorer, rows: list[tuple[str, bool]]) -> tuple[float, float, int]:
    scores = scorer.score_many((None, text) for text, _ in rows)
    flagged = np.array([s.complaint >= 0.5 for s in scores])
    p, r, _ = prf(np.array([truth for _, truth in rows]), flagged)
    return p, r, int(flagged.sum())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--weeks", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    started = time.perf_counter()
    rows = read_urr(args.data)
    random.Random(args.seed).shuffle(rows)
    size = -(-len(rows) // args.weeks)
    weeks = [rows[i:i + size] for i in range(0, len(rows), size)]
    shipped = Scorer()
    with tempfile.TemporaryDirectory() as folder:
        store = Store(f"sqlite:///{folder}/replay.db")
        dismissed, confirmed = week_one(store, weeks[0], shipped)
        print(f"week 1: {len(weeks[0])} posts, {dismissed + confirmed} flagged; the team "
              f"dismissed {dismissed} false flags and confirmed {confirmed}")
        report = learn(store, datetime.now(UTC), "bench", signals=["complaint"])
        for r in report.rounds:
            if r.before:
                print(f"learn {r.signal} {r.language}: {r.outcome}, weight {r.weight:g}; "
                      f"dev P {r.before['dev'].precision:.3f} -> {r.after['dev'].precision:.3f}"
                      f" R {r.before['dev'].recall:.3f} -> {r.after['dev'].recall:.3f}; team "
                      f"P {r.before['team'].precision:.3f} -> {r.after['team'].precision:.3f}"
                      f" R {r.before['team'].recall:.3f} -> {r.after['team'].recall:.3f}")
        learned = Scorer(learned=learned_models(store))
        store.close()
    print(f"\n{'week':<6} {'posts':>5} {'complaints':>10} | {'shipped: flags':>14} {'P':>6} "
          f"{'R':>6} | {'learned: flags':>14} {'P':>6} {'R':>6}")
    totals: dict[str, list] = {"shipped": [], "learned": []}
    for n, week in enumerate(weeks[1:], start=2):
        before, after = figures(shipped, week), figures(learned, week)
        print(f"{n:<6} {len(week):>5} {sum(t for _, t in week):>10} | {before[2]:>14} "
              f"{before[0]:>6.3f} {before[1]:>6.3f} | {after[2]:>14} {after[0]:>6.3f} "
              f"{after[1]:>6.3f}")
    rest = [row for week in weeks[1:] for row in week]
    for name, scorer in (("shipped", shipped), ("learned", learned)):
        totals[name] = list(figures(scorer, rest))
    print(f"{'2..' + str(len(weeks)):<6} {len(rest):>5} {sum(t for _, t in rest):>10} | "
          f"{totals['shipped'][2]:>14} {totals['shipped'][0]:>6.3f} {totals['shipped'][1]:>6.3f}"
          f" | {totals['learned'][2]:>14} {totals['learned'][0]:>6.3f} "
          f"{totals['learned'][1]:>6.3f}")
    print(f"\n{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
