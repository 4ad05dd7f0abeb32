"""Unit tests of the Lambda bridge (launcher.py) against a stand-in for cargo-lambda.

Run: .venv/bin/python -m unittest discover -s infra/local -p 'test_*.py'
"""

from __future__ import annotations

import json
import socket
import threading
import time
import unittest

from werkzeug.test import Client
from werkzeug.wrappers import Response

from launcher import LambdaBridge


class SilentUpstream:
    """Accepts invocations and answers only when told to (cargo-lambda with a dead function
    never answers)."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.answer_after: float | None = None
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.recv(65536)
        if self.answer_after is None:
            return
        time.sleep(self.answer_after)
        body = b'{"ok": true}'
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )

    def close(self) -> None:
        self.server.close()
        for conn in self._conns:
            conn.close()


def moto_app(environ, start_response):  # type: ignore[no-untyped-def]
    return Response("moto")(environ, start_response)


class RuntimeExitTest(unittest.TestCase):
    def setUp(self) -> None:
        self.upstream = SilentUpstream()

    def tearDown(self) -> None:
        self.upstream.close()

    def bridge(self, alive: bool) -> Client:
        app = LambdaBridge(
            moto_app,
            lambda_host="127.0.0.1",
            lambda_port=self.upstream.port,
            invoke_timeout_s=30,
            alive=lambda _name: alive,
            exit_grace_s=0.3,
            liveness_poll_s=0.1,
        )
        return Client(app)

    def test_an_invocation_of_a_function_whose_process_is_gone_answers_an_exit_error(self) -> None:
        started = time.monotonic()
        reply = self.bridge(alive=False).post(
            "/2015-03-31/functions/backup-config/invocations", data=b"{}"
        )
        self.assertLess(time.monotonic() - started, 5, "answered, not hung")
        self.assertEqual(reply.status_code, 200)
        self.assertEqual(reply.headers.get("X-Amz-Function-Error"), "Unhandled")
        body = json.loads(reply.get_data())
        self.assertEqual(body["errorType"], "Runtime.ExitError")
        self.assertIn("Runtime exited", body["errorMessage"])

    def test_a_slow_function_that_is_alive_is_waited_for(self) -> None:
        self.upstream.answer_after = 1.0
        reply = self.bridge(alive=True).post(
            "/2015-03-31/functions/backup-config/invocations", data=b"{}"
        )
        self.assertEqual(reply.status_code, 200)
        self.assertIsNone(reply.headers.get("X-Amz-Function-Error"))
        self.assertEqual(json.loads(reply.get_data()), {"ok": True})


if __name__ == "__main__":
    unittest.main()
