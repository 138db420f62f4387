"""Open every page of the built book in a real browser and fail on anything a reader would see broken.

    python ci/browser_check.py [--html _build/html] [--screenshots _build/screenshots]

Serves the HTML on 127.0.0.1 and loads each page that `_toc.yml` lists in headless Chromium (Debian's
/usr/bin/chromium driven by PyPI's playwright; no browser download). A page fails when it is missing,
shows an error output (a traceback cell, a stderr stream with a Traceback, papermill's error marker),
shows papermill's injected-parameters cell, has an <img> that did not load, has a widget that did not
render, or logs console errors, uncaught exceptions or failed requests. Requests to other hosts are
refused and reported: the book must work offline. One full-page screenshot per page goes to
--screenshots. Exit status 1 with one line per problem.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

from book_toc import REPO_ROOT, toc_docnames

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Quiet and offline: no sandbox (root in containers), no GPU, no background calls home.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGE_TIMEOUT_MS = 60_000

# Runs in the page: waits for every image (lazy ones included), then lists what a reader sees broken.
FIND_BROKEN = r"""async () => {
  const images = [...document.querySelectorAll('img')];
  images.forEach((img) => { img.loading = 'eager'; });
  await Promise.all(images.filter((img) => !img.complete).map((img) => new Promise((done) => {
    img.addEventListener('load', done); img.addEventListener('error', done); setTimeout(done, 10000);
  })));
  const text = (el) => el.innerText.trim().split('\n').slice(-1)[0].slice(0, 160);
  const problems = [];
  for (const img of images) {
    if (img.naturalWidth === 0) problems.push(`image did not load: ${img.getAttribute('src').slice(0, 120)}`);
  }
  for (const el of document.querySelectorAll('.output.traceback, .output.error')) {
    problems.push(`error output: ${text(el)}`);
  }
  for (const el of document.querySelectorAll('.output.stderr')) {
    if (el.innerText.includes('Traceback')) problems.push(`stderr output with a traceback: ${text(el)}`);
  }
  // a pipe table that reached the page as a paragraph: "| a | b |" then "|---|---|" (or dashes typeset)
  const tableRule = /\|\s*:?[-\u2013\u2014]+:?\s*\|\s*:?[-\u2013\u2014]+/;
  for (const el of document.querySelectorAll('article p')) {
    if (tableRule.test(el.innerText)) problems.push(`a Markdown table shown as text: ${text(el)}`);
  }
  if (document.querySelector('#papermill-error-cell')) problems.push("papermill's error marker is shown");
  if (document.querySelector('.tag_injected-parameters')) problems.push('the injected parameters are shown');
  // the widget manager renders each view into a .widget-subarea just before the view's <script>
  for (const view of document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')) {
    const rendered = view.previousElementSibling;
    const subarea = rendered && rendered.classList.contains('widget-subarea');
    if (!subarea || !rendered.querySelector('.jupyter-widgets')) {
      problems.push('a widget did not render');
    } else if (rendered.innerText.includes('Error rendering')) {
      problems.push(`a widget failed to render: ${text(rendered)}`);
    }
  }
  return problems;
}"""


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002  (the base class's name)
        pass


def serve(folder: Path) -> tuple[ThreadingHTTPServer, str]:
    """Serve `folder` on a free local port in a background thread; return the server and its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def exercise_widgets(page) -> str:
    """Use the controls like a reader (slider keys, a toggle), so errors they raise get caught.

    Returns "" when the first slider's readout follows the keyboard and the first output widget (the view
    the slider selects, e.g. in a Stack) changes with it, else the problem.
    """
    handle = page.locator(".widget-slider .noUi-handle").first
    if handle.count() == 0:
        return ""
    readout = page.locator(".widget-slider .widget-readout").first
    before = readout.inner_text()
    view = page.locator(".widget-output").first  # re-evaluated: a Stack shows another child after the move
    view_before = view.inner_html() if view.count() else ""
    at_max = handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax")
    handle.focus()
    for _ in range(3):
        page.keyboard.press("ArrowLeft" if at_max else "ArrowRight")
    moved = readout.inner_text() != before
    if moved and view_before and view.inner_html() == view_before:
        return "the slider moves, but the view it selects does not change"
    toggle = page.locator(".widget-toggle-buttons button:not(.mod-active)").first
    if toggle.count():
        toggle.click()
    page.wait_for_timeout(500)
    return "" if moved else "the slider does not respond to the keyboard"


