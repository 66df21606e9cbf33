"""The shipped anger model (monitor/scoring/models.py + scoring/languages/en/anger.npz).

The quality checks read the GoEmotions dev split from shared/data beside the repository
(Demszky et al., ACL 2020); dev is where the model's settings were chosen, so they check that
the shipped file is the trained model and works, not how well it generalises.
"""

from __future__ import annotations

import csv
import importlib.resources
import json
import time
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from monitor.scoring import hashed_dot
from monitor.scoring.features import MAX_CHARS, hashed_features, n_features
from monitor.scoring.hashed_dot import HashedDot
from monitor.scoring.lexicons import language
from monitor.scoring.models import (
    AngerModel,
    anger_probability,
    anger_threshold,
    load_model,
    shipped_model,
)

DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "goemotions" / "dev.tsv"
LABELLED = Path(__file__).resolve().parent / "fixtures" / "labelled" / "goemotions-dev-2000.jsonl"
ANGER_LABELS = {"2", "3"}  # anger, annoyance


@pytest.fixture(scope="module")
def dev() -> tuple[list[str], np.ndarray]:
    if not DEV.is_file():
        pytest.skip(f"GoEmotions dev split not found at {DEV}")
    with DEV.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    return [r[0] for r in rows], np.array([bool(ANGER_LABELS & set(r[1].split(","))) for r in rows])


def _resource() -> importlib.resources.abc.Traversable:
    return importlib.resources.files("monitor.scoring").joinpath("languages", "en", "anger.npz")


def test_shipped_file_is_small_plain_arrays_and_consistent() -> None:
    resource = _resource()
    assert resource.is_file()
    with resource.open("rb") as fh:
        size = len(fh.read())
    assert size < 3_000_000
    with resource.open("rb") as fh, np.load(fh, allow_pickle=False) as data:  # no pickle inside
        model = load_model(data)
        index = data["coef_index"]
        assert index.size > 1000
        assert np.all(np.diff(index) > 0) and index[0] >= 0 and index[-1] < int(data["n_features"])
    assert model.weights.size + model.dense_weights.size == n_features(model.settings)
    assert 0.0 < model.threshold < 1.0
    assert anger_threshold() == model.threshold


def test_loads_and_predicts_quickly() -> None:
    shipped_model.cache_clear()
    started = time.perf_counter()
    p = anger_probability(["Why does this keep crashing?"])
    assert time.perf_counter() - started < 1.0
    assert p.shape == (1,)


def test_probabilities_in_range_and_deterministic() -> None:
    texts = ["", "   ", "ok", "I love it, thank you!", "THIS IS RIDICULOUS!!! Fix it now.",
             "x" * (MAX_CHARS * 3), "Ça ne marche pas du tout 😡", "[NAME] is an idiot."]
    first = anger_probability(texts)
    assert first.shape == (len(texts),)
    assert first.dtype == np.float64
    assert np.all((first >= 0.0) & (first <= 1.0))
    assert np.array_equal(first, anger_probability(list(texts)))
    with _resource().open("rb") as fh, np.load(fh, allow_pickle=False) as data:
        fresh = load_model(data)
    assert np.array_equal(first, fresh.probability(texts))
    # one at a time gives what a batch gives
    assert np.allclose(first, [anger_probability([t])[0] for t in texts], rtol=0, atol=1e-12)


def test_empty_batch_and_bare_string() -> None:
    assert anger_probability([]).shape == (0,)
    with pytest.raises(TypeError):
        anger_probability("one string is not a batch")


def test_given_vader_numbers_are_used_instead_of_running_vader() -> None:
    texts = ["This is the worst update ever.", "Lovely release, well done.", "meh"]
    analyzer = SentimentIntensityAnalyzer()
    numbers = [analyzer.polarity_scores(t) for t in texts]
    assert np.allclose(anger_probability(texts, numbers), anger_probability(texts), atol=1e-12)
    if shipped_model().settings["dense"]:
        calm = [dict(n, compound=0.9, neg=0.0) for n in numbers]
        furious = [dict(n, compound=-0.9, neg=0.8) for n in numbers]
        assert np.all(anger_probability(texts, furious) > anger_probability(texts, calm))
    with pytest.raises(ValueError):
        anger_probability(texts, numbers[:2])


