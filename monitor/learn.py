"""``monitor learn``: refit the complaint and anger models with the team's verdicts added, and
install the refit only where it is not worse.

Each verdict is a label (``monitor.cases``; the latest per post and signal wins). For each
signal and language with labels (complaint: en, fr; anger: en):

1. **Weight, cross-validated.** The team's labels are cut into ``FOLDS`` folds (fewer when
   there are fewer labels; seed 0). For each weight W of ``WEIGHTS`` (a team label counts as W
   shipped examples), each fold is predicted by the shipped recipe (``monitor.scoring.
   training``) fit on the shipped training set plus the other folds' labels at weight W. The
   threshold: anger's is chosen on the dev set by F1, as the shipped one was; complaint keeps
   the threshold of the model in use, since the shipped one was chosen on held-out apps and
   the URR reviews, which a refit cannot repeat (chosen on dev alone it falls from 0.26 to
   0.18 and flags 16 % more of other apps' reviews at precision 0.71 instead of 0.76,
   ``bench/learn_replay.py``). The W whose held-out predictions have the best F1 on the
   team's labels wins (ties: the smaller).
2. **After**: those held-out predictions (each label judged by a model that never saw it),
   and the model fit on the shipped training set plus every team label at W, on the dev set.
3. **Before**: the model in use (a learned one, or the shipped one) on the team's labels and
   on the dev set. The shipped complaint models were fit on every Mini-BAR row, dev included,
   so on dev they stand in as the same recipe refit on the train split (anger's refit is the
   shipped model: GoEmotions dev was never trained on); so does any shipped model when
   ``limit`` cuts the training set.
4. **Install** only when, on the dev set and on the team's labels, neither precision nor
   recall is lower than before by more than ``TOLERANCE``; else refuse and show the figures.
   On the team's labels a model that flags none has precision 1 (no wrong flag) and, when no
   label is positive, recall 1 (nothing missed).

The model goes into the store (``models``), never into the package: every daemon on the store
picks it up within ``WATCH_EVERY`` seconds; ``undo`` goes back to the one before.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from monitor.scoring import training
from monitor.scoring.lexicons import language
from monitor.scoring.scorer import MAX_SCORED_CHARS
from monitor.store import Store
from monitor.store.learning import TeamLabel

FOLDS = 5
WEIGHTS = (3.0, 10.0, 30.0)
TOLERANCE = 0.02
SHIPPED_SAW_DEV = {"complaint"}  # see step 3
KEEPS_THRESHOLD = {"complaint"}  # see step 1


@dataclass(frozen=True)
class Figures:
    precision: float
    recall: float

    def worse_than(self, other: Figures) -> bool:
        return (self.precision < other.precision - TOLERANCE
                or self.recall < other.recall - TOLERANCE)


@dataclass
class Round:
    """One signal and language: what was learned, and whether it was installed."""

    signal: str
    language: str
    labels: int
    positive: int
    weight: float | None = None
    folds: int = 0
    before: dict[str, Figures] = field(default_factory=dict)   # "dev", "team"
    after: dict[str, Figures] = field(default_factory=dict)
    outcome: str = "nothing to learn"  # installed, refused, dry run
    model_id: int | None = None

    def report(self) -> dict[str, Any]:
        """What the store keeps beside the model."""
        return {"signal": self.signal, "language": self.language, "labels": self.labels,
                "positive": self.positive, "weight": self.weight, "folds": self.folds,
                "tolerance": TOLERANCE,
                "before": {k: vars(v) for k, v in self.before.items()},
                "after": {k: vars(v) for k, v in self.after.items()}}


@dataclass
class LearnReport:
    rounds: list[Round]

    @property
    def refused(self) -> bool:
        return any(r.outcome == "refused" for r in self.rounds)


def learn(store: Store, now: datetime, actor: str | None, *, signals: Sequence[str] = (),
          dry_run: bool = False, limit: int | None = None,
          weights: Sequence[float] = WEIGHTS, folds: int = FOLDS) -> LearnReport:
    """One learn round per signal and language with labels (``signals``: only these).
    ``limit``, ``weights``, ``folds``: fewer rows of the shipped training set, fewer weights
    and folds to try (tests, benches, quick looks)."""
    labels = store.team_labels()
    active = store.active_models()
    rounds = []
    for signal, codes in training.SIGNALS.items():
        if signals and signal not in signals:
            continue
        for code in codes:
            mine = [x for x in labels if x.signal == signal and _language(x, signal) == code]
            round_ = Round(signal, code, len(mine), sum(x.value for x in mine))
            rounds.append(round_)
            if not mine:
                continue
            stored = active.get((signal, code))
            current = training.from_bytes(stored.data) if stored else None
            data = _fit_round(round_, mine, current, limit, weights, folds)
            if any(round_.after[k].worse_than(round_.before[k]) for k in round_.before):
                round_.outcome = "refused"
            elif dry_run:
                round_.outcome = "dry run"
            else:
                round_.model_id = store.install_model(signal, code, data, round_.report(),
                                                      now=now, actor=actor)
                round_.outcome = "installed"
    return LearnReport(rounds)


def undo(store: Store, signals: Sequence[str] = ()) -> list[tuple[str, str, Any]]:
    """Go back one model for each signal and language: (signal, language, (undone id, now
    active id or None) or None when the shipped model was in use already)."""
    return [(signal, code, store.undo_model(signal, code))
            for signal, codes in training.SIGNALS.items() if not signals or signal in signals
            for code in codes]


def _language(label: TeamLabel, signal: str) -> str | None:
    """The model that reads the post: a post too short to tell is read as English by the
    anger model, and by no complaint model."""
    return label.language or ("en" if signal == "anger" else None)


def _fit_round(round_: Round, team: list[TeamLabel], current: Any, limit: int | None,
               weights: Sequence[float], folds: int) -> bytes:
    """Fill ``round_``'s figures; the bytes of the model fit on everything at the chosen
    weight."""
    signal, code = round_.signal, round_.language
    recipe = training.recipe(signal, code)
    train_x, train_y = training.read_set(signal, code, "train", limit)
    dev_x, dev_y = training.read_set(signal, code, "dev")
    team_x = [x.text[:MAX_SCORED_CHARS] for x in team]
    team_y = np.array([x.value for x in team], dtype=bool)
    dense = {name: training.dense_inputs(texts, code)
             for name, texts in (("train", train_x), ("dev", dev_x), ("team", team_x))}
    matrix = {name: training.featurize(texts, recipe.settings, dense[name])
              for name, texts in (("train", train_x), ("dev", dev_x), ("team", team_x))}

    before_model = current or language(code).model(signal)

    def fit(rows: np.ndarray, weight: float) -> tuple[training.Fitted, float]:
        import scipy.sparse as sp

        x = sp.vstack([matrix["train"], matrix["team"][rows]], format="csr")
        y = np.concatenate([train_y, team_y[rows]])
        w = np.concatenate([np.ones(len(train_y)), np.full(rows.size, weight)])
        model = training.fit(x, y, recipe.c, w)
        if signal in KEEPS_THRESHOLD:
            return model, before_model.threshold
        return model, training.best_f1_threshold(dev_y, model.probability(matrix["dev"]))

    folds = min(folds, len(team))
    order = list(range(len(team)))
    random.Random(0).shuffle(order)
    fold_of = np.empty(len(team), dtype=int)
    fold_of[order] = np.arange(len(team)) % folds
    best: tuple[float, float, np.ndarray] | None = None
    for weight in weights:
        verdict = np.zeros(len(team), dtype=bool)
        for k in range(folds):
            model, threshold = fit(np.flatnonzero(fold_of != k), weight)
            held = np.flatnonzero(fold_of == k)
            verdict[held] = model.probability(matrix["team"][held]) >= threshold
        f1 = training.prf(team_y, verdict)[2] if folds > 1 else 0.0
        if best is None or f1 > best[0] + 1e-12:
            best = (f1, weight, verdict)
    assert best is not None
    _, weight, verdict = best
    model, threshold = fit(np.arange(len(team)), weight)
    round_.weight, round_.folds = weight, folds
    round_.after = {"dev": _figures(dev_y, model.probability(matrix["dev"])
                                    >= threshold),
                    "team": _figures(team_y, verdict, team=True)}
    if current is None and (signal in SHIPPED_SAW_DEV or limit is not None):
        reference, ref_threshold = fit(np.zeros(0, dtype=int), 0.0)  # see step 3
        dev_before = reference.probability(matrix["dev"]) >= ref_threshold
    else:
        dev_before = before_model.probability(dev_x, dense["dev"]) >= before_model.threshold
    round_.before = {"dev": _figures(dev_y, dev_before),
                     "team": _figures(team_y, before_model.probability(team_x, dense["team"])
                                      >= before_model.threshold, team=True)}
    return training.to_bytes(model, recipe.settings, threshold)


def _figures(truth: np.ndarray, verdict: np.ndarray, team: bool = False) -> Figures:
    """Precision and recall; on the team's labels, 1 where undefined (see the module's doc)."""
    p, r, _ = training.prf(truth, verdict)
    if team:
        p = p if verdict.any() else 1.0
        r = r if truth.any() else 1.0
    return Figures(round(float(p), 4), round(float(r), 4))
