"""Rebuild monitor/scoring/languages/en/anger.npz: the small anger/annoyance model we ship.

    python bench/train_anger.py [--data ../shared/data/goemotions] [--jobs 2]

Data: GoEmotions (Demszky et al., ACL 2020), read from ``--data`` (default:
``shared/data/goemotions`` beside this repository). Positive = the row carries label 2 (anger)
or 3 (annoyance).

* **Trained on** ``train.tsv`` only (43,410 rows).
* **Settings chosen on** ``dev.tsv`` only (5,426 rows), by F1 over the whole split: the feature
  set, the regularisation ``C`` and the decision threshold, from the grid printed below. Nothing
  is tuned on single sentences, and the test split is not read (it is not in the data folder).

Model: scikit-learn ``LogisticRegression`` (lbfgs, L2, no class weights, so the output stays a
probability near the data's base rate) over the stateless featurizer in
``monitor.scoring.features`` (``hashed_features``: crc32-hashed count blocks scaled to unit length,
like scikit-learn's ``HashingVectorizer(alternate_sign=False)``; word 1-2 grams, optionally
case-kept char_wb 3-5 grams), optionally followed by VADER's compound and neg computed on the
text cut at 5,000 characters. No vocabulary is fitted, so the weights are the whole model. They
are saved without pickle: nonzero coefficients as (index, float32 value) arrays, the intercept,
the threshold, the feature count and the featurizer settings as JSON. ``anger.json`` beside it
repeats the settings, the grid and the dev figures for people.

The shipped file is read back through ``monitor.scoring.models.load_model`` and its dev figures
are printed next to raw VADER's (compound <= -0.05) on the same rows. Deterministic: lbfgs has no
randomness and the featurizer is a hash; a rerun writes a byte-identical file. About a minute
on two cores (16 fits, two at a time).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import sklearn
from joblib import Parallel, delayed
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, precision_recall_fscore_support

from monitor.scoring.features import MAX_CHARS, _analyzer
from monitor.scoring.models import load_model
from monitor.scoring.training import featurize  # the model's input, as `monitor learn` builds it

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "goemotions"
DEFAULT_OUT = REPO / "monitor" / "scoring" / "languages" / "en" / "anger.npz"
POSITIVE = {"2", "3"}  # anger, annoyance (emotions.txt, 0-based)
VADER_NEGATIVE = -0.05  # raw VADER's verdict: compound <= this

WORD = {"kind": "word", "ngram_range": [1, 2], "n_features": 2**18, "lowercase": True,
        "token_pattern": r"(?u)\b\w\w+\b"}
CHAR = {"kind": "char_wb", "ngram_range": [3, 5], "n_features": 2**18, "lowercase": False}
VADER_DENSE = ["compound", "neg"]
FEATURE_SETS = {
    "word": {"blocks": [WORD], "dense": []},
    "word+vader": {"blocks": [WORD], "dense": VADER_DENSE},
    "word+char": {"blocks": [WORD, CHAR], "dense": []},
    "word+char+vader": {"blocks": [WORD, CHAR], "dense": VADER_DENSE},
}
CS = [1.0, 2.0, 4.0, 8.0]
THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.01), 2)
MAX_ITER = 5000


def read_split(path: Path) -> tuple[list[str], np.ndarray]:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    texts = [row[0] for row in rows]
    labels = np.array([bool(POSITIVE & set(row[1].split(","))) for row in rows])
    return texts, labels


def prf(truth: np.ndarray, verdict: np.ndarray) -> tuple[float, float, float]:
    p, r, f, _ = precision_recall_fscore_support(truth, verdict, average="binary",
                                                 zero_division=0)
    return float(p), float(r), float(f)


def best_threshold(truth: np.ndarray, prob: np.ndarray) -> tuple[float, float, float, float]:
    """(threshold, P, R, F1) with the highest F1 over THRESHOLDS; ties go to the lower one."""
    best = (-1.0, 0.0, 0.0, 0.0)
    for th in THRESHOLDS:
        p, r, f = prf(truth, prob >= th)
        if f > best[3] + 1e-12:
            best = (float(th), p, r, f)
    return best


def fit(x: sp.csr_matrix, y: np.ndarray, c: float) -> LogisticRegression:
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # a non-converged fit must not pass
        return LogisticRegression(C=c, solver="lbfgs", max_iter=MAX_ITER, random_state=0).fit(x, y)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    started = time.perf_counter()

    train_x, train_y = read_split(args.data / "train.tsv")
    dev_x, dev_y = read_split(args.data / "dev.tsv")
    print(f"train {len(train_x)} rows, {train_y.sum()} positive ({train_y.mean():.1%}); "
          f"dev {len(dev_x)} rows, {dev_y.sum()} positive ({dev_y.mean():.1%})")

    vader = _analyzer()
    train_v = [vader.polarity_scores(t[:MAX_CHARS]) for t in train_x]
    dev_v = [vader.polarity_scores(t[:MAX_CHARS]) for t in dev_x]
    dev_compound = np.array([v["compound"] for v in dev_v])

    print(f"\ngrid (fit on train, scored on dev; threshold = best dev F1 over "
          f"{THRESHOLDS[0]:.2f}..{THRESHOLDS[-1]:.2f} step 0.01; AP = dev average precision)")
    header = (f"{'features':<16} {'C':>4} {'iters':>5} {'AP':>6} {'thr':>5} {'P':>6} {'R':>6}"
              f" {'F1':>6}")
    print(header)
    print("-" * len(header))
    grid: list[dict] = []
    chosen: dict = {"dev_f1": -1.0}
    for name, settings in FEATURE_SETS.items():
        x_train = featurize(train_x, settings, train_v)
        x_dev = featurize(dev_x, settings, dev_v)
        models = Parallel(n_jobs=args.jobs)(delayed(fit)(x_train, train_y, c) for c in CS)
        for c, model in zip(CS, models, strict=True):
            prob = model.predict_proba(x_dev)[:, 1]
            th, p, r, f = best_threshold(dev_y, prob)
            row = {"features": name, "C": c, "iterations": int(model.n_iter_[0]),
                   "dev_average_precision": round(float(average_precision_score(dev_y, prob)), 4),
                   "threshold": th, "dev_precision": round(p, 4), "dev_recall": round(r, 4),
                   "dev_f1": round(f, 4)}
            grid.append(row)
            if f > chosen["dev_f1"] + 1e-12:  # ties keep the earlier, smaller setting
                chosen, chosen_model = row, model
            print(f"{name:<16} {c:>4g} {row['iterations']:>5} {row['dev_average_precision']:>6.3f}"
                  f" {th:>5.2f} {p:>6.3f} {r:>6.3f} {f:>6.3f}", flush=True)

    settings = FEATURE_SETS[chosen["features"]]
    print(f"\nchosen (best dev F1): {chosen['features']}, C={chosen['C']:g}, "
          f"threshold={chosen['threshold']:.2f}")

    coef = chosen_model.coef_[0]
    index = np.flatnonzero(coef).astype(np.int32)
    dev_figures = {}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        coef_index=index,
        coef_value=coef[index].astype(np.float32),
        intercept=np.float64(chosen_model.intercept_[0]),
        threshold=np.float64(chosen["threshold"]),
        n_features=np.int64(coef.size),
        settings=np.array(json.dumps(settings, sort_keys=True)),
    )

    # What ships is what the file holds: score dev again through the loader.
    with np.load(args.out, allow_pickle=False) as data:
        shipped = load_model(data)
    prob = shipped.probability(dev_x, dev_v)
    figures = {
        "model": prf(dev_y, prob >= shipped.threshold),
        "raw VADER": prf(dev_y, dev_compound <= VADER_NEGATIVE),
    }
    print(f"\ndev, {len(dev_x)} rows, {dev_y.sum()} positive (anger or annoyance):")
    print(f"{'verdict':<40} {'P':>6} {'R':>6} {'F1':>6}")
    labels = {"model": f"model, p >= {shipped.threshold:.2f} (shipped file)",
              "raw VADER": f"raw VADER, compound <= {VADER_NEGATIVE}"}
    for key, (p, r, f) in figures.items():
        print(f"{labels[key]:<40} {p:>6.3f} {r:>6.3f} {f:>6.3f}")
        dev_figures[key] = {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4)}
    if abs(figures["model"][2] - chosen["dev_f1"]) > 0.005:
        print("the saved model's dev F1 differs from the grid's: float32 weights?",
              file=sys.stderr)
        return 1

    meta = {
        "what": "P(anger or annoyance) of a text; logistic regression over hashed n-grams",
        "data": "GoEmotions (Demszky et al., ACL 2020); positive = label 2 anger or 3 annoyance",
        "trained_on": f"GoEmotions train.tsv, {len(train_x)} rows, {int(train_y.sum())} positive",
        "tuned_on": f"GoEmotions dev.tsv, {len(dev_x)} rows, {int(dev_y.sum())} positive: "
                    "feature set, C and threshold by dev F1 over the grid below",
        "settings": settings,
        "C": chosen["C"],
        "threshold": chosen["threshold"],
        "nonzero_coefficients": int(index.size),
        "dev": dev_figures,
        "grid": grid,
        "built_with": {"scikit-learn": sklearn.__version__, "numpy": np.__version__},
        "rebuild": "python bench/train_anger.py",
    }
    args.out.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    size = args.out.stat().st_size
    print(f"\nwrote {args.out} ({size / 1e6:.2f} MB, {index.size} nonzero weights) and "
          f"{args.out.with_suffix('.json').name}; {time.perf_counter() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
