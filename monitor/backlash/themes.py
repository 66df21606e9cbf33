"""What people are angry about: the flagged posts of a launch grouped into recurring complaints.

Pure: ``(key, text)`` items in, groups out; no store, no config. The backlash report uses it so
the team can fix causes, not only answer people. Each group is named by 2-4 key phrases of
what it is about, never by opinion words alone ("hate / disappointing"), counted, and shown by
its two most typical posts. Posts that fit no group are left out. Posts
may be in English or French, mixed: the same problem reported in both languages can make one
group (another language is data, not code: see *Languages*).

How, and why this way (the text work is scikit-learn's and scipy's):

* **Words read the same way in every language** (``_words``): lower case, no accents, letters
  only; no stop words (scikit-learn's English list, contraction stubs such as "doesn", and
  ``monitor/scoring/languages/fr/stopwords.txt``); French words turned into English ones by the term
  map ``monitor/scoring/languages/fr/terms.txt`` ("mise à jour" -> "update", "montre" -> "watch",
  longest match first); then a plural -s and one of -ing, -ed, -ee, -e cut off ("syncing",
  "synced", "sync" are one word; so are "updates" and "update"). Crude, but without it the
  English inflections never meet the French words the map turns into English base forms.
* **TF-IDF over words and word pairs** (sublinear tf, a term only if at least two posts use it)
  **plus TF-IDF over character 3-5-grams within words**, which get ``CHAR_WEIGHT`` of a post's
  (squared) length. Pairs name a complaint better than words ("dark mode", "memory error"); a
  term in one post cannot link two posts, and dropping those removes most of the noise of short
  texts. The n-grams link what the map and the cuts miss ("connectivity" and "connection",
  "appairée" and "pairing"); an n-gram in more than ``CHAR_MAX_SHARE`` of the posts is left
  out, or long posts (300 words) would all look alike and merge. A post is read up to
  ``MAX_CHARS``, so one huge post costs no more than a long one.
* **Average-linkage clustering on cosine distance** (scipy), cut where groups would merge at an
  average distance above ``MERGE_DISTANCE``. A height, not a number of groups, because the
  number of groups has to grow with the number of posts: the top of the tree only splits off
  odd posts, so a cut into at most ``max_groups`` groups left one blob of 476 of 513 reviews.
  The silhouette was tried to choose the number of groups, and could not: on these sparse
  vectors it grows with the number of groups (0.02 at 2 to 0.19 at 192 groups).
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
  its word when at least half the posts using the word use the pair. A word is shown as the
  English word of the term map when it came from it ("sync" for "synchronisation"), otherwise
  as the form the posts wrote most often ("notifications", "données"): a mixed group is named
  in English, a French one in French.
* **Opinion words name nothing** (``_is_opinion``): a term made only of words that say how
  people feel (VADER's lexicon words of valence 1.0 or more either way, less ``NOT_OPINION``,
  nouns such as "crash" and "security" that VADER scores; and each language's
  ``opinion.txt``, ``anger.txt`` and ``profanity.txt``) is never a phrase, and a group left
  without phrases is no theme. Such words still count in the grouping: left out of it, Mini-BAR
  grouped a little worse (mean ARI of its 12 inputs 0.24, not 0.25). Before, 9 of the groups
  of those 12 inputs were named by opinions alone ("good", "dommage", "like"); now none.
* **Launch words stay** (``launch_words``): the report groups posts found by the launch's
  keywords, and a keyword is often the complaint itself ("offline mode" removed). Taking the
  keywords out (``ignore``, what the report did) split that complaint in pieces and named the
  rest by opinions; kept, a keyword is a term like the others, with two differences. Its terms
  weigh ``1 - share ** LAUNCH_POWER`` (``share``: of the posts that use it) in the grouping,
  so the launch's name, which nearly every post uses, links no posts, while a keyword that
  two thirds of the posts are about keeps most of its weight (with ``1 - share``, its
  complaint came out in pieces again); and it names only a group that uses it ``LAUNCH_LIFT``
  times more often than the other posts do. Mini-BAR has no launch, so these two settings were
  chosen on the posts of ``tests/test_complaints.py`` written after the issue's example.
* **Keys and quotes**: members in order of cosine similarity to the group's mean vector, most
  typical first; the quotes are the two most typical distinct texts, cut at a word boundary.
  The launch announcement is no complaint, and only the caller can tell it: leave it out of
  ``items`` (when it is in, it is grouped like any post, and may be quoted).

How well (``bench/complaints.py``). Mini-BAR (Wei et al., ICTAI 2023): per app, 200 problem
reports and 200 feature requests, half English and half French, grouped by hand by "the same
problem". Measured: ARI (a post left out counts as a group of its own); purity of the grouped
posts; and true groups of 5 or more posts that "come back": one found group holds more than
half of the true group, and at least half of that found group is from it. The settings
(``MERGE_DISTANCE``, ``CHAR_WEIGHT``, the cuts, the term map) were chosen on Garmin Connect, so
its figures are optimistic; Huawei Health was only checked. Problem reports, now (before: the
English-only method, height 0.94):

    ==============  =====  ===========  ===========  ========
    app             posts  ARI          purity       5+ back
    ==============  =====  ===========  ===========  ========
    Garmin Connect  mixed  0.20 (0.06)  0.60 (0.37)  5/10 (0)
    Garmin Connect  fr     0.19 (0.01)  0.54 (0.28)  3/5 (0)
    Garmin Connect  en     0.29 (0.18)  0.50 (0.47)  3/6 (2)
    Huawei Health   mixed  0.31 (0.09)  0.56 (0.41)  5/13 (1)
    Huawei Health   fr     0.23 (0.06)  0.54 (0.35)  2/9 (0)
    Huawei Health   en     0.32 (0.19)  0.59 (0.49)  4/6 (1)
    ==============  =====  ===========  ===========  ========

Of the pairs of posts in different languages that report the same problem, 14 % (Garmin) and
28 % (Huawei) now share a group, 0 and 3 % before (Huawei's mixed figures were 0.33 and 31 %
before opinion words stopped naming groups: noise, see below). Step by step on Garmin (mean ARI
of its six inputs, each the whole file and three 80 % samples): before 0.09 at its best height,
French stop words and no accents 0.12, the term map 0.14, the cuts 0.15, the n-grams 0.19. On
Huawei the term map costs French-only and English-only grouping a little (mean 0.33 without it,
0.32 with) but is what lets the languages meet (mixed problem reports 0.21 -> 0.27, pairs
across languages 3 -> 24 %). The hand-made groups are broad ("cannot connect", 39 posts) and
most come back in several pieces. With 100-200 posts a figure, a few hundredths are noise:
keeping the old rule that a word ends at a digit ("fr235") moved Huawei's mixed ARI from 0.33
to 0.28 and its French one from 0.23 to 0.26. English only, on URR, it does as well as before:
20 (before 16) of 35 samples with their three topics as the three largest groups, purity 0.91
(0.86).

Launch words, on the mixed problem reports with the app's name and "sync", "bluetooth",
"notifications" as keywords (ARI, groups of 5+ back): removed (``ignore``) 0.08 and 3/10
(Garmin), 0.20 and 4/13 (Huawei); kept (``launch_words``) 0.20 and 5/10, 0.31 and 5/13, as
with no keywords. With the app's name written first in every post: no keywords 0.14 and 4/10,
0.24 and 3/13, with the name in labels ("health work"); kept 0.15 and 5/10, 0.27 and 5/13.

**Languages.** Every folder of ``monitor/scoring/languages`` may hold ``stopwords.txt`` and
``terms.txt`` (formats in ``_languages``); all are applied to every post, whatever its
language, since short posts are often too short to tell. So a term map leaves out words that
are English words of another meaning ("course", "charger"). English is the pivot.

**Bounded** (issue 19). Average linkage needs every distance, so time and memory grow with the
square of the posts grouped (2,000 posts: a 32 MB distance matrix, 10,000: 800 MB). So at most
``MAX_POSTS`` are grouped: beyond that, a uniform random sample of them (``sample``, a fixed
seed: the same items give the same sample), and each other post joins the group whose mean
vector it is nearest (``_assign``, ``CHUNK`` posts at a time), when it uses one of the group's
telling terms and its cosine to the mean is at least ``1 - MERGE_DISTANCE`` (its mean cosine
to the members: as near as average linkage asks of a post joining a group); else it is left
out, as odd posts are. So counts cover every post while memory stays that of ``MAX_POSTS``
posts plus a chunk (30,000 short posts: 54 MB traced, 15 s; ``tests/test_backlash_scale.py``).
Up to ``MAX_POSTS`` nothing changed: the same groups as before, to the post. A caller that
cannot read every text (the launch report) passes a sample itself and says so. What sampling
costs (``bench/complaints.py`` part 2c; Mini-BAR's 400 reports and requests of one app, ARI
and purity over every post): Garmin 0.16 and 0.47 grouped whole, 0.19 and 0.43 with half
grouped and the rest assigned, 0.08 and 0.26 with a quarter; Huawei 0.23 and 0.49, 0.14 and
0.36, 0.17 and 0.35. A sample keeps the large groups and loses small ones (a true group of 5
has 2 or 3 posts in a half sample), so keep ``MAX_POSTS`` large where the square allows.

Deterministic: the same items in the same order give the same groups. Fast: 2,000 posts in
0.5-1 s, after a 1 s import.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import islice
from typing import Any, NamedTuple

import numpy as np
from scipy import sparse
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sklearn.metrics import silhouette_samples
from sklearn.preprocessing import normalize

from monitor.quoting import quote
from monitor.scoring.lexicons import builtin_list, entries, fold, language_folders, read_lines
from monitor.scoring.vader import vader

MAX_CHARS = 10_000  # of one post; 300 words are about 2,000
QUOTE_CHARS = 200
MAX_PHRASES = 4
TELLING_TERMS = 10
MERGE_DISTANCE = 0.9
CHAR_WEIGHT = 0.6  # share of a post's vector (squared length) given to its character n-grams
CHAR_NGRAMS = (3, 5)
CHAR_MAX_SHARE = 0.5  # an n-gram in more of the posts is left out: long posts share them all
# What is left of "don't", "doesn't", "I've" ... once the apostrophe splits the word.
CONTRACTIONS = frozenset({
    "aren", "couldn", "didn", "doesn", "don", "hadn", "hasn", "haven", "isn", "ll", "mustn",
    "shouldn", "ve", "wasn", "weren", "won", "wouldn", "im", "ive", "dont", "doesnt", "didnt",
    "cant", "wont", "isnt",
})
OPINION_VALENCE = 1.0  # a word VADER scores at least this strongly says how, not what
# Words VADER scores that, in feedback on a product, name a thing or a fault, not an opinion.
NOT_OPINION = frozenset({
    "alarm", "block", "crash", "error", "free", "help", "lag", "secure", "security", "support",
})
LAUNCH_LIFT = 2.0  # a launch word names a group that uses it this many times more than others
LAUNCH_POWER = 4  # a launch word weighs 1 - share ** 4 in the grouping
WORD = re.compile(r"[^\W\d_]{2,}")  # letters only: "fenix5" is "fenix"
MAX_POSTS = 2000  # grouped at most; beyond, a sample (the distances grow with its square)
SAMPLE_SEED = 19  # the sample's: the same items always give the same sample
CHUNK = 2000  # posts assigned to the groups at a time
SUFFIXES = ("ing", "ed", "ee", "e")  # cut once, after a plural -s, if 3 letters are left


class Launch(NamedTuple):
    """Which posts use each launch word, and which terms hold it (one column per word)."""

    posts: np.ndarray  # posts x launch words
    holds: np.ndarray  # terms x launch words


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
    launch_words: Iterable[str] = (), ignore: Iterable[str] = (), max_posts: int = MAX_POSTS,
) -> list[Complaint]:
    """Group ``(key, text)`` items into at most ``max_groups`` complaints, largest first.

    ``launch_words``: the launch's keywords ("new editor", "offline mode"). They stay in the
    texts, since they are often what people are unhappy about (the removed offline mode), but
    weigh less the more posts use them, and name only a group that uses them ``LAUNCH_LIFT``
    times more often than the other posts: the launch's name, which nearly every post uses,
    neither groups posts nor names a group. ``ignore``: words taken out of every post (removing
    the launch's keywords so split the complaints about them).

    A group has at least ``min_size`` posts; posts that fit no group are left out, so the
    "other" count is ``len(items) - sum(c.count for c in result)``. More than ``max_posts``
    items: a sample of them is grouped and the others join the nearest group or none (module
    docstring, *Bounded*), so time and memory stay bounded whatever the number of items.
    """
    if max_groups < 1 or min_size < 1 or max_posts < 2:
        raise ValueError("max_groups and min_size must be at least 1, max_posts at least 2")
    items = list(items)
    chosen = sample(len(items), max_posts)
    grouped = items if len(chosen) == len(items) else [items[i] for i in chosen]
    found = _vectors([text for _, text in grouped], launch_words, ignore)
    if found is None:
        return []
    vectors, words, terms, launch, embed = found
    rows = np.flatnonzero(words.getnnz(axis=1))  # posts with words other posts share
    if len(rows) == 0:
        return []
    cut = _cluster(vectors[rows])
    presence = (words[rows] > 0).astype(np.float64)
    totals = np.asarray(presence.sum(axis=0)).ravel()
    launch = launch._replace(posts=launch.posts[rows])
    groups = []
    for g in np.unique(cut[cut >= 0]):
        members = np.flatnonzero(cut == g)
        if len(members) < min_size:  # the telling terms only ever take members away
            continue
        telling = _telling(members, presence, launch, totals)[:TELLING_TERMS]
        members = members[presence[members][:, telling].getnnz(axis=1) > 0]
        if len(members) >= min_size:
            groups.append((members, telling))
    groups.sort(key=lambda g: (-len(g[0]), g[0][0]))
    extra: list[list[tuple[float, int]]] = [[] for _ in groups]
    if len(grouped) < len(items):
        extra = _assign(items, chosen, [(rows[m], t) for m, t in groups], vectors, embed)
    described = (_describe(rows, g, vectors, presence, totals, terms, launch, grouped, items,
                           more) for (g, _), more in zip(groups, extra, strict=True))
    # a group without phrases shares only opinions or the launch's name: no theme
    return list(islice((c for c in described if c.phrases), max_groups))


def sample(n: int, cap: int = MAX_POSTS, seed: int = SAMPLE_SEED) -> list[int]:
    """Positions of a uniform random sample of ``cap`` of ``n`` items, in order; all of them
    when ``n <= cap``. The seed is fixed, so the same ``n`` always gives the same sample (the
    report is the same when made twice) and no kind of post is favoured."""
    if n <= cap:
        return list(range(n))
    return sorted(random.Random(seed).sample(range(n), cap))


def _assign(
    items: list, chosen: list[int], groups: list[tuple[np.ndarray, np.ndarray]], vectors: Any,
    embed: Embed,
) -> list[list[tuple[float, int]]]:
    """Per group (its rows of ``vectors``, its telling term columns), the items outside the
    sample ``chosen`` that join it, as (cosine to the group's mean vector, item position).

    An item joins the group whose mean vector it is nearest, when it uses one of the group's
    telling terms (as a member must) and its cosine to that mean is at least
    ``1 - MERGE_DISTANCE``: its cosine to the mean vector is its mean cosine to the members,
    so it is as near them as average linkage asks of a post that joins a group. Else it is
    left out. Items are read ``CHUNK`` at a time: memory stays bounded.
    """
    extra: list[list[tuple[float, int]]] = [[] for _ in groups]
    if not groups:
        return extra
    sizes = np.array([len(members) for members, _ in groups])
    mean = sparse.csr_matrix((np.repeat(1.0 / sizes, sizes),
                              (np.repeat(np.arange(len(groups)), sizes),
                               np.concatenate([members for members, _ in groups]))),
                             shape=(len(groups), vectors.shape[0]))
    centroids = (mean @ vectors).tocsr()
    outside = np.ones(len(items), dtype=bool)
    outside[chosen] = False
    rest = np.flatnonzero(outside)
    for start in range(0, len(rest), CHUNK):
        part = rest[start:start + CHUNK]
        rows, named = embed([items[i][1] for i in part])
        near = (rows @ centroids.T).toarray()
        best = near.argmax(axis=1)
        top = near[np.arange(len(part)), best]
        for g, (_, telling) in enumerate(groups):
            mine = np.flatnonzero((best == g) & (top >= 1 - MERGE_DISTANCE))
            mine = mine[named[mine][:, telling].getnnz(axis=1) > 0]
            extra[g] += [(float(top[i]), int(part[i])) for i in mine]
    return extra


def _telling(members: np.ndarray, presence: Any, launch: Launch,
             totals: np.ndarray | None = None) -> np.ndarray:
    """Term columns used more inside the group than outside, best first.

    Ranked by Pearson's chi-squared of the 2x2 table (in/out of the group x with/without the
    term), which weighs how often and how exclusively a term is used: a term in 12 of 14 posts
    and 3 of 69 others beats one in 2 of 14 and none outside. (scikit-learn's ``chi2`` leaves
    the "without" cells out, which ranks such rare terms first.) A term of a launch word
    (``launch``) must be used ``LAUNCH_LIFT`` times more often inside than outside: so
    "offline mode" names the group that is about it, and the launch's name, which nearly every
    post uses, names none. ``totals``: each column's sum over all posts, when known (the
    counts outside are then a subtraction, not a pass over the other posts).
    """
    inside = np.zeros(presence.shape[0], dtype=bool)
    inside[members] = True
    with_in = np.asarray(presence[members].sum(axis=0)).ravel()
    if inside.all():  # nothing to compare with: the terms most posts use
        order = np.argsort(-with_in, kind="stable")
        return order[(with_in[order] > 0) & ~launch.holds.any(axis=1)[order]]
    if totals is None:
        totals = np.asarray(presence.sum(axis=0)).ravel()
    with_out = totals - with_in  # whole counts: exact
    n_in, n_out = inside.sum(), (~inside).sum()
    without_in, without_out = n_in - with_in, n_out - with_out
    with np.errstate(divide="ignore", invalid="ignore"):
        score = (n_in + n_out) * (with_in * without_out - with_out * without_in) ** 2 / (
            (with_in + with_out) * (without_in + without_out) * n_in * max(n_out, 1)
        )
    score = np.nan_to_num(score, posinf=0.0)
    order = np.argsort(-score, kind="stable")
    used = launch.posts[inside].mean(axis=0) >= LAUNCH_LIFT * launch.posts[~inside].mean(axis=0)
    told = ~(launch.holds & ~used).any(axis=1)  # every launch word of the term is the group's
    return order[(with_in[order] * n_out > with_out[order] * n_in) & told[order]]


def _vectors(
    texts: list[str], launch_words: Iterable[str] = (), ignore: Iterable[str] = (),
) -> tuple[Any, Any, list[str], Launch, Embed] | None:
    """Rows to cluster, rows of the word terms that may name a group, those terms as shown,
    which posts and terms hold each launch word, and how to read more posts alike (``Embed``);
    None when no such term is left.

    A row to cluster is a post's TF-IDF over words and word pairs and its TF-IDF over character
    n-grams within words, weighted by ``CHAR_WEIGHT`` and scaled to unit length (or empty). A
    term of a launch word has its weight times ``1 - share ** LAUNCH_POWER``, ``share`` being
    that of the posts that use the word: nothing when every post does, 0.34 when 90 % do, 0.80
    when 67 % do, so a keyword that is the complaint still groups its posts. A term whose words
    are all opinion words as shown (``_is_opinion``: "hate", "déçu") groups posts (leaving
    them out grouped Mini-BAR worse: mean ARI 0.24, not 0.25) but names no group.
    """
    ignored = {stem for phrase in ignore for stem, _ in _words(phrase)}
    posts = [[(stem, form) for stem, form in _words(text) if stem not in ignored] for text in texts]
    stems = [[stem for stem, _ in post] for post in posts]
    min_df = 2 if len(posts) > 1 else 1
    vectorizer = TfidfVectorizer(analyzer=_terms, sublinear_tf=True, min_df=min_df,
                                 dtype=np.float64)
    try:
        words = vectorizer.fit_transform(stems).tocsr()
    except ValueError:  # no words at all ("!!!", emoji), or none in two posts
        return None
    forms: dict[str, Counter[str]] = {}
    for post in posts:
        for stem, form in post:
            forms.setdefault(stem, Counter())[form] += 1
    shown = {stem: counts.most_common(1)[0][0] for stem, counts in forms.items()}
    launch = sorted({stem for phrase in launch_words for stem, _ in _words(phrase)} - ignored)
    uses = np.array([[stem in set(post) for stem in launch] for post in stems],
                    dtype=bool).reshape(len(stems), len(launch))
    share = dict(zip(launch, uses.mean(axis=0), strict=True))
    names = [term.split() for term in vectorizer.get_feature_names_out()]
    weight, named = np.ones(len(names)), np.ones(len(names), dtype=bool)
    for column, term in enumerate(names):
        common = max((share[stem] for stem in term if stem in share), default=0.0)
        weight[column] = 1.0 - common ** LAUNCH_POWER
        named[column] = not all(_is_opinion(shown[stem]) for stem in term)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=CHAR_NGRAMS, sublinear_tf=True,
                            min_df=min_df, max_df=max(min_df, int(CHAR_MAX_SHARE * len(posts))),
                            dtype=np.float64)
    try:
        grams = chars.fit_transform([" ".join(post) for post in stems])
    except ValueError:  # every n-gram in too many posts (identical texts)
        grams, chars = sparse.csr_matrix((len(posts), 0)), None
    if not named.any():
        return None
    columns = np.flatnonzero(named)
    terms = [" ".join(shown[stem] for stem in names[column]) for column in columns]
    holds = np.array([[stem in names[column] for stem in launch] for column in columns],
                     dtype=bool).reshape(len(columns), len(launch))
    embed = Embed(vectorizer, chars, weight, columns, frozenset(ignored))
    return embed.rows(words, grams), words[:, columns], terms, Launch(uses, holds), embed


@dataclass(frozen=True)
class Embed:
    """The fitted vectorizers of a grouping: posts outside its sample are read as its own
    posts were (``__call__``), to be assigned to its groups."""

    words: Any  # TF-IDF of words and pairs
    chars: Any  # TF-IDF of character n-grams, None when none was kept
    weight: np.ndarray  # per word term: less for a launch word most posts use
    columns: np.ndarray  # the word terms that may name a group
    ignored: frozenset[str]

    def __call__(self, texts: Sequence[str]) -> tuple[Any, Any]:
        """Rows to compare with the groups, and the rows of the terms that may name one."""
        stems = [[stem for stem, _ in _words(text) if stem not in self.ignored] for text in texts]
        words = self.words.transform(stems).tocsr()
        grams = sparse.csr_matrix((len(stems), 0)) if self.chars is None else \
            self.chars.transform([" ".join(post) for post in stems])
        return self.rows(words, grams), words[:, self.columns]

    def rows(self, words: Any, grams: Any) -> Any:
        """Word and n-gram TF-IDF side by side, weighted, each row of unit length."""
        return normalize(sparse.hstack(
            [np.sqrt(1 - CHAR_WEIGHT) * words @ sparse.diags(self.weight),
             np.sqrt(CHAR_WEIGHT) * grams]).tocsr())


def _is_opinion(word: str) -> bool:
    """Whether ``word``, as written, is an opinion word (``_opinion_words``)."""
    words, prefixes = _opinion_words()
    folded = fold(word)
    return folded in words or _singular(folded) in words or folded.startswith(prefixes)


@cache
def _opinion_words() -> tuple[frozenset[str], tuple[str, ...]]:
    """Words that say how people feel, not what about, and prefixes ("enerve" for "énervé*").

    VADER's lexicon words of valence ``OPINION_VALENCE`` or more either way, less
    ``NOT_OPINION``; and the one-word entries of each language's ``opinion.txt``,
    ``anger.txt`` and ``profanity.txt`` and of the built-in swear words, "*" ending a prefix.
    """
    words = {fold(word) for word, valence in vader().lexicon.items()
             if abs(valence) >= OPINION_VALENCE and WORD.fullmatch(word)} - NOT_OPINION
    listed = builtin_list("profanity.txt")
    for folder in language_folders():
        for name in ("opinion.txt", "anger.txt", "profanity.txt"):
            listed += entries(read_lines(folder, name))
    prefixes = []
    for entry in map(fold, listed):
        if WORD.fullmatch(entry.rstrip("*")):
            (prefixes.append(entry[:-1]) if entry.endswith("*") else words.add(entry))
    return frozenset(words), tuple(sorted(set(prefixes)))


def _terms(stems: list[str]) -> list[str]:
    """The words of a post and its pairs of neighbouring words."""
    return stems + [f"{a} {b}" for a, b in zip(stems, stems[1:], strict=False)]


def _words(text: str) -> list[tuple[str, str]]:
    """A post's words as (stem, form as written), in order, translated and without stop words.

    The term maps of ``monitor/scoring/languages`` turn other languages' words into English
    ones ("mise à jour" -> "update"), longest match first, with or without the post's plural
    -s; such a word is shown as the English word. A stem is the word in lower case, without
    accents, its plural -s and one ending of ``SUFFIXES`` ("syncing", "synced" and "sync" are
    one stem).
    """
    stop, terms, longest = _languages()
    tokens = WORD.findall(unicodedata.normalize("NFKC", text[:MAX_CHARS]).lower())
    folded = [fold(token) for token in tokens]
    single = [_singular(word) for word in folded]
    words: list[tuple[str, str, str]] = []  # without accents, and plural -s; as written
    i = 0
    while i < len(tokens):
        for n in range(min(longest, len(tokens) - i), 0, -1):
            english = terms.get(tuple(folded[i:i + n])) or terms.get(tuple(single[i:i + n]))
            if english:
                words += [(word, _singular(word), word) for word in english]
                i += n
                break
        else:
            words.append((folded[i], single[i], tokens[i]))
            i += 1
    return [(_stem(one), form) for word, one, form in words if not {word, one} & stop]


def _singular(word: str) -> str:
    """``word`` without a plural -s ("notifications", not "class" nor "gps")."""
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _stem(word: str) -> str:
    """``word`` without one ending of ``SUFFIXES`` if 3 letters are left ("update" -> "updat")."""
    for suffix in SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[:-len(suffix)]
    return word


@cache
def _languages() -> tuple[frozenset[str], dict[tuple[str, ...], tuple[str, ...]], int]:
    """Stop words, term map and its longest key, from every folder of ``monitor/scoring/languages``.

    ``stopwords.txt``: words separated by white space. ``terms.txt``: "word = english" lines, the
    left side possibly several words. "#" starts a comment in both. Folders are read in name
    order, so a later folder's map wins for the same words.
    """
    stop = {fold(word) for word in ENGLISH_STOP_WORDS | CONTRACTIONS}
    terms: dict[tuple[str, ...], tuple[str, ...]] = {}
    for folder in language_folders():
        stop.update(fold(word) for entry in entries(read_lines(folder, "stopwords.txt"))
                    for word in entry.split())
        terms |= _read_terms("\n".join(read_lines(folder, "terms.txt")), folder.name)
    return frozenset(stop), terms, max(map(len, terms), default=1)


def _read_terms(text: str, where: str) -> dict[tuple[str, ...], tuple[str, ...]]:
    """A term map: words without accents -> English words; ValueError on a line not "a = b"."""
    terms = {}
    for number, line in enumerate(text.lower().splitlines(), 1):
        source, equals, english = line.split("#")[0].partition("=")
        if not (source.strip() or equals or english.strip()):
            continue
        key = tuple(fold(word) for word in WORD.findall(source))
        if not (equals and key and WORD.findall(english)):
            raise ValueError(f"{where}/terms.txt line {number}: not 'word = english': {line!r}")
        terms[key] = tuple(WORD.findall(english))
    return terms


def _cluster(vectors: Any) -> np.ndarray:
    """A group number per row, -1 for a row that fits no group (see the module docstring)."""
    n = vectors.shape[0]
    if n < 2:
        return np.ones(n, dtype=int)
    distance = np.empty((n, n))  # the one n x n matrix: filled in place, a band at a time
    for start in range(0, n, 256):
        distance[start:start + 256] = (vectors[start:start + 256] @ vectors.T).toarray()
    np.subtract(1.0, distance, out=distance)
    np.clip(distance, 0.0, 1.0, out=distance)
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method="average")
    cut = fcluster(tree, MERGE_DISTANCE, criterion="distance")
    if not 2 <= len(np.unique(cut)) < n:
        return cut  # one group, or every post alone: nothing to compare
    alone = np.bincount(cut)[cut] == 1
    fits = (silhouette_samples(distance, cut, metric="precomputed") > 0) | alone
    return np.where(fits, cut, -1)


def _describe(
    rows: np.ndarray, members: np.ndarray, vectors: Any, presence: Any, totals: np.ndarray,
    terms: list[str], launch: Launch, grouped: list, items: list,
    more: Sequence[tuple[float, int]] = (),
) -> Complaint:
    """Phrases, typical-first keys and quotes of one group (``members`` index ``rows`` of the
    ``grouped`` items; ``more``: (typicality, position in ``items``) of the items assigned
    to it from outside the sample)."""
    telling = _telling(members, presence, launch, totals)[:TELLING_TERMS]
    counts = np.asarray(presence[members][:, telling].sum(axis=0)).ravel()
    used: dict[str, int] = {}
    for t, n in zip(telling, counts, strict=True):
        used.setdefault(terms[t], int(n))  # two stems may be shown alike ("use", "used")
    ranked = [term for term, n in used.items() if n >= min(2, len(members))]
    centroid = np.asarray(vectors[rows[members]].mean(axis=0)).ravel()
    typicality = vectors[rows[members]] @ centroid
    near = [*((float(t), grouped[i]) for t, i in zip(typicality, rows[members], strict=True)),
            *((t, items[i]) for t, i in more)]
    order = [item for _, item in sorted(near, key=lambda pair: -pair[0])]  # stable: ties keep
    quotes: list[str] = []
    for _, text in order:
        text = quote(text, QUOTE_CHARS)
        if text not in quotes:
            quotes.append(text)
        if len(quotes) == 2:
            break
    return Complaint(
        phrases=_phrases(ranked, used),
        count=len(order),
        keys=tuple(key for key, _ in order),
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
