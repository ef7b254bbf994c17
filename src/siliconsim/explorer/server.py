"""The explorer's HTTP server: loopback only, its own assets only, small JSON requests only.

Routes: ``GET /`` (the page), ``GET /assets/<name>`` (files in ``explorer/assets``, by exact
name from a fixed list), ``GET /api/options``, ``POST /api/estimate`` (a JSON query, see
``service.answer``). Anything else is 404; a path with ``..``, a backslash or a NUL is 400.
Requests must name this server in ``Host`` (defeats DNS rebinding) and POSTs must be
``application/json`` (a cross-site form cannot send that without a CORS preflight, which is
never granted). Bodies over MAX_BODY_BYTES are refused with 413. Errors reach the page as
``{"error": "one line"}``; no traceback is ever sent.
"""

from __future__ import annotations

import json
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from siliconsim.errors import SiliconsimError
from siliconsim.explorer import service

HOST = "127.0.0.1"
MAX_BODY_BYTES = 1 << 20  # 1 MiB: a config.json or a chip TOML is a few kB
ASSETS_DIR = Path(str(resources.files("siliconsim.explorer") / "assets"))
ASSETS = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
          "style.css": "text/css; charset=utf-8"}


class Handler(BaseHTTPRequestHandler):
    server_version = "siliconsim-explorer"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # quiet unless asked
        if getattr(self.server, "verbose", False):
            sys.stderr.write(f"explore: {format % args}\n")

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def _path(self) -> str | None:
        """The decoded request path, or None (after answering 400/421) when it is refused."""
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]")
        if host not in ("127.0.0.1", "localhost"):
            self._error(HTTPStatus.MISDIRECTED_REQUEST, f"this server answers only 127.0.0.1, not {host!r}")
            return None
        path = unquote(urlsplit(self.path).path)
        if ".." in path.split("/") or "\\" in path or "\x00" in path or not path.startswith("/"):
            self._error(HTTPStatus.BAD_REQUEST, "bad path")
            return None
        return path

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self._path()
        if path is None:
            return
        if path == "/api/options":
            self._json(HTTPStatus.OK, service.options())
            return
        name = "index.html" if path == "/" else path.removeprefix("/assets/") if path.startswith("/assets/") else ""
        if name not in ASSETS:
            self._error(HTTPStatus.NOT_FOUND, "not found")
            return
        self._send(HTTPStatus.OK, (ASSETS_DIR / name).read_bytes(), ASSETS[name])

    def do_POST(self) -> None:  # noqa: N802
        path = self._path()
        if path is None:
            return
        if path != "/api/estimate":
            self._error(HTTPStatus.NOT_FOUND, "not found")
            return
        query = self._body()
        if query is None:
            return
        try:
            self._json(HTTPStatus.OK, service.answer(query))
        except SiliconsimError as exc:
            self._error(HTTPStatus.BAD_REQUEST, str(exc))
        except Exception as exc:  # never a traceback on the page
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error ({type(exc).__name__}); please report it")

    def _body(self) -> Any:
        if (self.headers.get("Content-Type") or "").split(";")[0].strip() != "application/json":
            self._error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send the query as application/json")
            return None
        try:
            length = int(self.headers.get("Content-Length") or "")
        except ValueError:
            self._error(HTTPStatus.LENGTH_REQUIRED, "Content-Length required")
            return None
        if length < 0 or length > MAX_BODY_BYTES:
            self.close_connection = True
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"request over {MAX_BODY_BYTES // 1024} KiB")
            return None
        try:
            return json.loads(self.rfile.read(length) or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            self._error(HTTPStatus.BAD_REQUEST, f"the request is not valid JSON: {exc}")
            return None


def make_server(port: int, *, verbose: bool = False) -> ThreadingHTTPServer:
    """A server bound to 127.0.0.1 only (port 0: any free port)."""
    server = ThreadingHTTPServer((HOST, port), Handler)
    server.daemon_threads = True
    server.verbose = verbose  # type: ignore[attr-defined]
    return server


def _announce(line: str) -> None:
    print(line, flush=True)


def serve(port: int, *, verbose: bool = False, announce: Any = _announce) -> None:
    """Serve until Ctrl-C, then close the socket and return."""
    server = make_server(port, verbose=verbose)
    try:  # announce inside: a Ctrl-C right after the line is printed still stops cleanly
        announce(f"siliconsim explorer on http://{HOST}:{server.server_address[1]}/ (Ctrl-C stops it)")
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        announce("explorer stopped")
    finally:
        server.server_close()
