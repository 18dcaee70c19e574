"""The smoke book as a reader sees it: every page of ``_toc.yml`` in headless Chromium.

The book built once by the session fixture ``book`` is served by a local ``http.server`` on
127.0.0.1 and opened with Playwright in the system's Chromium (``executable_path``: Playwright's
own browser builds are never downloaded). The network is disabled twice over: Chromium resolves
no host name but 127.0.0.1 and routes through no proxy, and every request that does not go to the
local server is aborted and recorded, and the record must stay empty. One browser session visits
all pages (module fixture ``visits``); the tests then check what it saw: no console errors or
failed requests, every image decoded, the mathematics typeset by the shipped MathJax, previous /
next links in toc order, sidebar links to existing pages, and the search page finding a word of
the book.

The test is skipped only when no Chromium is found (``$MNISTND_CHROMIUM``, then ``chromium``,
``chromium-browser``, ``google-chrome`` on ``PATH``); ``make test`` installs Debian's chromium
where it is missing and apt-get can install it.
"""

from __future__ import annotations

import http.server
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from mnistnd.book import toc_files

ROOT = Path(__file__).resolve().parent.parent
ENTRIES = toc_files(ROOT)
CHROMIUM_ENV = "MNISTND_CHROMIUM"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: a word of several chapters that the search page must find
SEARCH_WORD = "Leiden"
#: milliseconds a page may take to load, typeset and decode its images
PAGE_TIMEOUT_MS = 30_000

pytestmark = pytest.mark.slow

#: Run in the page once it has loaded: waits for MathJax (on pages with mathematics) and for every
#: image, then reports what a reader would see.
INSPECT_JS = r"""
async (timeout) => {
  const wait = (ms) => new Promise((r) => setTimeout(r, ms));
  const deadline = Date.now() + timeout;
  const math = Array.from(document.querySelectorAll('.math'));
  let mathjax = 'not needed';
  if (math.length) {
    const ready = () => window.MathJax && MathJax.version && MathJax.startup
                        && MathJax.startup.promise;
    while (!ready() && Date.now() < deadline) await wait(50);
    mathjax = ready() ? MathJax.version : 'never loaded';
    if (ready()) await MathJax.startup.promise;
  }
  const images = Array.from(document.images);
  images.forEach((img) => { img.loading = 'eager'; });
  await Promise.all(images.map((img) => img.complete ? null : new Promise((r) => {
    img.addEventListener('load', r); img.addEventListener('error', r);
  })));
  const skip = 'pre, code, script, style, textarea, mjx-container, .highlight';
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const texts = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (!n.parentElement.closest(skip)) texts.push(n.textContent);
  }
  const hrefs = (sel) => Array.from(document.querySelectorAll(sel)).map((a) => a.href);
  return {
    mathjax: mathjax,
    n_math: math.length,
    n_typeset: math.filter((m) => m.querySelector('mjx-container')).length,
    n_math_errors: document.querySelectorAll('mjx-merror').length,
    text: texts.join(' '),
    images: images.map((img) => [img.getAttribute('src'), img.naturalWidth]),
    prev: hrefs('a.left-prev'),
    next: hrefs('a.right-next'),
    sidebar: hrefs('nav.bd-docs-nav a'),
  };
}
"""


def find_chromium() -> str | None:
    """``$MNISTND_CHROMIUM``, else the first Chromium on ``PATH``; ``None`` when there is none."""
    env = os.environ.get(CHROMIUM_ENV)
    if env:
        return shutil.which(env)
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


@dataclass
class Visit:
    """What one page showed: its inspection (``INSPECT_JS``) and the problems seen loading it."""

    url: str
    seen: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