def test_hashed_features_follow_the_documented_recipe() -> None:
    """Buckets are crc32(utf-8 n-gram) % n_features, counts scaled to unit length per block."""
    settings = {"blocks": [
        {"kind": "word", "ngram_range": [1, 2], "n_features": 1 << 10, "lowercase": True},
        {"kind": "char_wb", "ngram_range": [3, 4], "n_features": 1 << 12, "lowercase": False},
    ], "dense": []}
    text = "Bad bad  BAD, é!"
    words = ["bad", "bad", "bad", "bad bad", "bad bad"]
    chars = [" Ba", "Bad", "ad ", " Bad", "Bad ", " ba", "bad", "ad ", " bad", "bad ",
             " BA", "BAD", "AD,", "D, ", " BAD", "BAD,", "AD, ", " é!", "é! ", " é! "]
    expected: Counter[int] = Counter()
    for grams, offset, size in ((words, 0, 1 << 10), (chars, 1 << 10, 1 << 12)):
        counts = Counter(zlib.crc32(g.encode("utf-8")) % size for g in grams)
        norm = np.sqrt(sum(c * c for c in counts.values()))
        for bucket, count in counts.items():
            expected[bucket + offset] += count / norm
    index, value = hashed_features(text, settings)
    assert index.tolist() == sorted(expected)
    assert np.allclose(value, [expected[i] for i in index.tolist()])
    assert hashed_features("", settings)[0].size == 0


def test_ranks_angry_dev_rows_above_calm_ones(dev: tuple[list[str], np.ndarray]) -> None:
    texts, angry = dev
    rng = np.random.default_rng(0)
    positive = rng.choice(np.flatnonzero(angry), 200, replace=False)
    negative = rng.choice(np.flatnonzero(~angry), 200, replace=False)
    p_pos = anger_probability([texts[i] for i in positive])
    p_neg = anger_probability([texts[i] for i in negative])
    assert p_pos.mean() > p_neg.mean() + 0.15
    # probability that a random angry row outscores a random calm one (ROC AUC)
    auc = (p_pos[:, None] > p_neg[None, :]).mean() + 0.5 * (p_pos[:, None] == p_neg[None, :]).mean()
    assert auc > 0.8


def _f1(truth: np.ndarray, verdict: np.ndarray) -> float:
    hits = int((truth & verdict).sum())
    return 0.0 if hits == 0 else 2 * hits / (int(truth.sum()) + int(verdict.sum()))


def test_beats_raw_vader_f1_on_a_dev_sample(dev: tuple[list[str], np.ndarray]) -> None:
    texts, angry = dev
    rows = np.random.default_rng(1).choice(len(texts), 1000, replace=False)
    sample = [texts[i] for i in rows]
    truth = angry[rows]
    assert truth.sum() > 50
    analyzer = SentimentIntensityAnalyzer()
    vader = [analyzer.polarity_scores(t[:MAX_CHARS]) for t in sample]
    model_f1 = _f1(truth, anger_probability(sample, vader) >= anger_threshold())
    vader_f1 = _f1(truth, np.array([v["compound"] <= -0.05 for v in vader]))
    assert model_f1 > vader_f1 + 0.08, (model_f1, vader_f1)


# Texts the batch path must treat exactly as hashed_features does: empty and blank ones,
# odd whitespace, non-ASCII (lower-casing included: final sigma, dotted I, Kelvin sign),
# emoji, single letters, words longer than the cache keeps, tokens longer than the crc32
# shift tables, repeated words, and a text longer than MAX_CHARS.
EDGE_TEXTS = [
    "", " ", "   \t\n ", "a", "a b c", "ok", "I I I I", "Bad bad  BAD, é!",
    "tabs\tand\u2003em\u00a0spaces\x1c\x1d here\r\nnext line",
    "Ça ne marche pas du tout 😡", "😡🔥💩", "😡 😡 😡 angry 😡", "ΟΔΟΣ ΟΔΟΣ. ὈΔΥΣΣΕΎΣ Σ",
    "İstanbul İSTANBUL", "\u212a Kelvin \u212aELVIN", "日本語のテキスト です", "x" * 45 + " tail",
    "a" * 100 + " " + "b" * 70 + " c" * 3, "Ünïcödé " * 30, "[NAME] is an idiot.",
    "THIS IS RIDICULOUS!!! Fix it now.", "x" * (MAX_CHARS * 3), ("word " * 3000).strip(),
    "mixed ascii and ñon-ascii wörds wörds", "under_score snake_case_word __ _",
]


def _labelled_texts() -> list[str]:
    with LABELLED.open(encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line in fh]


def _reference_margins(model: AngerModel, texts: list[str]) -> np.ndarray:
    """The straightforward way: hashed_features text by text, dot the weights."""
    out = []
    for text in texts:
        index, value = hashed_features(text, model.settings)
        out.append(model.weights[index] @ value)
    return np.array(out)


def _fresh_model() -> AngerModel:
    with _resource().open("rb") as fh, np.load(fh, allow_pickle=False) as data:
        return load_model(data)


