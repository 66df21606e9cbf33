"""How good the scorer's sentiment and "angry" verdict are, against human labels.

    python bench/quality.py [--data ../shared/data]

1. Sentiment, on the four VADER ground-truth corpora (Hutto & Gilbert, ICWSM 2014;
   ``vader_groundtruth/*_GroundTruth.txt``: id, mean human rating -4..4, text): Pearson r of
   our compound (``monitor.scoring.score_text(None, text).compound``) with the human mean, next
   to raw VADER's (``SentimentIntensityAnalyzer().polarity_scores(text[:5000])["compound"]``).
2. Anger, on the GoEmotions dev split (Demszky et al., ACL 2020; ``goemotions/dev.tsv``, 5,426
   rows; positive = label anger or annoyance): precision, recall and F1 of our verdict
   (``score_text(None, text).angry``), of raw VADER (compound <= -0.05) and of the bare model
   (``monitor.anger_model.anger_probability(text) >= anger_threshold()``) on the same rows.

Dev is where the model's settings were chosen (bench/train_anger.py), so its dev figures are
optimistic; the test split is held out elsewhere. About a minute.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
from scipy.stats import pearsonr
from sklearn.metrics import precision_recall_fscore_support
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from monitor.anger_model import anger_probability, anger_threshold
from monitor.scoring import score_text

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data"
VADER_CUT = 5_000  # what the scorer lets VADER read
VADER_NEGATIVE = -0.05
CORPORA = {
    "tweets": "tweets_GroundTruth.txt",
    "movie reviews": "movieReviewSnippets_GroundTruth.txt",
    "amazon reviews": "amazonReviewSnippets_GroundTruth.txt",
    "nyt editorials": "nytEditorialSnippets_GroundTruth.txt",
}
ANGER_LABELS = {"2", "3"}  # anger, annoyance (goemotions/emotions.txt, 0-based)


def read_groundtruth(path: Path) -> tuple[list[str], np.ndarray]:
    """(texts, human means); split on tabs, not csv: the texts hold unescaped quotes."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = [line.split("\t", 2) for line in fh.read().splitlines() if line.strip()]
    return [r[2] for r in rows], np.array([float(r[1]) for r in rows])


def read_goemotions(path: Path) -> tuple[list[str], np.ndarray]:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    return [r[0] for r in rows], np.array([bool(ANGER_LABELS & set(r[1].split(","))) for r in rows])


def prf(truth: np.ndarray, verdict: np.ndarray) -> tuple[float, float, float]:
    p, r, f, _ = precision_recall_fscore_support(truth, verdict, average="binary",
                                                 zero_division=0)
    return float(p), float(r), float(f)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA,
                    help="folder holding vader_groundtruth/ and goemotions/")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    vader = SentimentIntensityAnalyzer()

    print("Sentiment: Pearson r with the human mean rating (VADER ground truth, Hutto & Gilbert "
          "2014)")
    print(f"{'corpus':<16} {'rows':>6} {'ours':>7} {'raw VADER':>10}")
    for name, filename in CORPORA.items():
        texts, human = read_groundtruth(args.data / "vader_groundtruth" / filename)
        ours = np.array([score_text(None, t).compound for t in texts])
        raw = np.array([vader.polarity_scores(t[:VADER_CUT])["compound"] for t in texts])
        r_ours = pearsonr(ours, human).statistic if np.ptp(ours) > 0 else float("nan")
        r_raw = pearsonr(raw, human).statistic
        print(f"{name:<16} {len(texts):>6} {r_ours:>7.3f} {r_raw:>10.3f}")

    texts, truth = read_goemotions(args.data / "goemotions" / "dev.tsv")
    scores = [score_text(None, t) for t in texts]
    raw = np.array([vader.polarity_scores(t[:VADER_CUT])["compound"] for t in texts])
    threshold = anger_threshold()
    verdicts = {
        "ours: score_text().angry": np.array([s.angry for s in scores]),
        f"raw VADER: compound <= {VADER_NEGATIVE}": raw <= VADER_NEGATIVE,
        f"bare model: p >= {threshold:.2f}": anger_probability(texts) >= threshold,
    }
    print(f"\nAnger: GoEmotions dev, {len(texts)} rows, {int(truth.sum())} anger or annoyance "
          "(model settings were chosen on this split)")
    print(f"{'verdict':<34} {'flagged':>7} {'P':>6} {'R':>6} {'F1':>6}")
    for name, verdict in verdicts.items():
        p, r, f = prf(truth, verdict)
        print(f"{name:<34} {int(verdict.sum()):>7} {p:>6.3f} {r:>6.3f} {f:>6.3f}")
    print(f"\n({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
