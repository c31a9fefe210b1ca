"""An HTTP proxy stand-in: where a platform SDK's first network call lands when the gateway is told
to use a proxy (DISCORD_PROXY for discord.py, HTTPS_PROXY for slack-sdk). It records each request
— for HTTPS, the `CONNECT host:port` naming the service the SDK tried to reach — and refuses it
with 502, as a proxy that cannot reach the internet would: the SDK was created and tried to connect.
"""
from common import Handler, State


def make_handler(args: list[str]):
    return type("Proxy", (Proxy,), {"state": State()})


class Proxy(Handler):
    def refuse(self):
        if self.handle_double(b""):
            return
        self.state.record({"method": self.command, "target": self.path,
                           "user_agent": self.headers.get("User-Agent", "")})
        self.send_response(502, "stand-in has no internet")
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    do_CONNECT = do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = refuse