def test_batch_path_gives_the_per_text_probabilities() -> None:
    model = _fresh_model()  # an empty word cache
    texts = _labelled_texts() + EDGE_TEXTS  # more than one chunk of 1024 texts
    assert len(texts) > 2000 and all("\uffff" not in t for t in texts)
    rng = np.random.default_rng(2)
    vader = [{"compound": float(c), "neg": float(n)}
             for c, n in zip(rng.uniform(-1, 1, len(texts)), rng.uniform(0, 1, len(texts)),
                             strict=True)]
    dense = np.array([[v[name] for name in model.settings["dense"]] for v in vader])
    reference = _reference_margins(model, texts)
    expected = 1.0 / (1.0 + np.exp(-(dense @ model.dense_weights + model.intercept + reference)))
    cold = model.probability(texts, vader)
    assert np.allclose(cold, expected, rtol=0, atol=1e-12)
    # again with every word cached, in batches of 256 and one text at a time
    warm = np.concatenate([model.probability(texts[at:at + 256], vader[at:at + 256])
                           for at in range(0, len(texts), 256)])
    assert np.allclose(warm, expected, rtol=0, atol=1e-12)
    edges = len(EDGE_TEXTS)
    single = [model.probability([t], [v])[0]
              for t, v in zip(EDGE_TEXTS, vader[-edges:], strict=True)]
    assert np.allclose(single, expected[-edges:], rtol=0, atol=1e-12)
    assert np.allclose(model.hashed_dot(texts), reference, rtol=0, atol=1e-12)


def test_batch_path_when_the_word_cache_fills(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hashed_dot, "_CACHE_WORDS", 50)
    model = _fresh_model()
    texts = _labelled_texts()[:300] + EDGE_TEXTS
    reference = _reference_margins(model, texts)
    for at in range(0, len(texts), 40):
        assert np.allclose(model.hashed_dot(texts[at:at + 40]), reference[at:at + 40],
                           rtol=0, atol=1e-12)
    assert len(model.hashed_dot._words) <= 50 + 1000


def test_text_holding_the_batch_separator_is_scored_the_plain_way() -> None:
    model = _fresh_model()
    texts = ["fine text", "odd \uffff char", "\uffff", "more fine text"]
    assert np.allclose(model.hashed_dot(texts), _reference_margins(model, texts),
                       rtol=0, atol=1e-12)


@pytest.mark.parametrize("blocks", [
    # 3-grams of case-kept words, lower-cased char_wb from 2 chars, sizes not powers of two
    [{"kind": "word", "ngram_range": [1, 3], "n_features": 1000, "lowercase": False},
     {"kind": "char_wb", "ngram_range": [2, 4], "n_features": 3001, "lowercase": True}],
    [{"kind": "char_wb", "ngram_range": [4, 6], "n_features": 1 << 12},
     {"kind": "word", "ngram_range": [1, 1], "n_features": 1 << 10},
     {"kind": "char_wb", "ngram_range": [1, 1], "n_features": 97}],
    # what the batch path leaves to hashed_features: another token pattern, no unigrams
    [{"kind": "word", "ngram_range": [1, 2], "n_features": 512, "token_pattern": r"\S+"}],
    [{"kind": "word", "ngram_range": [2, 2], "n_features": 512}],
])
def test_batch_path_follows_other_settings(blocks: list[dict]) -> None:
    settings = {"blocks": blocks, "dense": []}
    width = sum(b["n_features"] for b in blocks)
    weights = np.random.default_rng(3).normal(size=width)
    texts = _labelled_texts()[:200] + EDGE_TEXTS
    expected = []
    for text in texts:
        index, value = hashed_features(text, settings)
        expected.append(weights[index] @ value)
    dot = HashedDot(settings, weights)
    assert np.allclose(dot(texts), expected, rtol=0, atol=1e-12)
    assert np.allclose(dot(texts), expected, rtol=0, atol=1e-12)  # from the cache


def test_models_on_the_same_blocks_share_one_count() -> None:
    anger = shipped_model()
    complaint = language("en").model("complaint")
    texts = _labelled_texts()[:300] + EDGE_TEXTS + ["odd \uffff char"]
    inputs = [{"compound": -0.4, "neg": 0.3, "cues": 0.5}] * len(texts)
    counts = anger.count(texts)  # the scorer counts a batch once for both models
    assert np.array_equal(complaint.probability(texts, inputs, counts),
                          complaint.probability(texts, inputs))
    assert np.array_equal(anger.probability(texts, inputs, counts),
                          anger.probability(texts, inputs))
    other = HashedDot({"blocks": [{"kind": "word", "ngram_range": [1, 1], "n_features": 64}],
                       "dense": []}, np.zeros(64))
    with pytest.raises(ValueError, match="other blocks"):
        other.dot(counts)
