"""Fitting a complaint or anger model as the shipped ones were fit, for ``monitor learn``.

The recipe of a shipped model (``languages/<code>/<signal>.npz`` and its ``.json``) is reused
whole: its featurizer settings (hashed word and char_wb n-grams, VADER's compound and neg, the
complaint cue score) and its regularisation ``C``; ``best_f1_threshold`` is how the anger
model's threshold was chosen (``monitor.learn`` says why a complaint refit keeps its
threshold instead). The training texts ship in ``training/`` (``bench/pack_training.py``), so a
refit needs no data folder. scikit-learn is imported here only: scoring never needs it.
"""

from __future__ import annotations

import gzip
import io
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from monitor.scoring.features import (
    MAX_CHARS,
    _analyzer,
    dense_features,
    hashed_features,
    n_features,
)
from monitor.scoring.lexicons import _data, fold, language, saturate
from monitor.scoring.models import AngerModel, load_model

SIGNALS = {"complaint": ("en", "fr"), "anger": ("en",)}  # the models we ship, per language
THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.01), 2)


@dataclass(frozen=True)
class Recipe:
    """How the shipped model of ``signal`` in ``code`` was made: what a refit repeats."""

    signal: str
    code: str
    settings: dict[str, Any]
    c: float


def recipe(signal: str, code: str) -> Recipe:
    """The shipped model's settings and C, read from its files."""
    shipped = language(code).model(signal)
    about = json.loads(_data("languages", code, f"{signal}.json").read_text("utf-8"))
    return Recipe(signal, code, shipped.settings, float(about["C"]))


def read_set(signal: str, code: str, part: str, limit: int | None = None,
             ) -> tuple[list[str], np.ndarray]:
    """(texts, labels) of a shipped training set: ``part`` is "train" or "dev"; ``limit``
    keeps the first rows only (the files are shuffled already, except GoEmotions')."""
    path = _data("training", f"{signal}-{code}-{part}.jsonl.gz")
    with path.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh][:limit]
    return [t for t, _ in rows], np.array([bool(y) for _, y in rows], dtype=bool)


def dense_inputs(texts: Sequence[str], code: str) -> list[dict[str, float]]:
    """What the scorer passes a model beside the text: the complaint cue score and, for
    English, VADER's numbers (every name a model's settings may ask for)."""
    cues = language(code).complaint
    vader = _analyzer() if code == "en" else None
    out = []
    for text in texts:
        row = {"cues": saturate(cues.hits(fold(text[:MAX_CHARS])))}
        if vader is not None:
            numbers = vader.polarity_scores(text[:MAX_CHARS])
            row.update(compound=numbers["compound"], neg=numbers["neg"])
        out.append(row)
    return out


def featurize(texts: Sequence[str], settings: dict[str, Any],
              dense: Sequence[dict[str, float]]) -> Any:
    """The model's input matrix (scipy CSR): the hashed blocks, then the dense columns."""
    import scipy.sparse as sp

    hashed = [hashed_features(t, settings) for t in texts]
    indptr = np.zeros(len(texts) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([index.size for index, _ in hashed])
    width = n_features(settings) - len(settings["dense"])
    values = np.concatenate([v for _, v in hashed]) if hashed else np.zeros(0)
    index = np.concatenate([i for i, _ in hashed]) if hashed else np.zeros(0, dtype=np.int64)
    blocks = [sp.csr_matrix((values, index, indptr), shape=(len(texts), width))]
    if settings["dense"]:
        blocks.append(sp.csr_matrix(dense_features(texts, settings, dense)))
    return sp.hstack(blocks, format="csr")


@dataclass(frozen=True)
class Fitted:
    """A fitted logistic regression: one weight per column of the full input, and the
    intercept."""

    coef: np.ndarray
    intercept: float

    def probability(self, x: Any) -> np.ndarray:
        """P(positive) per row of a ``featurize`` matrix."""
        margin = np.asarray(x @ self.coef).ravel() + self.intercept
        return 1.0 / (1.0 + np.exp(-np.clip(margin, -500.0, 500.0)))


def fit(x: Any, y: np.ndarray, c: float, weights: np.ndarray | None = None) -> Fitted:
    """Logistic regression as shipped (lbfgs, L2, no class weights); ``weights``: one per row.

    Fit on the columns some row uses only: under the L2 penalty an unused column's weight is
    exactly 0, so the solution is the same, and lbfgs over 30,000 columns instead of 524,000
    is about five times faster."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    used = np.unique(x.indices)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # a non-converged fit must not pass
        model = LogisticRegression(C=c, solver="lbfgs", max_iter=5000, random_state=0).fit(
            x[:, used], y, sample_weight=weights)
    coef = np.zeros(x.shape[1])
    coef[used] = model.coef_[0]
    return Fitted(coef, float(model.intercept_[0]))


def prf(truth: np.ndarray, verdict: np.ndarray) -> tuple[float, float, float]:
    """Precision, recall and F1 of ``verdict`` against ``truth`` (0 where undefined)."""
    hits = float(np.sum(truth & verdict))
    p = hits / verdict.sum() if verdict.sum() else 0.0
    r = hits / truth.sum() if truth.sum() else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def best_f1_threshold(truth: np.ndarray, prob: np.ndarray) -> float:
    """The threshold of ``THRESHOLDS`` with the best F1 (ties: the lower), as the anger
    model's was chosen on dev (``bench/train_anger.py``)."""
    best, chosen = -1.0, float(THRESHOLDS[0])
    for t in THRESHOLDS:
        f = prf(truth, prob >= t)[2]
        if f > best + 1e-12:
            best, chosen = f, float(t)
    return chosen


def to_bytes(fitted: Fitted, settings: dict[str, Any], threshold: float) -> bytes:
    """A fitted model as the .npz bytes ``load_model`` reads (no pickle)."""
    coef = fitted.coef
    index = np.flatnonzero(coef).astype(np.int32)
    out = io.BytesIO()
    np.savez_compressed(out, coef_index=index, coef_value=coef[index].astype(np.float32),
                        intercept=np.float64(fitted.intercept),
                        threshold=np.float64(threshold), n_features=np.int64(coef.size),
                        settings=np.array(json.dumps(settings, sort_keys=True)))
    return out.getvalue()


def from_bytes(data: bytes) -> AngerModel:
    """The model of .npz bytes (a learned model as the store keeps it)."""
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        return load_model(arrays)
