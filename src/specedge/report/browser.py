"""Load an HTML file in headless Chromium and report what a reader would see go wrong.

A small pure-Python client of the Chrome DevTools protocol over ``--remote-debugging-pipe`` (file
descriptors 3 and 4, NUL-terminated JSON messages): no network port, no extra package. It opens the page, waits
for the load event, collects console errors, uncaught exceptions and failed resource loads, asks the page
which images did not decode, and takes a full-page screenshot.

    check = check_page(Path("report-out/report.html"), screenshot=Path("shot.png"))
    assert check.ok, check.problems()
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from specedge.errors import SpecedgeError

#: Where Debian's ``chromium`` package puts the browser; PATH is searched too.
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: Flags for a quiet, isolated headless run (no network chatter, no GPU, no sandbox: containers lack one).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)
#: Tallest full-page screenshot taken (Chromium refuses very tall captures).
MAX_SCREENSHOT_HEIGHT_PX = 16000
#: JavaScript run in the page after load: the images that did not decode.
_BROKEN_IMAGES_JS = (
    "JSON.stringify(Array.from(document.images)"
    ".filter(i => !i.complete || i.naturalWidth === 0)"
    ".map(i => (i.getAttribute('alt') || '') + ' <' + (i.getAttribute('src') || '').slice(0, 60) + '>'))"
)


class BrowserError(SpecedgeError):
    """Chromium could not be started or stopped answering."""


@dataclass(frozen=True)
class PageCheck:
    """What loading the page showed."""

    url: str
    title: str
    images: int
    broken_images: tuple[str, ...]
    console_errors: tuple[str, ...]
    exceptions: tuple[str, ...]
    failed_loads: tuple[str, ...]
    screenshot: Path | None = None
    page_height_px: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.broken_images or self.console_errors or self.exceptions or self.failed_loads)

    def problems(self) -> str:
        lines = [f"broken image: {b}" for b in self.broken_images]
        lines += [f"console error: {e}" for e in self.console_errors]
        lines += [f"uncaught exception: {e}" for e in self.exceptions]
        lines += [f"failed load: {e}" for e in self.failed_loads]
        return "\n".join(lines) or "none"


def find_chromium() -> str | None:
    """The path of a Chromium/Chrome executable, or None."""
    for candidate in CHROMIUM_CANDIDATES:
        path = candidate if os.path.isabs(candidate) else shutil.which(candidate)
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


class _Pipe:
    """The DevTools protocol over the two pipes, with a message id counter and an event backlog."""

    def __init__(self, proc: subprocess.Popen, write_fd: int, read_fd: int, timeout_s: float) -> None:
        self.proc = proc
        self.write_fd = write_fd
        self.read_fd = read_fd
        self.timeout_s = timeout_s
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def _read_message(self, deadline: float) -> dict[str, Any]:
        import select

        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("Chromium did not answer in time over the DevTools pipe")
            ready, _, _ = select.select([self.read_fd], [], [], min(left, 0.5))
            if not ready:
                if self.proc.poll() is not None:
                    raise BrowserError(f"Chromium exited early (status {self.proc.returncode})")
                continue
            data = os.read(self.read_fd, 1 << 20)
            if not data:
                raise BrowserError("Chromium closed the DevTools pipe")
            self.buffer += data
        raw, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict[str, Any]:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.write_fd, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout_s
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise BrowserError(f"DevTools {method} failed: {reply['error'].get('message')}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, timeout_s: float) -> dict[str, Any]:
        for ev in self.events:
            if ev.get("method") == method:
                return ev
        deadline = time.monotonic() + timeout_s
        while True:
            ev = self._read_message(deadline)
            self.events.append(ev)
            if ev.get("method") == method:
                return ev

    def drain(self, seconds: float) -> None:
        """Collect events for a short while (late console messages, image errors)."""
        deadline = time.monotonic() + seconds
        try:
            while True:
                self.events.append(self._read_message(deadline))
        except BrowserError:
            pass


def check_page(
    html: Path | str,
    *,
    screenshot: Path | None = None,
    chromium: str | None = None,
    width_px: int = 1280,
    height_px: int = 900,
    timeout_s: float = 60.0,
    full_page: bool = True,
) -> PageCheck:
    """Open ``html`` (a file, or an ``http://`` URL) in headless Chromium; return what went wrong (if anything) and save a screenshot (of the
    whole page when ``full_page``, up to :data:`MAX_SCREENSHOT_HEIGHT_PX`)."""
    exe = chromium or find_chromium()
    if exe is None:
        raise BrowserError("no Chromium found (install Debian's `chromium` package)")
    if isinstance(html, str) and html.startswith(("http://", "https://")):
        url = html  # a page served over HTTP (e.g. asv's, which reads its data with XMLHttpRequest)
    else:
        html = Path(html).resolve()
        if not html.is_file():
            raise BrowserError(f"{html}: no such file")
        url = html.as_uri()
    with tempfile.TemporaryDirectory(prefix="specedge-chromium-") as profile:
        # Our end writes to to_chrome_w (Chromium reads fd 3) and reads from from_chrome_r (Chromium writes fd 4).
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()

        def child_fds() -> None:  # runs in the child between fork and exec
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(a, 3)
            os.dup2(b, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        args = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width_px},{height_px}",
                "about:blank"]
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                preexec_fn=child_fds, close_fds=False)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        pipe = _Pipe(proc, to_chrome_w, from_chrome_r, timeout_s)
        try:
            return _drive(pipe, url, screenshot, width_px, height_px, timeout_s, full_page)
        finally:
            try:
                pipe.send("Browser.close")
            except (BrowserError, OSError):
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            os.close(to_chrome_w)
            os.close(from_chrome_r)


def _drive(pipe: _Pipe, url: str, screenshot: Path | None, width_px: int, height_px: int,
           timeout_s: float, full_page: bool) -> PageCheck:
    target = pipe.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        pipe.send(f"{domain}.enable", session=session)
    pipe.send("Emulation.setDeviceMetricsOverride",
              {"width": width_px, "height": height_px, "deviceScaleFactor": 1, "mobile": False}, session=session)
    pipe.events.clear()
    pipe.send("Page.navigate", {"url": url}, session=session)
    pipe.wait_event("Page.loadEventFired", timeout_s)
    pipe.drain(0.5)
    title = pipe.send("Runtime.evaluate", {"expression": "document.title", "returnByValue": True},
                      session=session)["result"].get("value", "")
    images = pipe.send("Runtime.evaluate", {"expression": "document.images.length", "returnByValue": True},
                       session=session)["result"].get("value", 0)
    broken = json.loads(pipe.send("Runtime.evaluate", {"expression": _BROKEN_IMAGES_JS, "returnByValue": True},
                                  session=session)["result"].get("value", "[]"))
    height = pipe.send("Runtime.evaluate",
                       {"expression": "document.documentElement.scrollHeight", "returnByValue": True},
                       session=session)["result"].get("value", 0)
    shot_path = None
    if screenshot is not None:
        if full_page and height:
            pipe.send("Emulation.setDeviceMetricsOverride",
                      {"width": width_px, "height": min(int(height), MAX_SCREENSHOT_HEIGHT_PX), "deviceScaleFactor": 1,
                       "mobile": False}, session=session)
        data = pipe.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": False},
                         session=session)["data"]
        shot_path = Path(screenshot)
        shot_path.parent.mkdir(parents=True, exist_ok=True)
        shot_path.write_bytes(base64.b64decode(data))

    console_errors, exceptions, failed = [], [], []
    for ev in pipe.events:
        method, params = ev.get("method"), ev.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = params.get("args", [])
            console_errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in args))
        elif method == "Runtime.exceptionThrown":
            det = params.get("exceptionDetails", {})
            exceptions.append(det.get("exception", {}).get("description") or det.get("text", "exception"))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            console_errors.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}".strip())
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            failed.append(f"{params.get('errorText')} ({params.get('type')})")
    return PageCheck(
        url=url,
        title=str(title),
        images=int(images),
        broken_images=tuple(broken),
        console_errors=tuple(console_errors),
        exceptions=tuple(exceptions),
        failed_loads=tuple(failed),
        screenshot=shot_path,
        page_height_px=int(height or 0),
    )
