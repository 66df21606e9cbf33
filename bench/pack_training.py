"""Rebuild monitor/scoring/training/: the labelled texts ``monitor learn`` refits on.

    python bench/pack_training.py [--data ../shared/data]

``monitor learn`` must work wherever the package is installed, without the data folder, so the
shipped models' training data travels with it as gzipped JSON lines, one ``[text, label]`` per
line:

* ``complaint-<code>-train.jsonl.gz`` / ``complaint-<code>-dev.jsonl.gz`` (en, fr): Mini-BAR's
  ``problem_report`` label, both apps, shuffled with seed 0 and cut 80 % / 20 %. The shipped
  complaint models were fit on every row (``bench/train_complaint.py``), so their own figures
  on this dev split are optimistic; ``monitor.learn`` compares against the same recipe refit
  on the train split instead (see there).
* ``anger-en-train.jsonl.gz`` / ``anger-en-dev.jsonl.gz``: GoEmotions train and dev, positive =
  anger or annoyance, exactly what ``bench/train_anger.py`` reads.

Deterministic: a rerun writes the same texts (gzip without a timestamp).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_anger import read_split  # noqa: E402
from train_complaint import APPS, read_minibar  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data"
OUT = REPO / "monitor" / "scoring" / "training"
DEV_SHARE = 0.2


def write(path: Path, texts: list[str], labels: list[bool]) -> None:
    lines = "".join(json.dumps([t, bool(y)], ensure_ascii=False) + "\n"
                    for t, y in zip(texts, labels, strict=True))
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                               compresslevel=9) as fh:
        fh.write(lines.encode("utf-8"))
    print(f"{path.name}: {len(texts)} rows, {sum(labels)} positive, "
          f"{path.stat().st_size / 1e6:.2f} MB")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for code in ("en", "fr"):
        rows = [(t, bool(y)) for app in APPS
                for t, y in zip(*read_minibar(args.data, app, code), strict=True)]
        random.Random(0).shuffle(rows)
        cut = int(len(rows) * (1 - DEV_SHARE))
        for name, part in (("train", rows[:cut]), ("dev", rows[cut:])):
            write(args.out / f"complaint-{code}-{name}.jsonl.gz", [t for t, _ in part],
                  [y for _, y in part])
    for name in ("train", "dev"):
        texts, labels = read_split(args.data / "goemotions" / f"{name}.tsv")
        write(args.out / f"anger-en-{name}.jsonl.gz", texts, labels.tolist())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
