"""The built book, opened in a real headless browser with no network, shows typeset math.

Runs after `make book` (the test command builds the book first). MathJax must be bundled with the site
(sphinx-mathjax-offline), never fetched from a CDN: the pages are loaded from file:// with Chromium's
background networking off, and the test checks that MathJax produced its output elements and left no
raw TeX delimiters behind.
"""
import pathlib
import re
import shutil
import subprocess
import tempfile

from html.parser import HTMLParser

import pytest

import nclib

HTML = nclib.ROOT / "_build" / "html"
PAGES = sorted(str(p.relative_to(HTML)) for p in HTML.glob("book/**/*.html")) or ["book/setting.html"]
#: Pages whose figures must be in the built HTML (a wrong matplotlib backend silently drops them).
FIGURE_PAGES = ["book/setting.html", "book/theory/thm43.html", "book/spectrum/thm44.html",
                "book/training/metrics.html", "book/training/train.html", "book/figures/fig1.html"]


def _chromium():
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("headless Chromium is missing: `make test` installs it (apt-get install chromium)")
    return exe


def _dump_dom(page: pathlib.Path) -> str:
    with tempfile.TemporaryDirectory() as profile:
        out = subprocess.run(
            [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
             f"--user-data-dir={profile}", "--virtual-time-budget=15000", "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=120,
        )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_mathjax_is_bundled_not_fetched():
    if not (HTML / "index.html").exists():
        pytest.fail("no built book in _build/html: run `make book` first (`make test` does)")
    script = HTML / "_static" / "mathjax" / "tex-chtml.js"
    assert script.is_file(), "MathJax is not bundled into _static/mathjax"
    page = (HTML / "book" / "setting.html").read_text()
    srcs = re.findall(r'<script[^>]+src="([^"]*mathjax[^"]*)"', page, flags=re.I)
    assert srcs, "no MathJax script tag in the page"
    assert all(not s.startswith(("http:", "https:", "//")) for s in srcs), srcs


class _ProseText(HTMLParser):
    """The text a reader sees outside code, typeset math and scripts."""

    SKIP = {"script", "style", "pre", "code", "mjx-container", "svg", "textarea"}
    VOID = {"br", "img", "meta", "link", "input", "hr", "wbr", "source"}

    def __init__(self):
        super().__init__()
        self.stack, self.hidden, self.parts = [], 0, []

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        self.stack.append(tag)
        self.hidden += tag in self.SKIP

    def handle_endtag(self, tag):
        while self.stack:
            top = self.stack.pop()
            self.hidden -= top in self.SKIP
            if top == tag:
                break

    def handle_data(self, data):
        if self.hidden == 0:
            self.parts.append(data)


@pytest.mark.parametrize("name", PAGES)
def test_math_is_typeset_offline(name):
    """Every page: MathJax ran from the bundled copy and no raw TeX is left in the prose.

    Raw TeX (a stray $, a backslash command, ^{ or _{) outside code means a formula was not parsed as
    math, e.g. display math glued to the line before it inside a directive; a raw `| --- |` means a
    markdown table printed by a cell was not rendered.
    """
    page = HTML / name
    if not page.exists():
        pytest.fail(f"{page} was not built: run `make book` first (`make test` does)")
    dom = _dump_dom(page)
    has_math = "\\(" in page.read_text() or "\\[" in page.read_text()
    if has_math:
        assert dom.count("<mjx-container") > 0, f"MathJax typeset nothing in {name}"
    parser = _ProseText()
    parser.feed(dom.split("<body", 1)[1])
    text = " ".join(" ".join(parser.parts).split())
    leftovers = re.findall(r".{0,40}(?:\\[A-Za-z]{2,}|\\\(|\\\[|\$|\^\{|_\{).{0,40}", text)
    assert not leftovers, f"raw TeX left in {name}: {leftovers[:3]}"
    tables = re.findall(r".{0,40}\|\s*(?:---|\u2014)\s*\|.{0,40}", text)  # Sphinx turns --- into an em dash
    assert not tables, f"a markdown table was shown as text in {name}: {tables[:2]}"


@pytest.mark.parametrize("name", FIGURE_PAGES)
def test_figures_are_in_the_pages(name):
    page = HTML / name
    if not page.exists():
        pytest.fail(f"{page} was not built: run `make book` first (`make test` does)")
    images = re.findall(r'<img[^>]+src="([^"]+)"', page.read_text())
    assert images, f"no figure rendered in {name}"
    for src in images:
        assert (page.parent / src).is_file(), f"{name} links a missing image {src}"
