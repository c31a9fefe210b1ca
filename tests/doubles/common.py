"""What every stand-in shares: a handler that records each request it is sent and answers JSON,
and the /_double/ API the tests use (GET /_double/records, POST /_double/exit; stand-ins add
their own verbs)."""
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit


class State:
    """One stand-in's memory: its records and a condition its long polls wait on."""

    def __init__(self):
        self.lock = threading.Condition()
        self.records: list[dict] = []

    def record(self, entry: dict) -> None:
        with self.lock:
            entry["seq"] = len(self.records)
            entry["at"] = time.time()
            self.records.append(entry)
            self.lock.notify_all()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: State  # set by make_handler on a subclass

    def log_message(self, fmt, *args):  # stderr is the stand-in's log file
        super().log_message(fmt, *args)

    # -- helpers ---------------------------------------------------------------------------
    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_json(self, doc, status: int = 200) -> None:
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def query(self) -> dict:
        return {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}

    def route(self) -> str:
        return urlsplit(self.path).path

    def handle_double(self, body: bytes) -> bool:
        """The tests' own verbs; True when the request was one of them."""
        if not self.route().startswith("/_double/"):
            return False
        if self.route() == "/_double/records":
            since = int(self.query().get("since", 0))
            with self.state.lock:
                self.send_json(self.state.records[since:])
            return True
        if self.route() == "/_double/exit":  # a stand-in started outside a container ends here
            self.send_json({"exiting": True})
            self.wfile.flush()
            os._exit(0)
        verb = self.route()[len("/_double/"):]
        doc = json.loads(body or b"null")
        answer = self.control(verb, doc)
        if answer is None:
            self.send_json({"error": f"no verb {verb}"}, 404)
        else:
            self.send_json(answer)
        return True

    def control(self, verb: str, doc):
        return None
