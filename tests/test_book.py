"""The book builds without a warning, and every chapter page renders in a real browser.

Headless Chromium (Debian's `chromium` and `chromium-driver`, which .ci/run installs) opens
each page from a local HTTP server and checks what a reader would see: no console errors,
every image loaded, every equation typeset by MathJax and no wider than the text column,
no TeX left as text, every collapsed block opening on a click. One screenshot per page is saved in
_build/screenshots. Without Chromium the browser test is skipped, unless
GENTUT_REQUIRE_BROWSER is set (CI sets it).
"""

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
# Debian's chromium here; Google Chrome on GitHub's runners
CHROMIUM = shutil.which("chromium") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")


def toc_files() -> list[str]:
    """Every page of the table of contents, in order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc["parts"]:
        files += [c["file"] for c in part["chapters"]]
    return files


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> Path:
    """Build the book into a temporary folder, warnings as errors, as `make book` does."""
    out = tmp_path_factory.mktemp("book")
    jb = Path(sys.executable).with_name("jupyter-book")
    run = subprocess.run([str(jb), "build", str(ROOT), "--path-output", str(out),
                          "--warningiserror", "--keep-going"],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    return out / "_build" / "html"


def test_book_builds_every_page_without_warnings(book):
    for page in toc_files():
        assert (book / f"{page}.html").is_file(), page


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        if os.environ.get("GENTUT_REQUIRE_BROWSER"):
            pytest.fail("chromium and chromedriver are required: apt-get install chromium "
                        "chromium-driver")
        pytest.skip("no chromium/chromedriver here (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1280,2000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    yield driver
    driver.quit()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(book):
    handler = functools.partial(QuietHandler, directory=str(book))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


MATHJAX_DONE = """
const done = arguments[arguments.length - 1];
if (!window.MathJax || !MathJax.startup) { done("no MathJax"); return; }
MathJax.startup.promise.then(() => done("ok"), (e) => done("failed: " + e));
"""


# A display formula's typeset width against the column it sits in (MathJax's SVG keeps its
# natural width; a formula cut off or scrolled is one whose SVG is wider than its box).
WIDER_THAN_COLUMN = """
document.querySelectorAll('details').forEach(d => { d.open = true; });
const wide = [...document.querySelectorAll('mjx-container[display="true"]')].filter(c => {
  const svg = c.querySelector('svg');
  const column = c.closest('div.math, .cell_output, article') || c.parentElement;
  return svg && svg.getBoundingClientRect().width > column.clientWidth + 1;
}).map(c => (c.getAttribute('aria-label') || c.textContent || '').slice(0, 80));
document.querySelectorAll('details').forEach(d => { d.open = false; });
return wide;
"""

# TeX that Markdown or MathJax left as text, outside code: `$$`, or a control word.
RAW_TEX = """
const skip = 'pre, code, script, style, mjx-container, .highlight, textarea';
const walker = document.createTreeWalker(document.querySelector('main') || document.body,
                                         NodeFilter.SHOW_TEXT);
const found = [];
const tex = /\\$\\$|\\\\(begin|end|frac|mathrm|mathbb|mathcal|operatorname|sum|log)\\b/;
while (walker.nextNode()) {
  const node = walker.currentNode;
  if (node.parentElement.closest(skip)) continue;
  if (tex.test(node.textContent)) found.push(node.textContent.trim().slice(0, 80));
}
return found;
"""

# Every collapsed block (solutions, hidden cells) opens on a click and shows its content.
DROPDOWNS_THAT_DO_NOT_OPEN = """
const failed = [];
for (const d of document.querySelectorAll('details')) {
  const summary = d.querySelector('summary');
  if (!summary) { failed.push('no summary'); continue; }
  const wasOpen = d.open;
  summary.scrollIntoView();
  summary.click();
  const shown = [...d.children].some(e => e !== summary && e.getBoundingClientRect().height > 0);
  const name = summary.textContent.trim().slice(0, 60);
  if (d.open === wasOpen || (d.open && !shown)) failed.push(name);
  if (d.open !== wasOpen) summary.click();
}
return failed;
"""


OFFLINE = "net::ERR_NAME_NOT_RESOLVED"


@pytest.mark.parametrize("page", toc_files())
def test_page_renders_in_chromium(page, browser, server):
    browser.get_log("browser")  # drop what earlier pages logged
    browser.set_script_timeout(60)
    browser.get(f"{server}/{page}.html")
    has_math = browser.execute_script(
        "return document.querySelectorAll('.math, mjx-container').length > 0")
    if has_math:
        assert browser.execute_async_script(MATHJAX_DONE) == "ok"
        raw = browser.execute_script(
            "return [...document.querySelectorAll('div.math, span.math')]"
            ".filter(e => !e.querySelector('mjx-container')).length")
        assert raw == 0, f"{raw} equations were not typeset"
        errors = browser.execute_script("return document.querySelectorAll('mjx-merror').length")
        assert errors == 0, f"{errors} equations have TeX errors"
        wide = browser.execute_script(WIDER_THAN_COLUMN)
        assert wide == [], f"display formulas wider than the text column: {wide}"
    raw_tex = browser.execute_script(RAW_TEX)
    assert raw_tex == [], f"TeX left as text (a formula that did not render): {raw_tex}"
    closed = browser.execute_script(DROPDOWNS_THAT_DO_NOT_OPEN)
    assert closed == [], f"dropdowns that do not open: {closed}"
    broken = browser.execute_script(
        "return [...document.images].filter(i => !(i.complete && i.naturalWidth > 0))"
        ".map(i => i.src)")
    assert broken == [], f"images that did not load: {broken}"
    # the InfoGAN page's sliders load ipywidgets' embedder from a CDN, which a reader online
    # reaches; offline (here, CI) that fetch fails to resolve: not an error of the page
    severe = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"
              and not (OFFLINE in e["message"] and not e["message"].startswith(server))]
    assert severe == [], f"console errors: {severe}"
    shots = ROOT / "_build" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(shots / f"{page.replace('/', '_')}.png"))
