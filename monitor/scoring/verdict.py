"""From the cues found and the models' probabilities to the signals a rule reads: the
``angry`` verdict, anger 0..1, complaint 0..1, and the evidence quoted to a person.

``angry`` combines the trained anger model (``monitor.scoring.models``, when its weights are
shipped) with strong hand signals; see ``verdict``. ``anger`` is at least 0.5 exactly when
``angry``, and ``complaint`` at least 0.5 exactly when the post reports a problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from monitor.scoring.lexicons import Hit, saturate

ANGRY_ALONE = -0.75           # hand rules: this negative is angry without any other cue ...
ANGRY_WITH_CUE = 0.2          # ... and swearing or blame is angry unless clearly positive
HEAVY = -0.5                  # with the model: heavy swearing/blame/shouting when this negative
SWEARING = -0.3               # ... and one swear word or insult when this negative


@dataclass(slots=True)  # not frozen: a frozen dataclass is slower to build
class Cues:
    """The anger, change and churn cues found in one text."""

    shouted: int
    shout_share: float
    runs: dict[str, int]
    profanity: list[str]
    intensifiers: list[str]
    blame: list[str]
    change: list[Hit]
    churn: list[Hit]
    complaint: list[Hit]
    anger_words: list[str]

    @property
    def run_count(self) -> int:
        return sum(self.runs.values())

    @property
    def complaint_cues(self) -> float:
        """The complaint cue score 0..1 the complaint model reads beside the words."""
        return saturate(self.complaint)

    @property
    def plain_complaint(self) -> bool:
        """A phrase that alone says something is wrong ("not working", "bring back"): its
        list gives it a weight of 0.5 or more."""
        return any(weight >= 0.5 for _, weight in self.complaint)



def rescaled(probability: float, threshold: float) -> float:
    """A model's probability on a 0..1 scale whose 0.5 is the model's threshold."""
    if probability < threshold:
        return probability / (2 * threshold)
    return 0.5 + 0.5 * (probability - threshold) / (1 - threshold)


def complaint_signal(cues: Cues, model: tuple[float, float] | None) -> float:
    """Complaint 0..1, at least 0.5 exactly when the post reports a problem: the language's
    model (its threshold rescaled to 0.5), or, without a model, the cue score alone; a phrase
    that alone says something is wrong ("not working", "bring back the old") is enough."""
    if model is not None:
        value = rescaled(*model)
    else:
        value = 0.6 * cues.complaint_cues if cues.complaint else 0.0
    if cues.complaint and cues.plain_complaint:
        value = max(value, 0.5)
    return round(value, 3)


def verdict(known: bool, lowest: float, cues: Cues, probability: float | None = None,
            threshold: float | None = None, complaint: float = 0.0) -> bool:
    """Is the writer angry? ``lowest``: the lower of the whole text's and the worst
    sentence's compound.

    With the model (English): its probability reaches its threshold, or the text is
    negative (``HEAVY``) with heavy cues: two or more swear words or insults, blame aimed at
    'you', or shouting; or it swears and is negative (``SWEARING``); or it names anger
    ("furious", "fed up", "ugh") and is negative. The last two were added for short posts,
    where the model reads few words: on GoEmotions dev they cost 0.005 of F1 and find 5 % more
    of the clearly negative VADER tweets at the same precision. Without the
    model: very negative (``ANGRY_ALONE``), or swearing or blame in a text that is not clearly
    positive (``ANGRY_WITH_CUE``); both chosen on the GoEmotions train split (F1 0.40 there,
    0.38 on dev, raw VADER 0.30).
    Other languages: VADER and the model cannot read them, so only universal cues count (much
    shouting, or swearing together with shouting or '!!!') and, where the language has word
    lists, a complaint that swears or names anger.
    """
    profanity, blame = len(cues.profanity), bool(cues.blame)
    heavy_shouting = cues.shouted >= 3 and cues.shout_share >= 0.3
    if not known:
        return heavy_shouting and cues.shout_share >= 0.5 or profanity >= 2 or (
            profanity >= 1 and (cues.shouted >= 2 or cues.run_count >= 1)) or (
            complaint >= 0.5 and (profanity >= 1 or bool(cues.anger_words)))
    named = bool(cues.anger_words) and lowest < 0
    if probability is not None and threshold is not None:
        return probability >= threshold or named or (
            lowest <= SWEARING and profanity >= 1) or (
            lowest <= HEAVY and (profanity >= 2 or blame or heavy_shouting))
    return lowest <= ANGRY_ALONE or named or (
        lowest <= ANGRY_WITH_CUE and (profanity >= 1 or blame))


def intensity(lowest: float, cues: Cues, intensifiers: Sequence[str],
              probability: float | None, threshold: float | None, angry: bool) -> float:
    """Anger 0..1: how negative the text is (or the model's probability, rescaled so that its
    threshold is 0.5), made stronger by each cue; at least 0.5 exactly when ``angry``, so a
    rule's ``anger: {min: 0.5}`` means the same as our verdict."""
    if probability is not None and threshold:
        base = rescaled(probability, threshold)
    else:
        base = 0.6 * max(0.0, -lowest)
    # Each cue found leaves less calm; a cue not found would multiply by exactly 1.0, so it
    # is skipped (the same result, bit for bit, in the same order).
    calm = 1.0 - base
    if cues.profanity:
        calm *= 1.0 - (0.35 if len(cues.profanity) == 1 else 0.55)
    if cues.blame:
        calm *= 1.0 - 0.4
    if cues.shouted >= 2:
        calm *= 1.0 - min(0.5, 0.15 + cues.shout_share)
    if cues.runs:
        calm *= 1.0 - min(0.2, 0.1 * cues.run_count)
    if intensifiers:
        calm *= 1.0 - min(0.2, 0.1 * len(intensifiers))
    anger = 1.0 - calm
    anger = max(anger, 0.5) if angry else min(anger, 0.49)
    return round(anger, 3)


