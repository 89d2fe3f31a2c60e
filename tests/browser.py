"""A real headless Chromium (Debian's `chromium`) driven over the DevTools protocol, for tests of rendered pages.

Installed with apt when missing (as root), started with its own profile and `--remote-debugging-port=0` (the port
it picked is read from the profile's DevToolsActivePort file), stopped by its pid. `Page.load` opens a file and
records what a person would miss: console messages, uncaught exceptions, log entries and every network request.
The flags are those that keep Chromium from calling home on a machine without a network.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.services import ensure_packages

FLAGS = ("--headless", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--hide-scrollbars", "--remote-debugging-port=0")


def ensure_chromium() -> str | None:
    """None when `chromium` is there (installed now if needed), else why it cannot be."""
    return ensure_packages("browser tier", {"chromium": "chromium"})


@dataclass
class Loaded:
    """What happened while a page loaded."""

    console: list[dict[str, Any]] = field(default_factory=list)  # Runtime.consoleAPICalled: type, text
    exceptions: list[str] = field(default_factory=list)  # Runtime.exceptionThrown
    log: list[dict[str, Any]] = field(default_factory=list)  # Log.entryAdded: level, source, text
    requests: list[str] = field(default_factory=list)  # Network.requestWillBeSent: every URL asked for

    def errors(self) -> list[str]:
        return ([f"console.{c['type']}: {c['text']}" for c in self.console if c["type"] in ("error", "assert")]
                + [f"exception: {e}" for e in self.exceptions]
                + [f"log {e['level']} ({e['source']}): {e['text']}" for e in self.log if e["level"] == "error"])


class Page:
    """One tab, spoken to over its DevTools websocket."""

    def __init__(self, url: str) -> None:
        import websocket

        # Chromium refuses websocket clients that send an Origin it was not told to allow.
        self.ws = websocket.create_connection(url, timeout=60, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.ws.settimeout(120)  # a full-page screenshot of a long page takes a while on a busy machine
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))
            self.events.append(message)

    def _drain(self, until: str | None, seconds: float) -> None:
        """Collect events for `seconds`, or until the event `until` arrived."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.ws.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                message = json.loads(self.ws.recv())
            except Exception:  # websocket-client's timeout: nothing more arrived
                return
            self.events.append(message)
            if until and message.get("method") == until:
                return

    def load(self, path: Path, width: int = 1280) -> Loaded:
        for domain in ("Runtime", "Log", "Network", "Page"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1, mobile=False)
        self.call("Page.navigate", url=path.resolve().as_uri())
        self._drain("Page.loadEventFired", 60)
        self._drain(None, 1.0)  # what a page does right after load (a late script error) counts too
        seen = Loaded()
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled":
                text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
                seen.console.append({"type": params.get("type"), "text": text})
            elif method == "Runtime.exceptionThrown":
                seen.exceptions.append(str(params.get("exceptionDetails", {}).get("text")))
            elif method == "Log.entryAdded":
                seen.log.append(dict(params.get("entry", {})))
            elif method == "Network.requestWillBeSent":
                seen.requests.append(str(params.get("request", {}).get("url")))
        return seen

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path) -> Path:
        """The whole page (not only the viewport) as PNG."""
        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                         clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
        path.write_bytes(base64.b64decode(data["data"]))
        return path


@contextlib.contextmanager
def chromium(profile: Path) -> Iterator[Page]:
    """A headless Chromium with an empty profile and one blank tab; stopped (by its pid) afterwards."""
    argv = ["chromium", *FLAGS, f"--user-data-dir={profile}", "about:blank"]
    if os.geteuid() == 0:
        argv.insert(1, "--no-sandbox")  # Chromium's own sandbox refuses to run as root
    profile.mkdir(parents=True, exist_ok=True)
    log = profile.parent / f"{profile.name}.log"  # a file, not a pipe: nobody reads Chromium's chatter while it runs
    with open(log, "wb") as stderr:
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
    page: Page | None = None
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not port_file.is_file() or not port_file.read_text().strip():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chromium did not start:\n{log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        targets = requests.get(f"http://127.0.0.1:{port}/json/list", timeout=30).json()
        page = Page(next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page"))
        yield page
    finally:
        if page is not None:
            page.ws.close()
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
