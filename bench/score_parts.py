"""Where ``monitor score``'s time goes on short texts: each step of the scorer, timed alone.

    python bench/score_parts.py [--data ../shared/data] [--repeat 5] [--count 10852]

``bench/score.py`` times whole processes; this breaks the per-text cost down, in this
process, on the GoEmotions comments that bench uses (dev, then train), in batches of 500 as
``monitor score`` scores them: preparing the text (``Text.of``), the language, VADER, the
cues, the anger and complaint models, finishing each score, and the rules of ``config.yaml``
with the JSON out (``score_batch`` less the scorer). Each figure is the best of ``--repeat``
runs, in CPU time (the machine is shared: wall time is noisier), with the scorer's objects
frozen out of the garbage collector's way as ``monitor score`` does. Then the start-up: the
seconds a fresh ``monitor score "hello"`` and a bare ``python -c pass`` take, best of runs,
the ``monitor`` package byte-compiled first (see ``bench/score.py``).
"""

from __future__ import annotations

import argparse
import compileall
import gc
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from score import MONITOR, ROOT, goemotions  # noqa: E402  (bench/score.py)

from monitor import config as configuration  # noqa: E402
from monitor.runtime import Runtime  # noqa: E402
from monitor.scorestream import BATCH_LINES, score_batch  # noqa: E402
from monitor.scoring.detect import language_of  # noqa: E402
from monitor.scoring.lexicons import language  # noqa: E402
from monitor.scoring.scorer import _Draft, _Features  # noqa: E402
from monitor.scoring.words import Text  # noqa: E402


def best_cpu(repeat: int, run: Callable[[], object]) -> float:
    """The least CPU seconds of ``repeat`` runs of ``run``."""
    times = []
    for _ in range(repeat):
        start = time.process_time()
        run()
        times.append(time.process_time() - start)
    return min(times)


def best_wall(repeat: int, command: list[str]) -> float:
    """The least wall seconds of ``repeat`` runs of ``command``."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--count", type=int, default=10_852)
    args = parser.parse_args()

    texts = goemotions(args.data, args.count)
    runtime = Runtime.of(configuration.load(ROOT / "config.yaml", scoring_only=True))
    scorer, rules, vips = runtime.scorer, runtime.rules, runtime.vips
    batches = [texts[at:at + BATCH_LINES] for at in range(0, len(texts), BATCH_LINES)]
    lines = [[(i, json.dumps({"text": t})) for i, t in enumerate(batch, 1)] for batch in batches]
    for batch in lines:  # warm: models, language identifier, word caches
        score_batch(batch, rules, scorer, vips)
    gc.freeze()
    prepared = [Text.of(t) for t in texts]
    drafts = [[scorer._draft(None, t) for t in batch] for batch in batches]
    en = language("en")

    def models(drafts: list[_Draft]) -> None:
        features = _Features(drafts)
        scorer._probabilities(drafts, features)
        scorer._complaint(drafts, features)

    steps: list[tuple[str, Callable[[], object]]] = [
        ("Text.of", lambda: [Text.of(t) for t in texts]),
        ("language", lambda: [language_of(p) for p in prepared]),
        ("VADER (tokens, numbers)",
         lambda: [scorer.vader.analyze(scorer.vader.tokens(t)) for t in texts]),
        ("cues", lambda: [scorer._cues(p, en) for p in prepared]),
        ("draft (all of the above)", lambda: [scorer._draft(None, t) for t in texts]),
        ("models (anger, complaint)", lambda: [models(d) for d in drafts]),
        ("score_many (draft, models, finish)", lambda: [scorer.score_many(
            [(None, t) for t in batch]) for batch in batches]),
        ("score_batch (+ parse, rules, JSON)",
         lambda: [score_batch(batch, rules, scorer, vips) for batch in lines]),
    ]
    print(f"{len(texts):,} GoEmotions comments, batches of {BATCH_LINES}, "
          f"best of {args.repeat} (CPU time)")
    print(f"{'step':40} {'µs/text':>9}")
    for name, run in steps:
        print(f"{name:40} {best_cpu(args.repeat, run) / len(texts) * 1e6:9.1f}")

    compileall.compile_dir(ROOT / "monitor", quiet=1)
    print("\nstart-up, wall seconds, best of", args.repeat)
    for name, command in (("python -c pass", [sys.executable, "-c", "pass"]),
                          ('monitor score "hello"', [str(MONITOR), "score", "hello"])):
        print(f"{name:40} {best_wall(args.repeat, command):9.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
