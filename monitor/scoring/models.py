"""A small linear model of "this writer is angry or annoyed", shipped as package data.

The same file format, featurizer and loader (``load_model``) serve each language's complaint
model (``monitor/scoring/languages/<code>/complaint.npz``, ``bench/train_complaint.py``), whose
dense columns are its complaint cue score and, in English, VADER's compound and neg.

What it is: logistic regression (scikit-learn, at training time only) over the stateless hashed
featurizer of ``monitor.scoring.features``, plus VADER's numbers as dense features. The weights
live in ``monitor/scoring/languages/en/anger.npz`` as plain arrays, no pickle: the nonzero
coefficients as index/value pairs, the intercept, the decision threshold, the feature count and
the featurizer settings as JSON. Nothing fitted besides the weights (no vocabulary, no idf), so
the file does not depend on the scikit-learn or numpy version that wrote it.

How it was made, by ``python bench/train_anger.py`` (deterministic; it rebuilds the file):

* Trained on: the GoEmotions **train** split only (43,410 Reddit comments, Demszky et al.,
  ACL 2020); positive = the row carries ``anger`` or ``annoyance`` (3,768 rows, 8.7 %).
* Tuned on: the GoEmotions **dev** split only (5,426 rows, 449 positive), over the whole split,
  never on single sentences: the feature set, the regularisation ``C`` and the decision
  threshold were chosen by dev F1 from the small grid the script prints. The test split was
  not used.
* Dev figures (optimistic, since the settings were chosen on dev), the same 5,426 rows:

  =================================  =========  ======  =====
  verdict                            precision  recall  F1
  =================================  =========  ======  =====
  this model, p >= threshold (0.24)  0.508      0.521   0.514
  raw VADER, compound <= -0.05       0.190      0.670   0.296
  =================================  =========  ======  =====

  Chosen: word 1-2 grams (2**18 buckets, lower-cased) + char_wb 3-5 grams (2**18 buckets,
  case kept) + VADER compound and neg; C = 2; threshold 0.24. Dev average precision 0.474.

``monitor/scoring/languages/en/anger.json`` repeats the settings, the whole grid and these
figures.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

from monitor.scoring.features import Vader, dense_features, n_features
from monitor.scoring.hashed_dot import Counts, HashedDot

MODEL_RESOURCE = "anger.npz"


@dataclass(frozen=True)
class AngerModel:
    """Logistic regression over the hashed blocks and dense columns of ``settings``: the anger
    model, and each language's complaint model."""

    settings: dict[str, Any]
    weights: np.ndarray  # one per column of the hashed blocks
    dense_weights: np.ndarray  # one per settings["dense"] name
    intercept: float
    threshold: float
    hashed_dot: HashedDot = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hashed_dot", HashedDot(self.settings, self.weights))

    def probability(self, texts: Sequence[str], vader: Sequence[Vader] | None = None,
                    counts: Counts | None = None) -> np.ndarray:
        """P(positive) per text; ``vader``: the dense columns' numbers, when already known;
        ``counts``: the texts' n-gram counts (``count``), when a model on the same blocks
        has them already."""
        if isinstance(texts, str):
            raise TypeError("anger_probability takes a sequence of texts, not one string")
        margin = dense_features(texts, self.settings, vader) @ self.dense_weights
        margin += self.intercept
        margin += self.hashed_dot(texts) if counts is None else self.hashed_dot.dot(counts)
        return 1.0 / (1.0 + np.exp(-np.clip(margin, -500.0, 500.0)))

    def count(self, texts: Sequence[str]) -> Counts:
        """The texts' n-gram counts, for ``probability`` of any model on the same blocks."""
        return self.hashed_dot.count(texts)


def load_model(data: Mapping[str, np.ndarray]) -> AngerModel:
    """An AngerModel from the arrays ``bench/train_anger.py`` saves (an opened npz)."""
    settings = json.loads(str(data["settings"]))
    size = int(data["n_features"])
    if size != n_features(settings):
        raise ValueError(f"model has {size} weights, its settings describe {n_features(settings)}")
    weights = np.zeros(size, dtype=np.float64)
    weights[data["coef_index"].astype(np.int64)] = data["coef_value"].astype(np.float64)
    hashed = size - len(settings["dense"])
    return AngerModel(settings=settings, weights=weights[:hashed],
                      dense_weights=weights[hashed:].copy(),
                      intercept=float(data["intercept"]), threshold=float(data["threshold"]))


@cache
def shipped_model() -> AngerModel:
    """The model in ``monitor/scoring/languages/en/anger.npz``: English's ``anger`` model,
    read once per process (``Language.model``)."""
    from monitor.scoring.lexicons import language

    model = language("en").model("anger")
    if model is None:
        raise FileNotFoundError(f"monitor/scoring/languages/en/{MODEL_RESOURCE} is missing")
    return model


def anger_threshold() -> float:
    """The probability at or above which the shipped model calls a text angry (chosen on dev)."""
    return shipped_model().threshold


def anger_probability(texts: Sequence[str], vader: Sequence[Vader] | None = None) -> np.ndarray:
    """P(angry or annoyed) for each text, 0..1, from the shipped model.

    ``vader``: optional, one VADER ``polarity_scores`` result per text (a mapping with at least
    ``compound`` and ``neg``), computed on the text cut at ``MAX_CHARS`` characters. Pass it
    when you already have it, so VADER does not run twice; without it the model runs VADER
    itself. A text is angry by this model when ``p >= anger_threshold()``.
    """
    return shipped_model().probability(texts, vader)
