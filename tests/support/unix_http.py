"""An HTTP server on a unix socket, for the stand-ins of dockerd and serve that the CLI's quick
paths talk to (http.server's handlers expect a (host, port) client address: one is given)."""
import socketserver


class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        request, _ = super().get_request()
        return request, ("local", 0)
