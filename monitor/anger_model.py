"""A small linear model of "this writer is angry or annoyed", shipped as package data.

What it is: logistic regression (scikit-learn, at training time only) over a stateless hashed
featurizer defined here, plus VADER's numbers as dense features. The weights live in
``monitor/models/anger.npz`` as plain arrays, no pickle: the nonzero coefficients as
index/value pairs, the intercept, the decision threshold, the feature count and the featurizer
settings as JSON. Nothing fitted besides the weights (no vocabulary, no idf), so the file does
not depend on the scikit-learn or numpy version that wrote it.

The featurizer works like scikit-learn's ``HashingVectorizer(alternate_sign=False, norm="l2")``
but hashes with ``zlib.crc32`` and needs only ``re``, ``zlib`` and numpy: importing
scikit-learn costs about a second of start-up (it pulls in scipy.stats and pandas), which the
scorer should not pay for a dot product. Each block of ``settings["blocks"]`` turns a text into
n-grams, counts them into ``n_features`` buckets (``crc32(utf-8 n-gram) % n_features``) and
scales the counts to unit length; the blocks sit side by side, then the ``settings["dense"]``
VADER numbers follow. Block kinds:

* ``word``: tokens ``token_pattern`` (default ``\\b\\w\\w+\\b``) of the text, lower-cased if
  ``lowercase``; n-grams of ``ngram_range`` tokens joined by one space.
* ``char_wb``: character n-grams of ``ngram_range`` inside each whitespace-separated word padded
  with one space each side (a word shorter than n gives itself once).

Texts are cut at ``MAX_CHARS`` characters first, as the scorer cuts what VADER reads.

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

``monitor/models/anger.json`` repeats the settings, the whole grid and these figures.
"""

from __future__ import annotations

import importlib.resources
import json
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

MODEL_RESOURCE = "anger.npz"
MAX_CHARS = 5_000  # texts are cut here before featurizing, as the scorer cuts what VADER reads
DEFAULT_TOKEN_PATTERN = r"(?u)\b\w\w+\b"
_WHITE_SPACES = re.compile(r"\s\s+")

Vader = Mapping[str, float]  # a polarity_scores() result; the keys settings["dense"] names


@cache
def _token_re(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _word_ngrams(text: str, block: Mapping[str, Any]) -> list[str]:
    if block.get("lowercase", True):
        text = text.lower()
    tokens = _token_re(block.get("token_pattern", DEFAULT_TOKEN_PATTERN)).findall(text)
    low, high = block["ngram_range"]
    grams: list[str] = []
    for n in range(low, high + 1):
        grams.extend(" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1))
    return grams


def _char_wb_ngrams(text: str, block: Mapping[str, Any]) -> list[str]:
    if block.get("lowercase", False):
        text = text.lower()
    low, high = block["ngram_range"]
    grams: list[str] = []
    for word in _WHITE_SPACES.sub(" ", text).split():
        padded = f" {word} "
        size = len(padded)
        for n in range(low, high + 1):
            if size <= n:
                grams.append(padded)
                break
            grams.extend(padded[i:i + n] for i in range(size - n + 1))
    return grams


_NGRAMS = {"word": _word_ngrams, "char_wb": _char_wb_ngrams}


def n_features(settings: Mapping[str, Any]) -> int:
    """Width of the model's input: every hashed block, then the dense VADER columns."""
    return sum(int(b["n_features"]) for b in settings["blocks"]) + len(settings["dense"])


def hashed_features(text: str, settings: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(column indices, values) of the hashed blocks for one text; the dense columns excluded.

    Indices are sorted and distinct; each block's values have unit length (or are absent).
    """
    text = str(text)[:MAX_CHARS]
    indices: list[np.ndarray] = []
    values: list[np.ndarray] = []
    offset = 0
    for block in settings["blocks"]:
        size = int(block["n_features"])
        grams = _NGRAMS[block["kind"]](text, block)
        if grams:
            hashes = np.fromiter((zlib.crc32(g.encode("utf-8")) for g in grams),
                                 dtype=np.int64, count=len(grams))
            buckets, counts = np.unique(hashes % size, return_counts=True)
            weights = counts.astype(np.float64)
            indices.append(buckets + offset)
            values.append(weights / np.sqrt(weights @ weights))
        offset += size
    if not indices:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    return np.concatenate(indices), np.concatenate(values)


def dense_features(texts: Sequence[str], settings: Mapping[str, Any],
                   vader: Sequence[Vader] | None = None) -> np.ndarray:
    """The ``settings["dense"]`` VADER numbers, one row per text (VADER runs if not given)."""
    names = list(settings["dense"])
    if not names:
        return np.zeros((len(texts), 0), dtype=np.float64)
    if vader is None:
        analyzer = _analyzer()
        vader = [analyzer.polarity_scores(str(t)[:MAX_CHARS]) for t in texts]
    elif len(vader) != len(texts):
        raise ValueError(f"{len(vader)} VADER results for {len(texts)} texts")
    return np.array([[float(v[name]) for name in names] for v in vader],
                    dtype=np.float64).reshape(len(texts), len(names))


@cache
def _analyzer():  # -> SentimentIntensityAnalyzer, imported here only when needed
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


@dataclass(frozen=True)
class AngerModel:
    settings: dict[str, Any]
    weights: np.ndarray  # one per column of the hashed blocks
    dense_weights: np.ndarray  # one per settings["dense"] name
    intercept: float
    threshold: float

    def probability(self, texts: Sequence[str], vader: Sequence[Vader] | None = None,
                    ) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("anger_probability takes a sequence of texts, not one string")
        margin = dense_features(texts, self.settings, vader) @ self.dense_weights
        margin += self.intercept
        for row, text in enumerate(texts):
            index, value = hashed_features(text, self.settings)
            margin[row] += self.weights[index] @ value
        return 1.0 / (1.0 + np.exp(-np.clip(margin, -500.0, 500.0)))


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
    """The model in ``monitor/models/anger.npz``, read once per process."""
    resource = importlib.resources.files("monitor").joinpath("models", MODEL_RESOURCE)
    with resource.open("rb") as fh, np.load(fh, allow_pickle=False) as data:
        return load_model(data)


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


def __getattr__(name: str) -> float:
    """``ANGER_THRESHOLD``: the shipped model's threshold, read from the file on first use."""
    if name == "ANGER_THRESHOLD":
        return anger_threshold()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
