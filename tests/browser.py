"""Headless Chromium for the tests that look at pages: a screenshot, and widths measured in the page."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--window-size=1280,4000", "--virtual-time-budget=3000"]

# Every element that scrolls sideways (wider content than its box), and the page's own width.
MEASURE = """<script>
window.addEventListener('load', () => {
  document.querySelectorAll('details').forEach(d => d.open = true);  // what a reviewer who opens them sees
  const wide = [...document.querySelectorAll('pre, table, .comment')]
    .filter(e => e.scrollWidth > e.clientWidth + 1)
    .map(e => e.tagName.toLowerCase() + ' ' + e.scrollWidth + '>' + e.clientWidth + ' ' + e.textContent.trim().slice(0, 80));
  const out = document.createElement('pre');
  out.id = 'measured';
  out.textContent = JSON.stringify({wide, page: document.documentElement.scrollWidth,
                                    comment: (document.querySelector('.comment') || document.body).scrollWidth});
  document.body.appendChild(out);
});
</script>"""


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "Chromium is not installed: scripts/test-services.sh installs Debian's chromium"
    return path


def measure(page_html: str) -> dict:
    """Load ``page_html`` and return what MEASURE found."""
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "page.html"
        page.write_text(page_html.replace("</body>", MEASURE + "</body>"))
        out = subprocess.run([chromium(), *FLAGS, f"--user-data-dir={tmp}/profile", "--dump-dom", page.as_uri()],
                             capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="measured">(.*?)</pre>', out.stdout, re.S)
    assert found, f"Chromium measured nothing: {out.stderr[-800:]}"
    return json.loads(found[1].replace("&gt;", ">").replace("&lt;", "<").replace("&amp;", "&").replace("&quot;", '"'))


def screenshot(page_html: str, png: Path) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "page.html"
        page.write_text(page_html)
        subprocess.run([chromium(), *FLAGS, f"--user-data-dir={tmp}/profile", f"--screenshot={png}", page.as_uri()],
                       capture_output=True, text=True, timeout=120, check=True)
    return png
