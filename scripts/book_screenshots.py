"""Screenshots of the built book, as a reader's browser shows it, and a check of what it shows.

    python scripts/book_screenshots.py [--html _build/html] [--out _build/screenshots] [PAGES...]

PAGES are paths relative to the html folder (e.g. ``book/methods.html``). Without them: the intro
page, every page under ``results/``, and the first page under ``categories/`` (each looked for at the
top of the html folder and under ``book/``); when there is neither, the intro and the methods page.

Headless Chromium (Debian's ``chromium``; ``make screenshots`` installs it) is driven over its
DevTools protocol through a pipe (``--remote-debugging-pipe``), with the standard library only: no
WebDriver, no download of a driver or a browser, no network. The pages are served from a local
HTTP server on 127.0.0.1 (``--file-urls`` opens them as file:// instead, as when a reader opens
``index.html`` from disk). For each page, once it has loaded, its images have loaded or failed and
MathJax (when the page uses it) has typeset, it prints the title, images found and loaded, tables,
whether typeset math is present, and the browser's console errors (a failed resource load among
them), then saves a full-page PNG 1280 pixels wide to the output folder.

Exit status: 0 when every page was found and all its images loaded; 1 when a page is missing, an
image did not load or the browser failed (and with ``--strict``, when a page logged a console error);
2 when the html folder does not exist.
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import functools
import http.server
import json
import os
import select
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

WIDTH = 1280
VIEWPORT_HEIGHT = 800
MAX_HEIGHT = 16384  # px; a taller page is cut there (and said so)
PAGE_TIMEOUT = 60.0  # s for one page to load, its images and MathJax to finish


class BrowserError(RuntimeError):
    pass


# ----------------------------------------------------------------------------------------- pages


def _first_existing(html: Path, candidates: list[str]) -> str | None:
    for rel in candidates:
        if (html / rel).is_file():
            return rel
    return None


def default_pages(html: Path) -> list[str]:
    """intro + results/*.html + the first page of categories/, pollution/ and workflow/ (top level or under
    book/) + the pollution and workflow chapters' introductions + every page of the user guide; else intro +
    methods."""
    intro = _first_existing(html, ["intro.html", "book/intro.html"]) or "intro.html"
    extra: list[str] = []
    for prefix in ("", "book/"):
        results = html / f"{prefix}results"
        if results.is_dir():
            extra += sorted(p.relative_to(html).as_posix() for p in results.rglob("*.html"))
    for part in ("categories", "pollution", "workflow", "beyond", "autoaug"):  # the first generated page of each part
        for prefix in ("", "book/"):
            folder = html / f"{prefix}{part}"
            if folder.is_dir():
                pages = sorted(p.relative_to(html).as_posix() for p in folder.rglob("*.html"))
                if pages:
                    extra.append(pages[0])
                    break
    for chapter in ("book/methods.html", "book/pollution.html", "book/workflow.html", "book/beyond.html",
                    "book/autoaug.html"):
        if (html / chapter).is_file():
            extra.append(chapter)
    guide = html / "book" / "guide"  # the user guide: every page (hand-written, and generated from the code)
    if guide.is_dir():
        extra += sorted(p.relative_to(html).as_posix() for p in guide.glob("*.html"))
    if not extra:
        extra = [_first_existing(html, ["book/methods.html", "methods.html"]) or "book/methods.html"]
    return [intro, *extra]


def shot_name(rel: str) -> str:
    return rel[: -len(".html")].replace("/", "__") + ".png" if rel.endswith(".html") else rel.replace("/", "__") + ".png"


# ------------------------------------------------------------------------------ local web server


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


def start_server(html: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_QuietHandler, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


# ------------------------------------------------------------------------------------- browser


def find_chromium(explicit: str | None) -> str:
    if explicit:
        if shutil.which(explicit):
            return shutil.which(explicit)
        raise SystemExit(f"error: browser {explicit!r} not found")
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    raise SystemExit(
        "error: no Chromium on PATH; `make screenshots` installs it "
        "(apt-get install -y chromium chromium-driver)"
    )


class Browser:
    """Headless Chromium, spoken to over the DevTools protocol on fds 3 (to it) and 4 (from it)."""

    def __init__(self, executable: str, log_path: Path):
        self.profile = tempfile.mkdtemp(prefix="book-shots-profile-")
        args = [
            executable,
            "--headless=new",
            "--remote-debugging-pipe",
            f"--user-data-dir={self.profile}",
            f"--window-size={WIDTH},{VIEWPORT_HEIGHT}",
            "--hide-scrollbars",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-sync",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-default-apps",
            "--mute-audio",
            "--force-color-profile=srgb",
            "about:blank",
        ]
        if os.geteuid() == 0:  # Chromium refuses to run as root with its sandbox
            args.insert(1, "--no-sandbox")
        to_r, to_w = os.pipe()
        from_r, from_w = os.pipe()
        # Copies numbered >= 10, so that dup2 onto 3 and 4 cannot overwrite one another.
        child_in = fcntl.fcntl(to_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_out = fcntl.fcntl(from_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_r)
        os.close(from_w)
        self.log_path = log_path
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        null_fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        try:
            self.pid = os.posix_spawn(
                executable,
                args,
                os.environ,
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, null_fd, 0),
                    (os.POSIX_SPAWN_DUP2, log_fd, 1),
                    (os.POSIX_SPAWN_DUP2, log_fd, 2),
                    (os.POSIX_SPAWN_DUP2, child_in, 3),
                    (os.POSIX_SPAWN_DUP2, child_out, 4),
                ],
                setpgroup=0,  # its own process group, so that close() ends its helpers too
            )
        finally:
            for fd in (child_in, child_out, log_fd, null_fd):
                os.close(fd)
        self.wfd, self.rfd = to_w, from_r
        self.buf = b""
        self.next_id = 0
        self.pending: list[dict] = []  # events read while waiting for a reply
        self.on_event = None

    # -- protocol

    def _read_messages(self, timeout: float) -> list[dict]:
        ready, _, _ = select.select([self.rfd], [], [], max(timeout, 0))
        if not ready:
            return []
        chunk = os.read(self.rfd, 1 << 20)
        if not chunk:
            raise BrowserError(f"Chromium closed the DevTools pipe (exited?); its log: {self.log_tail()}")
        self.buf += chunk
        *messages, self.buf = self.buf.split(b"\0")
        return [json.loads(m) for m in messages if m]

    def _dispatch(self, msg: dict) -> None:
        if self.on_event is not None:
            self.on_event(msg)

    def call(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30.0) -> dict:
        self.next_id += 1
        msg_id = self.next_id
        msg = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self.wfd, data) :]
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"no answer from Chromium to {method} within {timeout:.0f} s")
            for reply in self._read_messages(left):
                if reply.get("id") == msg_id:
                    if "error" in reply:
                        raise BrowserError(f"{method}: {reply['error'].get('message')}")
                    return reply.get("result", {})
                if "method" in reply:
                    self._dispatch(reply)

    def pump(self, seconds: float) -> None:
        """Read (and dispatch) events for a while."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            for msg in self._read_messages(left):
                if "method" in msg:
                    self._dispatch(msg)

    def log_tail(self, n: int = 1500) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:].strip() or "(empty)"
        except OSError:
            return "(none)"

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except (BrowserError, OSError):
            pass
        for fd in (self.wfd, self.rfd):
            try:
                os.close(fd)
            except OSError:
                pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if os.waitpid(self.pid, os.WNOHANG) != (0, 0):
                break
            time.sleep(0.1)
        else:
            try:
                os.killpg(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        shutil.rmtree(self.profile, ignore_errors=True)


# ------------------------------------------------------------------------------- page checking

# Runs in the page once it is loaded: waits for images (lazy ones made eager), MathJax's first
# typesetting and web fonts, then two frames; resolves to "ok" or a note of what it gave up on.
WAIT_JS = r"""
(async (timeoutMs) => {
  const done = (async () => {
    for (const img of document.images) if (img.loading === 'lazy') img.loading = 'eager';
    await Promise.all(Array.from(document.images).map(img => img.complete ? null :
      new Promise(r => { img.addEventListener('load', r, {once: true});
                         img.addEventListener('error', r, {once: true}); })));
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
    if (document.fonts && document.fonts.ready) await document.fonts.ready;
    await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
    return 'ok';
  })();
  const late = new Promise(r => setTimeout(() => r('timed out'), timeoutMs));
  return await Promise.race([done, late]);
})
"""

INFO_JS = r"""
(() => {
  const imgs = Array.from(document.images);
  const failed = imgs.filter(i => !(i.complete && i.naturalWidth > 0))
                     .map(i => i.getAttribute('src') || i.currentSrc || '(no src)');
  const math = document.querySelectorAll('.math');
  const untypeset = Array.from(math).filter(m => !m.querySelector('mjx-container, .MathJax')).length;
  return {
    title: document.title,
    images: imgs.length,
    images_loaded: imgs.length - failed.length,
    images_failed: failed,
    tables: document.querySelectorAll('table').length,
    mathjax_present: !!document.querySelector('.MathJax, mjx-container'),
    mathjax_loaded: !!(window.MathJax && MathJax.version),
    math_elements: math.length,
    math_untypeset: untypeset,
    math_errors: document.querySelectorAll('mjx-merror').length,
    height: Math.ceil(Math.max(document.documentElement.scrollHeight, document.body ? document.body.scrollHeight : 0)),
  };
})()
"""


def _evaluate(browser: Browser, session: str, expression: str, timeout: float = 30.0):
    result = browser.call(
        "Runtime.evaluate",
        {"expression": expression, "returnByValue": True, "awaitPromise": True},
        session,
        timeout=timeout,
    )
    if "exceptionDetails" in result:
        details = result["exceptionDetails"]
        text = details.get("exception", {}).get("description") or details.get("text")
        raise BrowserError(f"script in page failed: {text}")
    return result["result"].get("value")


def _console_message(event: dict) -> str | None:
    method, p = event.get("method"), event.get("params", {})
    if method == "Log.entryAdded":
        entry = p.get("entry", {})
        if entry.get("level") == "error":
            url = entry.get("url")
            return entry.get("text", "") + (f" ({url})" if url and url not in entry.get("text", "") else "")
    elif method == "Runtime.exceptionThrown":
        d = p.get("exceptionDetails", {})
        text = d.get("exception", {}).get("description") or d.get("text", "exception")
        return f"uncaught: {text.splitlines()[0]}" + (f" ({d['url']}:{d.get('lineNumber', 0) + 1})" if d.get("url") else "")
    elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
        args = p.get("args", [])
        return "console.error: " + " ".join(str(a.get("value", a.get("description", ""))) for a in args)
    return None


def _is_favicon_request(event: dict, root_url: str) -> bool:
    """The browser's own request for <server root>/favicon.ico: not something the page asked for."""
    entry = event.get("params", {}).get("entry", {})
    return event.get("method") == "Log.entryAdded" and entry.get("url") == root_url + "favicon.ico"


def check_page(browser: Browser, session: str, base: str, rel: str, out_png: Path, events: list[dict]) -> dict:
    url = base + rel
    events.clear()
    browser.call("Emulation.setDeviceMetricsOverride",
                  {"width": WIDTH, "height": VIEWPORT_HEIGHT, "deviceScaleFactor": 1, "mobile": False}, session)
    nav = browser.call("Page.navigate", {"url": url}, session)
    if nav.get("errorText"):
        raise BrowserError(f"navigation to {url} failed: {nav['errorText']}")
    deadline = time.monotonic() + PAGE_TIMEOUT
    while not any(e.get("method") == "Page.loadEventFired" for e in events):
        if time.monotonic() > deadline:
            raise BrowserError(f"{url} did not finish loading within {PAGE_TIMEOUT:.0f} s")
        browser.pump(0.2)
    waited = _evaluate(browser, session, f"({WAIT_JS})({int(PAGE_TIMEOUT * 1000)})", timeout=PAGE_TIMEOUT + 10)

    # Full page: make the viewport as tall as the page (again if that changed the page's height).
    height = VIEWPORT_HEIGHT
    for _ in range(3):
        content = _evaluate(browser, session, INFO_JS)["height"]
        new_height = min(max(content, VIEWPORT_HEIGHT), MAX_HEIGHT)
        if new_height == height:
            break
        height = new_height
        browser.call("Emulation.setDeviceMetricsOverride",
                     {"width": WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": False}, session)
        browser.pump(0.3)
    info = _evaluate(browser, session, INFO_JS)  # after the resize: lazy content may have come in
    shot = browser.call(
        "Page.captureScreenshot",
        # the viewport already holds the whole page; captureBeyondViewport=True would shift the
        # theme's layout sideways in the picture (seen with Chromium 156 on the methods page)
        {"format": "png", "clip": {"x": 0, "y": 0, "width": WIDTH, "height": height, "scale": 1}},
        session,
        timeout=60,
    )
    out_png.write_bytes(base64.b64decode(shot["data"]))
    browser.pump(0.1)
    info["wait"] = waited
    info["shot_height"] = height
    info["cut"] = info["height"] > MAX_HEIGHT
    messages = (_console_message(e) for e in events if not _is_favicon_request(e, base))
    info["console_errors"] = list(dict.fromkeys(m for m in messages if m))
    return info


# ----------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", default="_build/html", help="the built book (default: _build/html)")
    parser.add_argument("--out", default="_build/screenshots", help="where the PNGs go (default: _build/screenshots)")
    parser.add_argument("--file-urls", action="store_true", help="open pages as file:// rather than from a local HTTP server")
    parser.add_argument("--strict", action="store_true", help="also fail when a page logs a console error")
    parser.add_argument("--chromium", help="browser executable (default: chromium on PATH)")
    parser.add_argument("pages", nargs="*", metavar="PAGES", help="pages relative to the html folder")
    args = parser.parse_args(argv)

    html = Path(args.html).resolve()
    if not html.is_dir() or not any(html.glob("*.html")):
        print(f"error: no built book in {html}: build it first with `make run` / `jupyter-book build .`",
              file=sys.stderr)
        return 2
    pages = args.pages or default_pages(html)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    problems: list[str] = []
    present = []
    for rel in pages:
        rel = rel.lstrip("/")
        if (html / rel).is_file():
            present.append(rel)
        else:
            problems.append(f"{rel}: page missing (no {html / rel})")
            print(f"== {rel}\n   MISSING: no such file in {html}")
    if not present:
        sys.stdout.flush()
        print("\nFAILED:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1

    executable = find_chromium(args.chromium)
    server = None
    if args.file_urls:
        base = html.as_uri() + "/"
    else:
        server, base = start_server(html)
    print(f"browser: {executable}; pages from {base}; screenshots to {out.resolve()}")

    browser = Browser(executable, out / "chromium.log")
    events: list[dict] = []
    browser.on_event = events.append
    try:
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            browser.call(f"{domain}.enable", session=session)
        for rel in present:
            png = out / shot_name(rel)
            print(f"== {rel}")
            try:
                info = check_page(browser, session, base, rel, png, events)
            except BrowserError as exc:
                problems.append(f"{rel}: {exc}")
                print(f"   BROWSER ERROR: {exc}")
                continue
            math = "yes" if info["mathjax_present"] else "no"
            if info["math_elements"]:
                math += f" ({info['math_elements']} formulas, {info['math_untypeset']} not typeset, {info['math_errors']} TeX errors)"
            elif info["mathjax_loaded"]:
                math += " (MathJax loaded, no formulas)"
            print(f"   title:   {info['title']!r}")
            print(f"   images:  {info['images_loaded']}/{info['images']} loaded")
            for src in info["images_failed"]:
                print(f"            NOT LOADED: {src}")
            print(f"   tables:  {info['tables']}")
            print(f"   MathJax: {math}")
            if info["wait"] != "ok":
                print(f"   waiting for images/MathJax/fonts {info['wait']} after {PAGE_TIMEOUT:.0f} s")
            print(f"   console errors: {len(info['console_errors'])}")
            for msg in info["console_errors"]:
                print(f"            {msg}")
            cut = f" (page is {info['height']} px: cut at {MAX_HEIGHT})" if info["cut"] else ""
            print(f"   screenshot: {png} ({WIDTH}x{info['shot_height']}){cut}")
            if info["images_failed"]:
                problems.append(f"{rel}: {len(info['images_failed'])} of {info['images']} images did not load")
            if info["math_untypeset"] or info["math_errors"]:
                problems.append(f"{rel}: {info['math_untypeset']} formulas not typeset, {info['math_errors']} TeX errors")
            if args.strict and info["console_errors"]:
                problems.append(f"{rel}: {len(info['console_errors'])} console errors")
            if info["wait"] != "ok":
                problems.append(f"{rel}: images/MathJax/fonts not ready after {PAGE_TIMEOUT:.0f} s")
    except BrowserError as exc:
        problems.append(f"browser: {exc}")
        print(f"BROWSER ERROR: {exc}", file=sys.stderr)
    finally:
        browser.close()
        if server is not None:
            server.shutdown()

    if problems:
        sys.stdout.flush()
        print("\nFAILED:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    print(f"\nOK: {len(present)} pages, screenshots in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
