"""Starts one stand-in inside a container, on its loopback, and talks to a running one.

Runs under the container's own /usr/bin/python3 (stdlib only), as hermes:
  serve.py start NAME [ARG...]   bind 127.0.0.1:0, detach the server, print its port, exit
  serve.py ctl PORT METHOD PATH [JSON]   one request to a stand-in's /_double/ API; prints the body

A stand-in module (model.py, telegram.py, proxy.py) defines `make_handler(args)` returning a
BaseHTTPRequestHandler class; the server is threaded, so a long poll does not block the others.
"""
import importlib
import json
import os
import sys
import urllib.request
from http.server import ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))


def start(name: str, args: list[str]) -> None:
    module = importlib.import_module(name)
    server = ThreadingHTTPServer(("127.0.0.1", 0), module.make_handler(args))
    server.daemon_threads = True
    port = server.server_address[1]
    if os.fork():
        # The port is printed only once the socket listens (it already does: bound and
        # listening before the fork), so the caller can use it at once.
        print(port, flush=True)
        os._exit(0)
    os.setsid()
    # The exec that started us waits for its stdout to close: the server keeps none of it.
    log = os.open(os.path.join(os.environ.get("DOUBLES_LOG_DIR", "/tmp"), f"double-{name}-{port}.log"),
                  os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    server.serve_forever()


def ctl(port: str, method: str, path: str, body: str | None) -> None:
    data = body.encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{int(port)}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        sys.stdout.write(response.read().decode())


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    if sys.argv[1] == "start":
        start(sys.argv[2], sys.argv[3:])
    elif sys.argv[1] == "ctl":
        ctl(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] if len(sys.argv) > 5 else None)
    else:
        sys.exit(f"usage: {sys.argv[0]} start NAME [ARG...] | ctl PORT METHOD PATH [JSON]")
