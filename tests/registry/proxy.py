"""A tampering registry: a tiny HTTP proxy on 127.0.0.1 in front of a real registry that changes what it serves.

Modes: `flip` flips one byte in every blob body larger than 1 KiB (same length, other bytes); `bloat` serves
every manifest padded past 4 MiB; `shrink` advertises and serves one byte less of every such blob; `stall`
holds every download (GET of a manifest or blob) until the proxy closes, as a registry that stopped answering
mid-transfer does: uploads and pings still pass (the Slurm tier's cancel and time-limit tests).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests


def _handler(upstream: str, mode: str, closing: threading.Event) -> type[BaseHTTPRequestHandler]:
    class Tamper(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet: pytest shows failures, not traffic
            pass

        def _forward(self) -> None:
            if mode == "stall" and self.command == "GET" and ("/manifests/" in self.path or "/blobs/" in self.path):
                closing.wait(timeout=1800)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            got = requests.request(self.command, f"http://{upstream}{self.path}", data=body, headers=headers,
                                   allow_redirects=False, timeout=60)
            content = got.content
            if self.command == "GET" and "/blobs/sha256:" in self.path and len(content) > 1024:
                if mode == "flip":
                    content = content[:-1] + bytes([content[-1] ^ 0x01])
                elif mode == "shrink":
                    content = content[:-1]
            if self.command == "GET" and "/manifests/" in self.path and mode == "bloat" and got.status_code == 200:
                content = content.rstrip()[:-1] + b',"padding":"' + b"x" * (5 << 20) + b'"}'
            self.send_response(got.status_code)
            for key, value in got.headers.items():
                if key.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(content)

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = _forward

    return Tamper


@contextlib.contextmanager
def tampering(upstream: str, mode: str) -> Iterator[str]:
    closing = threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(upstream, mode, closing))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        closing.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
