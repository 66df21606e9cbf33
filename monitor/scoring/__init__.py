"""Text -> Score: VADER's numbers plus our own signals (anger, change talk, churn intent,
complaint).

Pure: the same text always gets the same numbers. A ``Scorer`` is compiled once (word lists,
cue patterns, event keywords) and scores many posts; ``score_text``/``score_post`` use a default
one. What it measures, and why, module by module:

* **VADER** (``vader``: VADER's own algorithm, the same numbers, in linear time) on the whole
  text, as before, and for a long post on each sentence that holds a negative word: a long,
  polite post with one furious paragraph is still angry, and its worst sentence is named.
* **Hand signals** (``signals``, on a text prepared once by ``words``): capitals, runs of ! and
  ?, profanity and insults, intensifiers, second-person blame, change talk, churn intent.
* **Language** (``detect``): VADER knows only English. A post confidently in another language
  keeps its language code, gets 0 for VADER's numbers and ``sentiment_known`` False; only the
  universal cues (capitals, !!!, listed swear words) and its language's lists can still call it
  angry. Languages are data (``lexicons``; ``languages/<code>/``, ``lexicon/``), not code.
* **Models** (``models``, over ``features``, computed fast by ``hashed_dot``): the anger model
  and each language's complaint model, small linear models shipped without pickle.
* **Verdict** (``verdict``): ``angry``, anger and complaint 0..1, and the evidence quoted.
* **Bounds** (``scorer``): at most ``MAX_SCORED_CHARS`` of a post are read, sentences are
  scored in parts of at most ``MAX_SENTENCE_CHARS``, and at most ``MAX_SENTENCES`` of them: any
  post, 1 MB of emoji included, scores in milliseconds. ``truncated`` says when something was
  left out.
"""

from importlib import import_module
from typing import Any

_HOMES = {"Scorer": "scorer", "default_scorer": "scorer", "score_post": "scorer",
          "score_text": "scorer", "load_word_file": "lexicons"}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    """The names above, imported on first use: reading a word list (``config.load``) need
    not import the scorer and its patterns."""
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
