"""What people are angry about: the flagged posts of a launch grouped into recurring complaints.

Pure: ``(key, text)`` items in, groups out; no store, no config. The backlash report uses it so
the team can fix causes, not only answer people. Each group is named by 2-4 key phrases,
counted, and shown by its two most typical posts. Posts that fit no group are left out.

How, and why this way (the text work is scikit-learn's and scipy's):

* **TF-IDF over words and word pairs** (English stop words plus contraction stubs such as
  "doesn", words of letters only, sublinear tf, and a term only if at least two posts use it).
  Pairs name a complaint better than words ("dark mode", "memory error"); a term in one post
  cannot link two posts, and dropping those removes most of the noise of short texts. A post
  is read up to ``MAX_CHARS``, so one huge post costs no more than a long one.
* **Average-linkage clustering on cosine distance** (scipy), cut where groups would merge at an
  average distance above ``MERGE_DISTANCE`` (the posts of two groups share, on average, less
  than 6 % cosine similarity). A height, not a number of groups, because the number of groups
  has to grow with the number of posts: the top of the tree only splits off odd posts, so a cut
  into at most ``max_groups`` groups left one blob of 476 of 513 reviews. The silhouette was
  tried to choose the number of groups, and could not: on these sparse vectors it grows with
  the number of groups (0.02 at 2 to 0.19 at 192 groups on the same 513 reviews). The height
  was chosen on real reviews (``bench/complaints.py``: 35 samples of three topics plus
  off-topic posts, and one of 513): 0.93-0.95 do about equally well, 0.97 merges topics.
* **A post whose silhouette (sklearn) is not above 0 is left out**: it sits as near another
  group as its own, so it would blur both the phrases and the count. So is a post that uses
  none of its group's ``TELLING_TERMS`` terms. Then groups under ``min_size`` go, and the
  ``max_groups`` largest are kept. While this was built, k-means (also on LSA vectors),
  bisecting k-means, NMF (number of groups by silhouette) and HDBSCAN were tried on the same
  kind of samples and kept topics apart less well; HDBSCAN left most short posts as noise.
* **Telling terms** rank a group's terms by Pearson's chi-squared of "in the group or not" x
  "uses the term or not", among the terms it uses more often than the other posts: how often
  and how exclusively, so the words every post shares (the product's name) name no group. The
  phrases are the first of them that at least two of its posts use; a pair takes the place of
  its word when at least half the posts using the word use the pair.
* **Keys and quotes**: members in order of cosine similarity to the group's mean vector, most
  typical first; the quotes are the two most typical distinct texts, cut at a word boundary.

Deterministic: the same items in the same order give the same groups (nothing random). Memory
grows with the square of the posts (2,000 posts: a 32 MB distance matrix).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sklearn.metrics import silhouette_samples

from monitor.quoting import quote

MAX_CHARS = 10_000  # of one post; 300 words are about 2,000
QUOTE_CHARS = 200
MAX_PHRASES = 4
TELLING_TERMS = 10
MERGE_DISTANCE = 0.94
# What is left of "don't", "doesn't", "I've" ... once the apostrophe splits the word.
CONTRACTIONS = frozenset({
    "aren", "couldn", "didn", "doesn", "don", "hadn", "hasn", "haven", "isn", "ll", "mustn",
    "shouldn", "ve", "wasn", "weren", "won", "wouldn", "im", "ive", "dont", "doesnt", "didnt",
    "cant", "wont", "isnt",
})
STOP_WORDS = sorted(ENGLISH_STOP_WORDS | CONTRACTIONS)


@dataclass(frozen=True)
class Complaint:
    """One recurring complaint: what names it, how many said it, and who said it best."""

    phrases: tuple[str, ...]  # key phrases, best first ("memory error", "cbr files")
    count: int  # posts in the group
    keys: tuple[Any, ...]  # the caller's keys of its posts, most typical first
    quotes: tuple[str, ...]  # the two most typical distinct texts, cut near QUOTE_CHARS

    @property
    def label(self) -> str:
        """The first two phrases, e.g. "dark mode / contrast"."""
        return " / ".join(self.phrases[:2]) or "(no common words)"


def group_complaints(
    items: Sequence[tuple[Any, str]], *, max_groups: int = 8, min_size: int = 2,
    ignore: Iterable[str] = (),
) -> list[Complaint]:
    """Group ``(key, text)`` items into at most ``max_groups`` complaints, largest first.

    ``ignore``: words every post shares by construction (a launch's keywords), which would
    otherwise name every group ("new / editor").

    A group has at least ``min_size`` posts; posts that fit no group are left out, so the
    "other" count is ``len(items) - sum(c.count for c in result)``.
    """
    if max_groups < 1 or min_size < 1:
        raise ValueError("max_groups and min_size must be at least 1")
    items = list(items)
    found = _vectors((text for _, text in items), ignore)
    if found is None:
        return []
    vectors, terms = found
    rows = np.flatnonzero(vectors.getnnz(axis=1))  # posts with words other posts share
    if len(rows) == 0:
        return []
    cut = _cluster(vectors[rows])
    presence = (vectors[rows] > 0).astype(np.float64)
    groups = []
    for g in np.unique(cut[cut >= 0]):
        members = np.flatnonzero(cut == g)
        telling = _telling(members, presence)[:TELLING_TERMS]
        members = members[presence[members][:, telling].getnnz(axis=1) > 0]
        if len(members) >= min_size:
            groups.append(members)
    groups.sort(key=lambda g: (-len(g), g[0]))
    return [_describe(rows, g, vectors, presence, terms, items) for g in groups[:max_groups]]


def _telling(members: np.ndarray, presence: Any) -> np.ndarray:
    """Term columns used more inside the group than outside, best first.

    Ranked by Pearson's chi-squared of the 2x2 table (in/out of the group x with/without the
    term), which weighs how often and how exclusively a term is used: a term in 12 of 14 posts
    and 3 of 69 others beats one in 2 of 14 and none outside. (scikit-learn's ``chi2`` leaves
    the "without" cells out, which ranks such rare terms first.)
    """
    inside = np.zeros(presence.shape[0], dtype=bool)
    inside[members] = True
    with_in = np.asarray(presence[inside].sum(axis=0)).ravel()
    if inside.all():  # nothing to compare with: the terms most posts use
        order = np.argsort(-with_in, kind="stable")
        return order[with_in[order] > 0]
    with_out = np.asarray(presence[~inside].sum(axis=0)).ravel()
    n_in, n_out = inside.sum(), (~inside).sum()
    without_in, without_out = n_in - with_in, n_out - with_out
    with np.errstate(divide="ignore", invalid="ignore"):
        score = (n_in + n_out) * (with_in * without_out - with_out * without_in) ** 2 / (
            (with_in + with_out) * (without_in + without_out) * n_in * max(n_out, 1)
        )
    score = np.nan_to_num(score, posinf=0.0)
    order = np.argsort(-score, kind="stable")
    return order[with_in[order] * n_out > with_out[order] * n_in]


def _vectors(texts: Iterable[str], ignore: Iterable[str] = ()) -> tuple[Any, np.ndarray] | None:
    """TF-IDF rows (unit length, or empty) and the terms; None when no term is left."""
    docs = [text[:MAX_CHARS] for text in texts]
    extra = {word.lower() for phrase in ignore for word in re.findall(r"[^\W\d_]{2,}", phrase)}
    vectorizer = TfidfVectorizer(
        ngram_range=(1, 2),
        stop_words=sorted(set(STOP_WORDS) | extra),
        sublinear_tf=True,
        min_df=2 if len(docs) > 1 else 1,
        token_pattern=r"(?u)\b[^\W\d_]{2,}\b",
        dtype=np.float64,
    )
    try:
        vectors = vectorizer.fit_transform(docs)
    except ValueError:  # no words at all ("!!!", emoji), or none in two posts
        return None
    return vectors.tocsr(), vectorizer.get_feature_names_out()


def _cluster(vectors: Any) -> np.ndarray:
    """A group number per row, -1 for a row that fits no group (see the module docstring)."""
    n = vectors.shape[0]
    if n < 2:
        return np.ones(n, dtype=int)
    distance = np.clip(1.0 - (vectors @ vectors.T).toarray(), 0.0, 1.0)
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method="average")
    cut = fcluster(tree, MERGE_DISTANCE, criterion="distance")
    if not 2 <= len(np.unique(cut)) < n:
        return cut  # one group, or every post alone: nothing to compare
    alone = np.bincount(cut)[cut] == 1
    fits = (silhouette_samples(distance, cut, metric="precomputed") > 0) | alone
    return np.where(fits, cut, -1)


def _describe(
    rows: np.ndarray, members: np.ndarray, vectors: Any, presence: Any, terms: np.ndarray,
    items: list,
) -> Complaint:
    """Phrases, typical-first keys and quotes of one group (``members`` index ``rows``)."""
    telling = _telling(members, presence)[:TELLING_TERMS]
    counts = np.asarray(presence[members][:, telling].sum(axis=0)).ravel()
    used = {str(terms[t]): int(n) for t, n in zip(telling, counts, strict=True)}
    ranked = [term for term, n in used.items() if n >= min(2, len(members))]
    centroid = np.asarray(vectors[rows[members]].mean(axis=0)).ravel()
    typicality = vectors[rows[members]] @ centroid
    order = rows[members[np.argsort(-typicality, kind="stable")]]
    quotes: list[str] = []
    for i in order:
        text = quote(items[i][1], QUOTE_CHARS)
        if text not in quotes:
            quotes.append(text)
        if len(quotes) == 2:
            break
    return Complaint(
        phrases=_phrases(ranked, used),
        count=len(members),
        keys=tuple(items[i][0] for i in order),
        quotes=tuple(quotes),
    )


def _phrases(ranked: list[str], used: dict[str, int]) -> tuple[str, ...]:
    """Up to MAX_PHRASES of the ``ranked`` terms, best first.

    A pair takes the place of its word when at least half the posts that use the word use the
    pair ("memory error" for "memory"); otherwise the word alone names it better.
    """
    chosen: list[str] = []
    for term in ranked:
        words = term.split()
        if len(set(words)) < len(words) or any(_said(term, c) for c in chosen):
            continue  # "app app"; or said already, by a pair, in the other order, or plural
        inside = [c for c in chosen if " " not in c and _said(c, term)]
        if inside and all(2 * used[term] >= used[c] for c in inside):
            chosen[chosen.index(inside[0])] = term
            chosen = [c for c in chosen if c not in inside[1:]]
        elif not inside and len(chosen) < MAX_PHRASES:
            chosen.append(term)
    return tuple(chosen)


def _said(term: str, chosen: str) -> bool:
    """Whether ``chosen`` already says ``term``'s words, ignoring order and a plural s."""
    def stems(phrase: str) -> set[str]:
        return {w[:-1] if w.endswith("s") and len(w) > 3 else w for w in phrase.split()}

    return stems(term) <= stems(chosen)
