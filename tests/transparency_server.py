"""A local stand-in for the EU DSA Transparency Database's bulk endpoint, for submission tests.

It applies :mod:`tests.transparency_rules` (the API's own rules, from its source) and answers
as ``StatementMultipleAPIController`` does: ``401`` without the right bearer token, ``422``
with per-statement errors, ``422`` with ``existing_puids`` for a ``puid`` already stored or
repeated in the call (nothing stored then), ``201`` with the stored statements and their
``uuid``. ``faults`` scripts failures by call number (1-based): ``"500"``, ``"429:<seconds>"``
(with ``Retry-After``), ``"drop-after-store"`` (stores the batch, then closes the connection
without an answer).
"""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests import transparency_rules as rules

PATH = "/api/v1/statements"


@dataclass
class Call:
    status: int | None
    statements: int
    authorised: bool


@dataclass
class Database:
    token: str
    faults: dict[int, str] = field(default_factory=dict)
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, authorization: str, body: Any) -> tuple[int, dict[str, Any]]:
        """The status and JSON the endpoint answers, storing the statements when it takes them."""
        if authorization != f"Bearer {self.token}":
            return 401, {"message": "Unauthenticated."}
        problems = rules.call_errors(body)
        if problems:
            return 422, problems
        puids = [statement["puid"] for statement in body["statements"]]
        repeated = sorted({puid for puid in puids if puids.count(puid) > 1 or puid in self.stored})
        if repeated:
            message = "The platform identifier(s) are not all unique within this call."
            return 422, {
                "message": message,
                "errors": {"puid": [message], "existing_puids": repeated},
            }
        created = [self._store(statement) for statement in body["statements"]]
        return 201, {"statements": created}

    def _store(self, statement: dict[str, Any]) -> dict[str, Any]:
        created = {
            **statement,
            "uuid": str(uuid.uuid4()),
            "created_at": "2025-07-01 12:00:00",
            "platform_name": "Test platform",
        }
        self.stored[statement["puid"]] = created
        return created


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        database = self.server.database
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        with database.lock:
            number = len(database.calls) + 1
            fault = database.faults.get(number, "")
            authorised = self.headers.get("Authorization") == f"Bearer {database.token}"
            try:
                body = json.loads(raw)
            except ValueError:
                body = {}
            count = len(body.get("statements") or []) if isinstance(body, dict) else 0
            call = Call(None, count, authorised)
            database.calls.append(call)
            if self.path != PATH:
                status, answer = 404, {"message": "Not Found"}
            elif fault == "500":
                status, answer = 500, {"message": "Server Error"}
            elif fault.startswith("429:"):
                status, answer = 429, {"message": "Too Many Attempts."}
            else:
                status, answer = database.answer(self.headers.get("Authorization", ""), body)
            if fault == "drop-after-store":
                # Stored, and the answer lost: the client must not file these twice.
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            call.status = status
        self._reply(
            status,
            answer,
            retry_after=fault.removeprefix("429:") if fault.startswith("429:") else "",
        )

    def _reply(self, status: int, answer: dict[str, Any], retry_after: str) -> None:
        content = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(content)))
        if retry_after:
            self.send_header("Retry-After", retry_after)
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    database: Database


@contextmanager
def running(database: Database) -> Iterator[Database]:
    """``database`` served on 127.0.0.1 (a free port) in a thread; ``database.url`` set."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.database = database
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    database.url = f"http://127.0.0.1:{server.server_address[1]}/api/v1"
    try:
        yield database
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
