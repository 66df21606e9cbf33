"""The models' input: a stateless hashed featurizer, plus VADER's numbers as dense columns.

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

``hashed_features`` is that definition, text by text (training uses it). Scoring goes through
``monitor.scoring.hashed_dot.HashedDot``, which gives the same numbers for a whole batch about
six times faster.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import numpy as np

MAX_CHARS = 5_000  # texts are cut here before featurizing, as the scorer cuts what VADER reads
DEFAULT_TOKEN_PATTERN = r"(?u)\b\w\w+\b"
_WHITE_SPACES = re.compile(r"\s\s+")

Vader = Mapping[str, float]  # a polarity_scores() result; the keys settings["dense"] names


@cache
def token_re(pattern: str) -> re.Pattern[str]:
    """A word block's token pattern, compiled once."""
    return re.compile(pattern)


def _word_ngrams(text: str, block: Mapping[str, Any]) -> list[str]:
    if block.get("lowercase", True):
        text = text.lower()
    tokens = token_re(block.get("token_pattern", DEFAULT_TOKEN_PATTERN)).findall(text)
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
    """The ``settings["dense"]`` numbers, one row per text, each times its ``settings["scale"]``
    (default 1): VADER's, and any other the caller passes in ``vader`` (such as a complaint cue
    score). VADER runs when ``vader`` is not given."""
    names = list(settings["dense"])
    if not names:
        return np.zeros((len(texts), 0), dtype=np.float64)
    if vader is None:
        analyzer = _analyzer()
        vader = [analyzer.polarity_scores(str(t)[:MAX_CHARS]) for t in texts]
    elif len(vader) != len(texts):
        raise ValueError(f"{len(vader)} VADER results for {len(texts)} texts")
    scale = settings.get("scale", {})
    factors = np.array([float(scale.get(name, 1.0)) for name in names])
    return np.array([[float(v[name]) for name in names] for v in vader],
                    dtype=np.float64).reshape(len(texts), len(names)) * factors


def _analyzer() -> Any:
    """The VADER the dense columns come from: ours (``monitor.scoring.vader``), the same
    numbers as vaderSentiment, faster."""
    from monitor.scoring.vader import vader

    return vader()

