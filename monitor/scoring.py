"""Text -> Score. Pure: the same text always gets the same numbers.

VADER is run on at most MAX_SCORED_CHARS characters: it is quadratic around "but" and has taken
tens of seconds on one emoji-heavy comment, so a hostile post must not stall a pass.
"""

from __future__ import annotations

from functools import cache

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from monitor.model import Post, Score

MAX_SCORED_CHARS = 5_000


@cache
def _analyzer() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()  # loads its lexicon once; reused for every post


def score_text(title: str | None, text: str) -> Score:
    """VADER's compound/pos/neu/neg for a post's title and text together."""
    whole = f"{title}\n{text}" if title else text
    scored = whole[:MAX_SCORED_CHARS]
    numbers = _analyzer().polarity_scores(scored)
    return Score(compound=numbers["compound"], pos=numbers["pos"], neu=numbers["neu"],
                 neg=numbers["neg"], truncated=len(scored) < len(whole))


def score_post(post: Post) -> Score:
    """Score the author's own words: a reply's title is its thread's, so it is left out."""
    return score_text(None if post.is_reply else post.title, post.text)
