"""How good the scorer's verdicts are, against human labels, on every labelled set we have.

    python bench/quality.py [--data ../shared/data]

For each set: precision, recall and F1 of ``angry`` (the scorer's verdict), ``complaint``
(``signals.complaint >= 0.5``) and ``flagged`` (a rule of the shipped ``rules/`` raised a flag
that needs a person: praise is not one), beside raw VADER's (compound <= -0.05), and the share
of each severity that carries the label (the severities should rank it).

* **GoEmotions dev** (Reddit comments; label: anger or annoyance). The anger model's settings
  were chosen on it, so its figures are optimistic.
* **Mini-BAR across apps** (app reviews, English and French; label: problem report). The
  shipped complaint model was trained on both apps, so each app is scored here by a model fit
  on the *other* app with the shipped settings and threshold: what it does on an app it never
  saw. The settings were chosen on these same pairs, so they are a little optimistic too.
* **URR** (reviews of 27 other apps; stand-in label: topic ERROR, or 2 stars or fewer with a
  topic other than OTHER) and **VADER's four corpora** (tweets, movie, Amazon and NYT snippets;
  label: human mean rating <= -1, i.e. clearly negative): never used for training.
* **Sentiment**: Pearson r of our compound with VADER's human ratings (it should equal raw
  VADER's: the same algorithm).
* **Complaint themes**: Mini-BAR's problem reports grouped by ``monitor.backlash.themes``
  against the hand-made groups (adjusted Rand index, purity, groups of 5+ found), English,
  French and both mixed; ``bench/complaints.py`` says more.

About two minutes.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from scipy.stats import pearsonr

sys.path.insert(0, str(Path(__file__).resolve().parent))
import complaints as themes  # noqa: E402  (bench/complaints.py)
from train_anger import featurize  # noqa: E402
from train_complaint import APPS, dense_inputs, fit, prf, read_minibar, read_urr  # noqa: E402

from monitor.model import SEVERITIES, Post  # noqa: E402
from monitor.rules import RuleSet, load_rules  # noqa: E402
from monitor.scoring import Scorer  # noqa: E402
from monitor.scoring.lexicons import language  # noqa: E402
from monitor.scoring.models import load_model  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data"
VADER_NEGATIVE = -0.05
CORPORA = {
    "tweets": "tweets_GroundTruth.txt",
    "movie reviews": "movieReviewSnippets_GroundTruth.txt",
    "amazon reviews": "amazonReviewSnippets_GroundTruth.txt",
    "nyt editorials": "nytEditorialSnippets_GroundTruth.txt",
}
ANGER_LABELS = {"2", "3"}  # anger, annoyance (goemotions/emotions.txt, 0-based)
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def read_groundtruth(path: Path) -> tuple[list[str], np.ndarray]:
    """(texts, human means); split on tabs, not csv: the texts hold unescaped quotes."""
    rows = [line.split("\t", 2) for line in path.read_text("utf-8-sig").splitlines()
            if line.strip()]
    return [r[2] for r in rows], np.array([float(r[1]) for r in rows])


def read_goemotions(path: Path) -> tuple[list[str], np.ndarray]:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    return [r[0] for r in rows], np.array([bool(ANGER_LABELS & set(r[1].split(",")))
                                           for r in rows])


class Judged:
    """Scores and flags of a list of texts, as ``monitor score`` gives them."""

    def __init__(self, texts: Sequence[str], scorer: Scorer, rules: RuleSet) -> None:
        posts = [Post("bench", str(i), "", None, None, t, EPOCH) for i, t in enumerate(texts)]
        self.scores = scorer.score_posts(posts)
        flags = [rules.evaluate(p, s) for p, s in zip(posts, self.scores, strict=True)]
        self.angry = np.array([s.angry for s in self.scores])
        self.complaint = np.array([s.complaint >= 0.5 for s in self.scores])
        self.flagged = np.array([f is not None and f.needs_person for f in flags])
        self.severity = [f.severity if f is not None and f.needs_person else None
                         for f in flags]
        self.compound = np.array([s.compound for s in self.scores])


def report(name: str, truth: np.ndarray, judged: Judged, raw: np.ndarray | None) -> None:
    print(f"\n{name}: {len(truth)} posts, {int(truth.sum())} labelled ({truth.mean():.0%})")
    print(f"  {'verdict':<34} {'says':>6} {'P':>6} {'R':>6} {'F1':>6}")
    rows = {"angry": judged.angry, "complaint (>= 0.5)": judged.complaint,
            "flagged (shipped rules)": judged.flagged}
    if raw is not None:
        rows[f"raw VADER (compound <= {VADER_NEGATIVE})"] = raw <= VADER_NEGATIVE
    for label, verdict in rows.items():
        p, r, f = prf(truth, verdict)
        print(f"  {label:<34} {int(verdict.sum()):>6} {p:>6.3f} {r:>6.3f} {f:>6.3f}")
    shares = []
    for severity in reversed(SEVERITIES):
        at = np.array([s == severity for s in judged.severity])
        if at.any():
            shares.append(f"{severity} {truth[at].mean():.2f} ({int(at.sum())})")
    print("  labelled share by severity: " + ", ".join(shares))


def across_apps_model(data: Path, code: str, train_app: str):
    """A complaint model fit on one app with the shipped settings, C and threshold."""
    shipped = json.loads(language(code).folder.joinpath("complaint.json").read_text("utf-8"))
    texts, truth = read_minibar(data, train_app, code)
    settings = shipped["settings"]
    model = fit(featurize(texts, settings, dense_inputs(texts, code)), truth, shipped["C"])
    coef = model.coef_[0]
    index = np.flatnonzero(coef)
    return load_model({"settings": np.array(json.dumps(settings)), "coef_index": index,
                       "coef_value": coef[index], "intercept": model.intercept_[0],
                       "threshold": shipped["threshold"], "n_features": coef.size})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--rules", type=Path, default=REPO / "rules")
    args = ap.parse_args(argv)
    rules = load_rules(args.rules, REPO)
    started = time.perf_counter()
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    vader = SentimentIntensityAnalyzer()
    scorer = Scorer()

    def raw_vader(texts: Sequence[str]) -> np.ndarray:
        return np.array([vader.polarity_scores(t[:5000])["compound"] for t in texts])

    texts, truth = read_goemotions(args.data / "goemotions" / "dev.tsv")
    report("GoEmotions dev (Reddit), anger or annoyance", truth,
           Judged(texts, scorer, rules), raw_vader(texts))

    for code in ("en", "fr"):
        for app in APPS:
            other = APPS[1 - APPS.index(app)]
            texts, truth = read_minibar(args.data, app, code)
            unseen = Scorer(complaint_models={code: across_apps_model(args.data, code, other)})
            report(f"Mini-BAR {app} ({code}), problem report; complaint model fit on {other}",
                   truth, Judged(texts, unseen, rules),
                   raw_vader(texts) if code == "en" else None)

    texts, truth = read_urr(args.data)
    report("URR (27 other apps), stand-in: ERROR, or <= 2 stars with a topic", truth,
           Judged(texts, scorer, rules), raw_vader(texts))

    print("\nSentiment: Pearson r with the human mean rating (VADER ground truth)")
    pearson = []
    for name, filename in CORPORA.items():
        texts, human = read_groundtruth(args.data / "vader_groundtruth" / filename)
        judged = Judged(texts, scorer, rules)
        raw = raw_vader(texts)
        report(f"VADER {name}, clearly negative (human mean <= -1)", human <= -1.0, judged, raw)
        pearson.append((name, pearsonr(judged.compound, human).statistic,
                        pearsonr(raw, human).statistic))
    print(f"\n{'corpus':<16} {'ours':>7} {'raw VADER':>10}  (Pearson r with the human mean)")
    for name, ours, raw in pearson:
        print(f"{name:<16} {ours:>7.3f} {raw:>10.3f}")
    print("\nComplaint themes: Mini-BAR problem reports against the hand-made groups")
    from monitor.backlash import themes as grouping
    for app in APPS:
        rows = themes.read_minibar(args.data, app, "problem_report")
        for code in ("en", "fr", "mixed"):
            f = themes.scores(grouping, [r for r in rows if code in ("mixed", r["ori_lang"])])
            print(f"  {app:15} {code:5} ARI {f['ari']:.2f}  purity {f['purity']:.2f}  "
                  f"grouped {f['grouped']:.0%}  groups of 5+ found {f['back']}/{f['big']}")
    print(f"\n({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
