"""Which language a text is in: VADER and the English cues read English only.

A post confidently in another language keeps its language code, gets 0 for VADER's numbers
and ``sentiment_known`` False (see ``monitor.scoring.scorer``). Clearly English text is told
from its common words, without a model; the rest goes to py3langid, whose unpacked model is
cached under ``$XDG_CACHE_HOME``.
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path
from typing import Any

from monitor.scoring.lexicons import builtin_list
from monitor.scoring.words import Text, as_text

log = logging.getLogger(__name__)

LANGUAGE_MIN_LETTERS = 20     # shorter texts are too short to tell: language None (English)
LANGUAGE_CHARS = 300          # the language is told from the first characters only
LANGUAGE_MIN_CONFIDENCE = 0.9  # below this, a non-English guess is not trusted


@cache
def _language_words() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """English words that are not words of the nearby European languages, short English
    words that some of them share, and their frequent words that are not English
    (``lexicon/english.txt``, ``english-common.txt``, ``not-english.txt``)."""
    english, common, other = (frozenset(builtin_list(name)) for name in
                              ("english.txt", "english-common.txt", "not-english.txt"))
    return english, common, other


def plainly_english(text: Text | str) -> bool:
    """Does the text read as English from its common words alone? (No model needed.)

    Two English-only words making up a tenth of the words, or one plus short common English
    words making up a third (three words at least); and no frequent word of another language.
    """
    text = as_text(text)
    english, common, other = _language_words()
    if not other.isdisjoint(text.word_set):
        return False
    strong = sum(map(english.__contains__, text.lower_words))
    if strong >= 2 and strong >= 0.1 * len(text.words):
        return True
    both = strong + sum(map(common.__contains__, text.lower_words))
    return strong >= 1 and both >= 3 and both >= len(text.words) / 3


@cache
def _identifier() -> Any:
    """py3langid's model, loaded the first time a text needs it.

    py3langid ships it LZMA-compressed: unpacking takes 0.5 to 1 s, longer than scoring
    thousands of posts, in every process. So the unpacked arrays are kept in the user's cache
    folder (``$XDG_CACHE_HOME/feedback-monitor``, about 70 MB per py3langid version) and
    mapped from there in milliseconds by later processes: the same arrays, the same answers.
    Without a writable cache folder (or another py3langid layout) it loads as py3langid does.
    """
    import json
    import os
    import shutil
    import tempfile

    import numpy as np
    import py3langid
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    def cached() -> Any:
        from py3langid.modelio import load_model

        source = MODEL_DIR / MODEL_FILE
        stat = source.stat()
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") \
            / "feedback-monitor"
        # its own __version__: importlib.metadata's lookup costs more than the mapping
        folder = root / f"py3langid-{py3langid.__version__}-{stat.st_size}-{stat.st_mtime_ns}"
        names = ("ptc", "pc", "nextmove", "row", "out")
        if not (folder / "classes.json").is_file():  # unpack once, as from_model_file does
            ptc, pc, classes, nextmove, row, out = load_model(source)
            root.mkdir(parents=True, exist_ok=True)
            work = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=root))
            arrays = (ptc, pc, np.frombuffer(nextmove, dtype=f"u{nextmove.itemsize}"),
                      np.frombuffer(row, dtype=f"u{row.itemsize}"), np.asarray(out, np.int32))
            for name, array in zip(names, arrays, strict=True):
                np.save(work / f"{name}.npy", array)
            (work / "classes.json").write_text(json.dumps(classes), "utf-8")
            try:  # renamed whole: no reader sees half a cache
                work.rename(folder)
            except OSError:  # another process got there first
                shutil.rmtree(work, ignore_errors=True)
        ptc, pc, nextmove, row, out = (np.load(folder / f"{name}.npy", mmap_mode="r")
                                       for name in names)
        classes = json.loads((folder / "classes.json").read_text("utf-8"))
        # plain arrays over the mapped files: a memmap's indexing runs Python code per text
        return LanguageIdentifier(np.asarray(ptc), np.asarray(pc), classes, memoryview(nextmove),
                                  out.tolist(), norm_probs=True, tk_row=memoryview(row))

    try:
        return cached()
    except Exception as error:  # the cache is a shortcut, never a failure
        log.debug("py3langid model not cached (%s): unpacking it", error)
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def language_of(text: Text | str) -> str | None:
    """ISO 639-1 code of the text's language; None when too short to tell (under 20 letters).

    Clearly English text is recognised from its common words; the rest goes to py3langid, on
    its first ``LANGUAGE_CHARS`` characters. A non-English answer needs a confidence of
    ``LANGUAGE_MIN_CONFIDENCE``; anything less is taken as English, so VADER still reads it.
    """
    text = as_text(text)
    if sum(map(len, text.words)) < LANGUAGE_MIN_LETTERS:
        return None
    if plainly_english(text):
        return "en"
    language, confidence = _identifier().classify(text.original[:LANGUAGE_CHARS])
    return language if language != "en" and confidence >= LANGUAGE_MIN_CONFIDENCE else "en"