def check_page(context, url: str, screenshot: Path) -> list[str]:
    """Load one page; return what is broken on it and save its screenshot."""
    problems: list[str] = []

    def the_books(url: str) -> bool:
        return not url.endswith("/favicon.ico")  # Chromium asks every site for one on its own

    def on_console(message) -> None:
        if message.type == "error" and the_books(message.location.get("url", "")):
            problems.append(f"console error: {message.text[:200]}")

    def on_response(response) -> None:
        if response.status >= 400 and the_books(response.url):
            problems.append(f"HTTP {response.status}: {response.url[:160]}")

    page = context.new_page()
    page.on("console", on_console)
    page.on("response", on_response)
    page.on("pageerror", lambda error: problems.append(f"uncaught exception: {str(error)[:200]}"))
    page.on("requestfailed", lambda request: problems.append(f"request failed: {request.url[:160]}"))
    response = page.goto(url, wait_until="networkidle", timeout=PAGE_TIMEOUT_MS)
    if response is None or response.status != 200:
        problems.append(f"page did not load (HTTP {response.status if response else 'none'})")
        page.close()
        return problems
    problems += page.evaluate(FIND_BROKEN)
    page.screenshot(path=str(screenshot), full_page=True)
    problems.append(exercise_widgets(page))
    page.close()
    return [problem for problem in problems if problem]


def check_book(html: Path, screenshots: Path, root: Path = REPO_ROOT) -> dict[str, list[str]]:
    """Problems per page (docname, or "index" for the landing redirect); an empty dict means all good."""
    from playwright.sync_api import sync_playwright

    screenshots.mkdir(parents=True, exist_ok=True)
    problems: dict[str, list[str]] = {}
    pages = ["index", *toc_docnames(root)]
    for name in pages:
        if not (html / f"{name}.html").is_file():
            problems[name] = [f"page missing: {html / f'{name}.html'}"]

    server, base = serve(html)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            external: list[str] = []

            def refuse_other_hosts(route):
                if urlparse(route.request.url).hostname == "127.0.0.1":
                    route.continue_()
                else:
                    external.append(route.request.url)
                    route.abort("blockedbyclient")

            context.route("**/*", refuse_other_hosts)
            for name in pages:
                if name in problems:
                    continue
                external.clear()
                found = check_page(
                    context, f"{base}{name}.html", screenshots / f"{name.replace('/', '__')}.png"
                )
                # a refused request also shows as a failed one and a console error; report it once
                found = [
                    p
                    for p in found
                    if "ERR_BLOCKED_BY_CLIENT" not in p and not any(url[:160] in p for url in external)
                ]
                found += [f"loads from another host (the book must work offline): {url}" for url in external]
                if found:
                    problems[name] = found
                print(f"{'FAIL' if found else 'ok  '} {name}", flush=True)
            browser.close()
    finally:
        server.shutdown()
    return {name: problems[name] for name in pages if name in problems}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="book root holding _toc.yml")
    parser.add_argument("--html", type=Path, default=None, help="built HTML (default: ROOT/_build/html)")
    parser.add_argument("--screenshots", type=Path, default=None, help="default: ROOT/_build/screenshots")
    args = parser.parse_args(argv)
    html = args.html or args.root / "_build" / "html"
    screenshots = args.screenshots or args.root / "_build" / "screenshots"
    if not Path(CHROMIUM).is_file():
        print(
            f"no browser at {CHROMIUM}: apt-get install -y chromium, or set CHROMIUM=/path", file=sys.stderr
        )
        return 2

    problems = check_book(html, screenshots, args.root)
    if problems:
        print(f"\nbrowser check FAILED on {len(problems)} page(s):")
        for name, found in problems.items():
            for problem in dict.fromkeys(found):  # once each, in order
                print(f"  {name}: {problem}")
        return 1
    print(f"browser check passed: {len(toc_docnames(args.root)) + 1} pages, screenshots in {screenshots}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
