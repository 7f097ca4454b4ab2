"""``disentune report view``: serve a run's report on 127.0.0.1, nothing outside the run folder.

Requests are resolved against the run's URI (local or s3://); a path that is absolute, holds a
``..`` segment (also when percent-encoded) or a backslash is refused with 404 before any file
is touched. Only GET and HEAD are served.
"""

from __future__ import annotations

import http.server
import mimetypes
import posixpath
import urllib.parse
from typing import Callable

from disentune.errors import UserError
from disentune.storage import join, read_bytes

HOST = "127.0.0.1"


def safe_relative(raw_path: str) -> str | None:
    """The request path as a path inside the run, or None if it could leave it."""
    path = urllib.parse.unquote(urllib.parse.urlsplit(raw_path).path)
    if "\\" in path or "\x00" in path:
        return None
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        return None
    rel = posixpath.join(*parts) if parts else "index.html"
    return rel


def make_handler(run_uri: str) -> Callable[..., http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "disentune"

        def _send(self, head_only: bool) -> None:
            rel = safe_relative(self.path)
            if rel is None:
                self.send_error(404, "not found")
                return
            try:
                body = read_bytes(join(run_uri, rel))
            except UserError:
                self.send_error(404, "not found")
                return
            self.send_response(200)
            self.send_header("Content-Type", mimetypes.guess_type(rel)[0] or "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            if not head_only:
                self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._send(head_only=False)

        def do_HEAD(self) -> None:  # noqa: N802
            self._send(head_only=True)

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

    return Handler


def make_server(run_uri: str, port: int = 0) -> http.server.ThreadingHTTPServer:
    """A server bound to 127.0.0.1 only (``port`` 0 picks a free one)."""
    try:
        return http.server.ThreadingHTTPServer((HOST, port), make_handler(run_uri))
    except OSError as err:
        raise UserError(f"cannot listen on {HOST}:{port} ({err.strerror})") from None
