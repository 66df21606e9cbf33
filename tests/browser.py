"""Headless Chromium for the report tests: a screenshot, the DOM, and a probe of what the eye
would check (images decoded, nothing wider than the window, no script, parsed to the end)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html import unescape
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = next((found for name in ("chromium", "chromium-browser", "google-chrome")
                 if (found := shutil.which(name))), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH "
                                    "(.ci/run installs Debian's chromium when run as root)")

# Added to a copy of the page only (the digest itself has no script): what the eye would
# check, measured by the browser after layout.
PROBE = """<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  const result = {
    images: images.length,
    broken: images.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt),
    overflow: document.documentElement.scrollWidth > window.innerWidth,
    end: !!document.getElementById("END_ID"),
    scripts: document.scripts.length - 1,
  };
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify(result);
  document.body.appendChild(out);
});
</script>"""


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CHROMIUM or "chromium", "--headless", "--disable-gpu", "--no-sandbox",
                           "--hide-scrollbars", "--enable-logging=stderr", "--v=0",
                           f"--user-data-dir={args[0]}", *args[1:]],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "HOME": args[0]})


def probe(page: Path, profile: Path, end: str = "digest-end") -> dict[str, Any]:
    """Open a copy of ``page`` with PROBE added; the probe's findings and console errors.
    ``end``: the id of an element the page must reach (it was parsed to the end)."""
    probed = page.with_name("probed-" + page.name)
    probed.write_text(page.read_text().replace(
        "</body>", PROBE.replace("END_ID", end) + "</body>"))
    done = chromium(str(profile), "--window-size=720,1200", "--virtual-time-budget=5000",
                    "--dump-dom", probed.as_uri())
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout)
    assert found, f"the probe did not run: {done.stderr[-2000:]}"
    result = json.loads(unescape(found.group(1)))
    result["console"] = [line for line in done.stderr.splitlines()
                         if "CONSOLE" in line or "Uncaught" in line]
    return result
