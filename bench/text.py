"""How ``html_to_text`` grows with the size of one entry: CPU seconds for 50k to 2M characters
of hostile markup of several shapes, uncapped (the parser and the text walk alone: time per
character should stay flat) and as shipped (markup past 256 KiB is not read).

    python bench/text.py [--sizes 50000,100000,200000,500000,1000000,2000000]

Before issue 15 the walk edited the tree (a break inserted beside each block, which bs4
places by scanning the siblings): 100k characters of paragraphs took 2 s, 200k 10 s.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from monitor.collectors import text  # noqa: E402

SHAPES: dict[str, Callable[[int], str]] = {
    "paragraphs": lambda n: "<p>word word</p>" * (n // 16),
    "line breaks": lambda n: "word<br>" * (n // 8),
    "list items": lambda n: "<ul>" + "<li>x</li>" * (n // 10) + "</ul>",
    "nested divs": lambda n: "<div>" * (n // 5),
    "scripts": lambda n: "<script>x</script>a" * (n // 18),
    "table rows": lambda n: "<table>" + "<tr><td>x</td></tr>" * (n // 18) + "</table>",
}


def seconds(markup: str) -> float:
    gc.collect()  # the last size's garbage is not this one's cost
    start = time.process_time()
    text.html_to_text(markup)
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="50000,100000,200000,500000,1000000,2000000")
    sizes = [int(s) for s in parser.parse_args().sizes.split(",")]
    shipped = text.MAX_HTML
    for label, cap in (("uncapped", max(sizes) + 1), ("as shipped", shipped)):
        text.MAX_HTML = cap
        print(f"\n{label}: CPU seconds (microseconds per 1,000 characters)")
        print(f"{'shape':<12}" + "".join(f"{n:>17,}" for n in sizes))
        for name, make in SHAPES.items():
            cells = []
            for n in sizes:
                spent = seconds(make(n))
                cells.append(f"{spent:8.2f} ({spent / n * 1e9:5.0f})")
            print(f"{name:<12}" + "".join(f"{c:>17}" for c in cells), flush=True)
    text.MAX_HTML = shipped


if __name__ == "__main__":
    main()