def evidence(cues: Cues, intensifiers: Sequence[str], worst: float | None,
              probability: float | None, complaint: float = 0.0,
              complaint_model: tuple[float, float] | None = None,
              ) -> tuple[tuple[str, str], ...]:
    """Readable (signal, phrase) pairs: ("anger", "4 words in capitals")."""
    if worst is None and probability is None and cues.shouted < 2 and complaint < 0.5 and not (
            cues.runs or cues.profanity or cues.blame or intensifiers or cues.change
            or cues.churn or cues.anger_words):
        return ()
    out: list[tuple[str, str]] = []
    if worst is not None:
        out.append(("anger", f"most negative sentence {worst:.2f}"))
    if probability is not None:
        out.append(("anger", f"reads as angry (model {probability:.2f})"))
    if cues.shouted >= 2:
        out.append(("anger", f"{cues.shouted} words in capitals"))
    for run, n in sorted(cues.runs.items(), key=lambda kv: (-kv[1], kv[0]))[:2]:
        out.append(("anger", f"'{run}' {_times(n)}"))
    if cues.profanity:
        words = list(dict.fromkeys(cues.profanity))[:3]
        out.append(("anger", "swears or insults: " + ", ".join(f"'{w}'" for w in words)))
    out += [("anger", f"says '{p}'") for p in cues.blame[:3]]
    out += [("anger", f"names anger: '{w}'") for w in list(dict.fromkeys(cues.anger_words))[:2]]
    if intensifiers:
        words = list(dict.fromkeys(intensifiers))[:3]
        out.append(("anger", "intensifiers: " + ", ".join(f"'{w}'" for w in words)))
    if complaint >= 0.5:
        if complaint_model is not None and complaint_model[0] >= complaint_model[1]:
            out.append(("complaint", f"reads as a problem report (model {complaint_model[0]:.2f})"))
        phrases = [p for p, _ in sorted(cues.complaint, key=lambda h: -h[1])[:3]]
        if phrases:
            out.append(("complaint", "says " + ", ".join(f"'{p}'" for p in phrases)))
    out += [("change", f"mentions '{p}'") for p, _ in
            sorted(cues.change, key=lambda h: -h[1])[:3]]
    out += [("churn", f"says '{p}'") for p, _ in sorted(cues.churn, key=lambda h: -h[1])[:3]]
    return tuple(out)


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")