@dataclass
class Visits:
    """All pages of one browser session, the search results and every request not let through."""

    html: Path
    origin: str
    pages: dict[str, Visit]
    search: list[str]
    blocked: list[str]
    seconds: float

    def local_file(self, url: str) -> Path | None:
        """The file of the book a URL of the local server points at (``None``: not local)."""
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" != self.origin:
            return None
        path = unquote(parts.path).lstrip("/")
        return self.html / (path + "index.html" if not path or path.endswith("/") else path)

    def page_of(self, url: str) -> str | None:
        """The toc entry (``notebooks/data``) a URL points at, if any."""
        file = self.local_file(url)
        if file is None or file.suffix != ".html":
            return None
        return file.relative_to(self.html).with_suffix("").as_posix()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _serve(html: Path) -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             partial(_Quiet, directory=str(html)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _watch(page, visit_of) -> None:
    """Record console errors, page errors, failed requests and error responses of a page."""
    def note(text):
        visit_of().problems.append(text)

    page.on("console", lambda m: note(f"console {m.type}: {m.text}") if m.type == "error"
            else None)
    page.on("pageerror", lambda err: note(f"page error: {err}"))
    page.on("requestfailed", lambda r: note(f"request failed: {r.url} ({r.failure})"))
    page.on("response", lambda r: note(f"HTTP {r.status}: {r.url}") if r.status >= 400
            else None)


def _search(page, origin: str) -> list[str]:
    """Links of the results of the book's search page for ``SEARCH_WORD``."""
    page.goto(f"{origin}/search.html?q={SEARCH_WORD}", wait_until="load")
    try:
        page.wait_for_selector("#search-results ul.search li a", timeout=PAGE_TIMEOUT_MS)
    except Exception:  # noqa: BLE001 - no result is what the test reports
        return []
    return page.eval_on_selector_all("#search-results ul.search li a",
                                     "links => links.map((a) => a.href)")


def _browse(chromium: str, html: Path) -> Visits:
    from playwright.sync_api import sync_playwright

    start = time.perf_counter()
    server = _serve(html)
    origin = f"http://127.0.0.1:{server.server_address[1]}"
    blocked: list[str] = []
    pages: dict[str, Visit] = {}
    current = [Visit(url="")]

    def route(r):
        if r.request.url.startswith(origin + "/"):
            return r.continue_()
        blocked.append(r.request.url)
        return r.abort("blockedbyclient")

    args = ["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--no-proxy-server",
            "--disable-background-networking", "--disable-component-update"]
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=args)
            context = browser.new_context()
            context.route("**/*", route)
            page = context.new_page()
            _watch(page, lambda: current[0])
            for entry in ENTRIES:
                current[0] = pages[entry] = Visit(url=f"{origin}/{entry}.html")
                page.goto(current[0].url, wait_until="load", timeout=PAGE_TIMEOUT_MS)
                current[0].seen = page.evaluate(INSPECT_JS, PAGE_TIMEOUT_MS)
            current[0] = pages["search"] = Visit(url=f"{origin}/search.html")
            search = _search(page, origin)
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    return Visits(html=html, origin=origin, pages=pages, search=search, blocked=blocked,
                  seconds=time.perf_counter() - start)


@pytest.fixture(scope="module")
def visits(book) -> Visits:
    """Every page of the smoke book, opened once in headless Chromium without network."""
    chromium = find_chromium()
    if chromium is None:
        pytest.skip(f"no Chromium found (${CHROMIUM_ENV}, {', '.join(CHROMIUM_NAMES)}): "
                    "install Debian's chromium (`make test` does where apt-get works)")
    result = _browse(chromium, book.require_html())
    print(f"browser: {len(result.pages)} pages and the search in {result.seconds:.1f} s")
    return result


def test_nothing_requested_beyond_the_local_book(visits):
    assert visits.blocked == [], "requests to the network (aborted)"


@pytest.mark.parametrize("entry", ENTRIES)
def test_page_loads_without_errors(visits, entry):
    visit = visits.pages[entry]
    assert visit.problems == [], f"{visit.url}:\n" + "\n".join(visit.problems)


@pytest.mark.parametrize("entry", ENTRIES)
def test_every_image_loaded(visits, entry):
    images = visits.pages[entry].seen["images"]
    broken = [src for src, width in images if not width]
    assert not broken, f"{entry}: images not loaded: {broken}"


@pytest.mark.parametrize("entry", ENTRIES)
def test_mathematics_typeset(visits, entry):
    seen = visits.pages[entry].seen
    if seen["n_math"]:
        assert seen["mathjax"].startswith("3."), f"{entry}: MathJax {seen['mathjax']}"
    assert seen["n_typeset"] == seen["n_math"], f"{entry}: math elements left untypeset"
    assert seen["n_math_errors"] == 0, f"{entry}: MathJax reports TeX errors"
    for raw in ("\\(", "\\)", "\\[", "$$"):
        assert raw not in seen["text"], f"{entry}: raw TeX {raw!r} in the text"


@pytest.mark.parametrize("entry", ENTRIES)
def test_previous_and_next_follow_the_toc(visits, entry):
    seen, k = visits.pages[entry].seen, ENTRIES.index(entry)
    assert [visits.page_of(u) for u in seen["prev"]] == ENTRIES[max(k - 1, 0):k]
    assert [visits.page_of(u) for u in seen["next"]] == ENTRIES[k + 1:k + 2]


@pytest.mark.parametrize("entry", ENTRIES)
def test_sidebar_links_resolve(visits, entry):
    links = visits.pages[entry].seen["sidebar"]
    missing = [u for u in links if (f := visits.local_file(u)) is None or not f.is_file()]
    assert not missing, f"{entry}: sidebar links to no page of the book: {missing}"
    assert set(ENTRIES) <= {visits.page_of(u) for u in links}, "sidebar lacks toc pages"


def test_search_finds_a_word_of_the_book(visits):
    assert visits.pages["search"].problems == []
    pages = {visits.page_of(u) for u in visits.search}
    assert pages, f"the search page found nothing for {SEARCH_WORD!r}"
    assert pages <= set(ENTRIES), f"results outside the book: {pages - set(ENTRIES)}"
    with_word = {e for e in pages
                 if SEARCH_WORD in (visits.html / f"{e}.html").read_text(encoding="utf-8")}
    assert with_word, f"no result page contains {SEARCH_WORD!r}: {pages}"
