"""The README's module map names every module of the package, and nothing that is gone."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_the_module_map_names_every_module() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## For developers\n", 1)[1].split("\n## ", 1)[0]
    mapped = re.findall(r"^\| `(monitor/[\w/]+\.py)` \|", section, re.MULTILINE)
    modules = sorted(str(p.relative_to(REPO)) for p in (REPO / "monitor").rglob("*.py"))
    assert len(mapped) == len(set(mapped)), "a module is listed twice"
    assert sorted(mapped) == modules
