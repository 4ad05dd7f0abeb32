#!/usr/bin/env python3
"""Lifeboat's local AWS endpoint: moto in server mode plus a Lambda Invoke bridge.

One threaded HTTP server on 127.0.0.1:$LIFEBOAT_MOTO_PORT serves moto's WSGI app
(exactly as ``moto_server`` / ``ThreadedMotoServer`` do), wrapped in
:class:`LambdaBridge`, a WSGI middleware that sends Lambda ``Invoke`` calls to
``cargo lambda watch`` instead of moto's own Lambda (which needs Docker):

    POST /2015-03-31/functions/{name | partial ARN | ARN}[:qualifier]/invocations
        -> POST http://127.0.0.1:$LIFEBOAT_LAMBDA_PORT/2015-03-31/functions/{name}/invocations

and translates cargo-lambda's replies into what the Lambda service returns, so
that SDK clients and moto's Step Functions engine (which reaches Lambda through
this same port, see ``MOTO_PORT``) behave as they do on AWS:

* function error (cargo-lambda: HTTP 500 + ``{"errorType", "errorMessage"}``)
  -> HTTP 200 + ``X-Amz-Function-Error: Unhandled``, same body. Clients do not
  retry it and Step Functions ``Retry``/``Catch`` match on ``errorType``;
* ``X-Amz-Invocation-Type: Event`` -> 202 at once, the call runs in the background;
* ``X-Amz-Invocation-Type: DryRun`` -> 204, nothing invoked;
* unknown function (cargo-lambda: 404) -> 404 ``ResourceNotFoundException``;
* the function's process exits before answering (a function that fails while
  starting: cargo-lambda 1.9.2 then keeps the invocation queued for ever) -> HTTP 200 +
  ``X-Amz-Function-Error: Unhandled`` + ``{"errorType": "Runtime.ExitError"}``, as
  Lambda answers when a runtime exits. The bridge notices it by looking for the
  function's processes (those cargo-lambda started with ``AWS_LAMBDA_FUNCTION_NAME``)
  while it waits; none for ``EXIT_GRACE_S`` means the runtime is gone.

``/_lifeboat/dashboard/`` serves the dashboard page and a read-only stand-in for
API Gateway in front of the admin API (see ``dashboard.py``). A second port
(``--api-port``, default the moto port + 1) serves the whole admin API as its REST stage
``/v1``, SigV4-verified for a small set of local principals (see ``api_gateway.py``).

Everything else goes to moto, with the strict RDS hooks of ``strict_rds.py``
installed (deletes, snapshots, restores and renames take time as on AWS). Step
Functions execution is switched on in-process before the port accepts any request.

Usually started by ``stack.py up``; run it alone with::

    .venv/bin/python infra/local/launcher.py --port 5077 --lambda-port 9077
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import re
import select
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from dashboard import Dashboard

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger("lifeboat.launcher")

DEFAULT_MOTO_PORT = 5077
DEFAULT_LAMBDA_PORT = 9077
DEFAULT_ACCOUNT_ID = "123456789012"  # moto's default account
# The longest a Lambda function may run; the first invoke of a function also
# waits for `cargo run` to build it.
DEFAULT_INVOKE_TIMEOUT_S = 900.0
# Launcher-specific probe used by stack.py: proves that *this* launcher (not some
# other server) owns the port and that Step Functions execution is on.
HEALTH_PATH = "/_lifeboat/health"
# While an invocation is pending, how often the bridge looks for the function's processes,
# and how long it must find none before it answers that the runtime exited.
LIVENESS_POLL_S = 1.0
EXIT_GRACE_S = 5.0

INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<function>[^/]+)/invocations/?$")
# What AWS accepts as FunctionName: name, name:qualifier, account:function:name[:qualifier],
# arn:partition:lambda:region:account:function:name[:qualifier].
FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,140}$")


class InvalidFunctionName(ValueError):
    """The FunctionName in an Invoke path is not a name, partial ARN or ARN."""


def bare_function_name(identifier: str) -> str:
    """Cut a Lambda FunctionName (name, partial ARN or ARN, any qualifier) to the bare name.

    >>> bare_function_name("arn:aws:lambda:us-east-1:123456789012:function:copy-snapshots:live")
    'copy-snapshots'
    >>> bare_function_name("123456789012:function:copy-snapshots")
    'copy-snapshots'
    >>> bare_function_name("copy-snapshots:$LATEST")
    'copy-snapshots'
    """
    parts = identifier.split(":")
    if parts[0] == "arn":
        # arn:partition:lambda:region:account:function:name[:qualifier]
        if len(parts) not in (7, 8) or parts[2] != "lambda" or parts[5] != "function":
            raise InvalidFunctionName(identifier)
        name = parts[6]
    elif len(parts) >= 3 and parts[1] == "function":
        # account:function:name[:qualifier]
        if len(parts) > 4:
            raise InvalidFunctionName(identifier)
        name = parts[2]
    elif len(parts) <= 2:
        # name[:qualifier]
        name = parts[0]
    else:
        raise InvalidFunctionName(identifier)
    if not FUNCTION_NAME.match(name):
        raise InvalidFunctionName(identifier)
    return name


class RuntimeExited(OSError):
    """No process of the function is left while its invocation waits for an answer."""


def function_processes(name: str, lambda_port: int) -> list[int]:
    """pids of the processes cargo-lambda (on `lambda_port`) started for function `name`:
    its `cargo run` while the function builds, then the function binary itself."""
    wanted_name = f"AWS_LAMBDA_FUNCTION_NAME={name}".encode()
    runtime_api = f"AWS_LAMBDA_RUNTIME_API=http://127.0.0.1:{lambda_port}/".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state in ("Z", "X"):
            continue
        if wanted_name in environ and any(v.startswith(runtime_api) for v in environ):
            found.append(int(entry.name))
    return found


@dataclass(frozen=True)
class Upstream:
    """A reply from cargo-lambda's invoke endpoint."""

    status: int
    body: bytes
    request_id: str | None


class LambdaBridge:
    """WSGI middleware: Lambda Invoke -> cargo-lambda, everything else -> moto."""

    def __init__(
        self,
        moto_app: WSGIApplication,
        *,
        lambda_host: str,
        lambda_port: int,
        region: str = "us-east-1",
        invoke_timeout_s: float = DEFAULT_INVOKE_TIMEOUT_S,
        event_workers: int = 16,
        alive: Callable[[str], bool] | None = None,
        exit_grace_s: float = EXIT_GRACE_S,
        liveness_poll_s: float = LIVENESS_POLL_S,
    ) -> None:
        self._moto_app = moto_app
        self._lambda_host = lambda_host
        self._lambda_port = lambda_port
        self._region = region
        self._invoke_timeout_s = invoke_timeout_s
        self._alive = alive or (lambda name: bool(function_processes(name, lambda_port)))
        self._exit_grace_s = exit_grace_s
        self._liveness_poll_s = liveness_poll_s
        # `Event` invocations run here after the client has had its 202.
        self._events = ThreadPoolExecutor(
            max_workers=event_workers, thread_name_prefix="lambda-event"
        )
        self._dashboard = Dashboard(self.forward)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        method: str = environ.get("REQUEST_METHOD", "")
        if method == "POST" and (match := INVOKE_PATH.match(path)):
            response = self._invoke(Request(environ), match["function"])
            return response(environ, start_response)
        if method == "GET" and path == HEALTH_PATH:
            return self._health()(environ, start_response)
        if Dashboard.handles(path):
            return self._dashboard(Request(environ))(environ, start_response)
        return self._moto_app(environ, start_response)

    # -- Invoke ---------------------------------------------------------------

    def _invoke(self, request: Request, identifier: str) -> Response:
        """Handle one Invoke call, answering the way the Lambda service does."""
        try:
            name = bare_function_name(identifier)
        except InvalidFunctionName:
            return aws_error(
                400,
                "InvalidParameterValueException",
                f"1 validation error detected: Value '{identifier}' at 'functionName' "
                "failed to satisfy constraint",
            )

        payload = request.get_data()
        content_type = request.headers.get("Content-Type", "application/json")
        invocation_type = request.headers.get("X-Amz-Invocation-Type", "RequestResponse")

        if invocation_type == "DryRun":
            return Response(status=204, headers={"x-amzn-RequestId": new_request_id()})
        if invocation_type == "Event":
            self._events.submit(self._invoke_in_background, name, payload, content_type)
            return Response(status=202, headers={"x-amzn-RequestId": new_request_id()})
        if invocation_type != "RequestResponse":
            return aws_error(
                400,
                "InvalidParameterValueException",
                f"Unsupported InvocationType: {invocation_type}",
            )

        try:
            upstream = self.forward(name, payload, content_type)
        except RuntimeExited:
            request_id = new_request_id()
            log.error("lambda %s: the function's process exited before answering", name)
            return Response(
                json.dumps(
                    {
                        "errorType": "Runtime.ExitError",
                        "errorMessage": f"RequestId: {request_id} Error: Runtime exited "
                        "before answering the invocation (the function failed while "
                        "starting: see .local/stack/cargo-lambda.log)",
                    }
                ),
                status=200,
                headers={
                    "Content-Type": "application/json",
                    "x-amzn-RequestId": request_id,
                    "X-Amz-Executed-Version": "$LATEST",
                    "X-Amz-Function-Error": "Unhandled",
                },
            )
        except OSError as err:
            log.error("lambda %s: cargo-lambda unreachable: %s", name, err)
            return aws_error(
                502,
                "ServiceException",
                f"Lambda bridge could not reach cargo-lambda on "
                f"{self._lambda_host}:{self._lambda_port}: {err}",
            )
        return self._translate(name, upstream)

    def _translate(self, name: str, upstream: Upstream) -> Response:
        """Map a cargo-lambda reply onto the Lambda service's Invoke reply."""
        request_id = upstream.request_id or new_request_id()
        headers = {
            "Content-Type": "application/json",
            "x-amzn-RequestId": request_id,
            "X-Amz-Executed-Version": "$LATEST",
        }
        if upstream.status == 200:
            return Response(upstream.body, status=200, headers=headers)
        if upstream.status == 500 and is_function_error(upstream.body):
            # The function returned an error (or panicked). Lambda reports that
            # as a *successful* Invoke call that carries the error document.
            headers["X-Amz-Function-Error"] = "Unhandled"
            return Response(upstream.body, status=200, headers=headers)
        if upstream.status == 404:
            arn = f"arn:aws:lambda:{self._region}:{DEFAULT_ACCOUNT_ID}:function:{name}"
            log.error(
                "lambda %s: not a function binary of the workspace: %s", name, upstream.body[:500]
            )
            return aws_error(404, "ResourceNotFoundException", f"Function not found: {arn}")
        log.error(
            "lambda %s: unexpected cargo-lambda reply %s: %s",
            name,
            upstream.status,
            upstream.body[:500],
        )
        return aws_error(
            502,
            "ServiceException",
            f"cargo-lambda answered HTTP {upstream.status}: "
            f"{upstream.body[:500].decode('utf-8', 'replace')}",
        )

    def forward(self, name: str, payload: bytes, content_type: str) -> Upstream:
        """POST the payload to cargo-lambda's invoke endpoint for `name`."""
        # One connection per call: simple, thread-safe, and cheap on loopback.
        conn = http.client.HTTPConnection(
            self._lambda_host, self._lambda_port, timeout=self._invoke_timeout_s
        )
        try:
            conn.request(
                "POST",
                f"/2015-03-31/functions/{name}/invocations",
                body=payload,
                headers={"Content-Type": content_type},
            )
            self._wait_for_reply(name, conn)
            reply = conn.getresponse()
            body = reply.read()
            return Upstream(
                status=reply.status,
                body=body,
                request_id=reply.getheader("lambda-runtime-aws-request-id"),
            )
        finally:
            conn.close()

    def _wait_for_reply(self, name: str, conn: http.client.HTTPConnection) -> None:
        """Block until cargo-lambda starts answering; raise `RuntimeExited` if the function
        has had no process for `exit_grace_s` meanwhile (it would never answer)."""
        deadline = time.monotonic() + self._invoke_timeout_s
        gone_since: float | None = None
        while conn.sock is not None:
            readable, _, _ = select.select([conn.sock], [], [], self._liveness_poll_s)
            if readable:
                return
            now = time.monotonic()
            if now >= deadline:
                raise TimeoutError(f"no answer from {name} in {self._invoke_timeout_s:.0f}s")
            if self._alive(name):
                gone_since = None
            elif gone_since is None:
                gone_since = now
            elif now - gone_since >= self._exit_grace_s:
                raise RuntimeExited(name)

    def _invoke_in_background(self, name: str, payload: bytes, content_type: str) -> None:
        """Run an `Event` invocation; nobody waits for it, so log the outcome."""
        started = time.monotonic()
        try:
            upstream = self.forward(name, payload, content_type)
        except RuntimeExited:
            log.error("lambda %s (Event): the function's process exited before answering", name)
            return
        except OSError as err:
            log.error("lambda %s (Event): cargo-lambda unreachable: %s", name, err)
            return
        elapsed_ms = (time.monotonic() - started) * 1000
        if upstream.status == 200:
            log.info("lambda %s (Event): succeeded in %.0f ms", name, elapsed_ms)
        else:
            log.error(
                "lambda %s (Event): HTTP %s in %.0f ms: %s",
                name,
                upstream.status,
                elapsed_ms,
                upstream.body[:500],
            )

    # -- Health ---------------------------------------------------------------

    def _health(self) -> Response:
        from moto.core.config import default_user_config

        body = {
            "service": "lifeboat-local-aws",
            "moto": version("moto"),
            "lambda_endpoint": f"http://{self._lambda_host}:{self._lambda_port}",
            "execute_state_machine": bool(
                default_user_config.get("stepfunctions", {}).get("execute_state_machine")
            ),
        }
        return Response(json.dumps(body), status=200, mimetype="application/json")


def is_function_error(body: bytes) -> bool:
    """True if `body` is the runtime's error document (`errorType` + `errorMessage`)."""
    try:
        doc: Any = json.loads(body)
    except ValueError:
        return False
    return isinstance(doc, dict) and "errorType" in doc


def aws_error(status: int, code: str, message: str) -> Response:
    """An error reply in the Lambda service's REST-JSON shape."""
    return Response(
        json.dumps({"Type": "User" if status < 500 else "Service", "message": message}),
        status=status,
        headers={
            "Content-Type": "application/json",
            "x-amzn-RequestId": new_request_id(),
            "x-amzn-ErrorType": code,
        },
    )


def new_request_id() -> str:
    return str(uuid.uuid4())


def enable_step_functions_execution() -> None:
    """Make moto run state machines, as `POST /moto-api/config` would.

    Done in-process before the socket is bound: moto keeps executing and
    non-executing state machines in separate backends, so a machine created
    before the switch would be invisible after it.
    """
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.set_config({"stepfunctions": {"execute_state_machine": True}})


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Serve moto with a Lambda Invoke bridge to cargo-lambda."
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("LIFEBOAT_MOTO_PORT", DEFAULT_MOTO_PORT)),
        help="port to bind (default: $LIFEBOAT_MOTO_PORT or %(default)s)",
    )
    parser.add_argument("--lambda-host", default="127.0.0.1", help="cargo-lambda's invoke address")
    parser.add_argument(
        "--lambda-port",
        type=int,
        default=int(os.environ.get("LIFEBOAT_LAMBDA_PORT", DEFAULT_LAMBDA_PORT)),
        help="cargo-lambda's invoke port (default: $LIFEBOAT_LAMBDA_PORT or %(default)s)",
    )
    parser.add_argument(
        "--api-port",
        type=int,
        default=None,
        help="port of the admin API's REST stage (default: the moto port + 1)",
    )
    parser.add_argument(
        "--region",
        default="us-east-1",
        help="region used in ARNs of error messages (default: %(default)s)",
    )
    parser.add_argument(
        "--invoke-timeout",
        type=float,
        default=DEFAULT_INVOKE_TIMEOUT_S,
        help="seconds to wait for a synchronous invocation (default: %(default)s)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )

    # moto's Step Functions engine calls Lambda (and every other `Task`) through
    # a boto3 client at http://localhost:$MOTO_PORT: make that this server, so
    # `lambda:invoke` tasks come back through the bridge.
    os.environ["MOTO_PORT"] = str(args.port)

    # Imported after MOTO_PORT is set (moto reads settings from the environment)
    # and only when serving: loading moto takes ~1 s.
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    import strict_rds

    import deployment
    from api_gateway import STAGE, ApiGateway

    timings = strict_rds.Timings.from_env()
    strict_rds.install(timings)
    enable_step_functions_execution()
    for line in deployment.provision():
        log.info("restore-test network: %s", line)
    moto_app = DomainDispatcherApplication(create_backend_app)
    app = LambdaBridge(
        moto_app,
        lambda_host=args.lambda_host,
        lambda_port=args.lambda_port,
        region=args.region,
        invoke_timeout_s=args.invoke_timeout,
    )
    # Same server moto_server builds: threaded (one thread per connection) and
    # moto's request handler (keeps underscores in S3 metadata header names).
    server = make_server(
        args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler
    )
    api_port = args.api_port or args.port + 1
    api_server = make_server(args.host, api_port, ApiGateway(app.forward), threaded=True)
    threading.Thread(target=api_server.serve_forever, name="admin-api", daemon=True).start()

    def stop(signum: int, _frame: object) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    log.info(
        "strict RDS: deletes take %ss, snapshots/copies/restores %ss, renames %ss",
        timings.delete_s,
        timings.available_s,
        timings.rename_s,
    )
    log.info(
        "moto %s on http://%s:%s, Lambda Invoke -> http://%s:%s, Step Functions execution on",
        version("moto"),
        args.host,
        args.port,
        args.lambda_host,
        args.lambda_port,
    )
    log.info("admin API (SigV4, local principals) on http://%s:%s%s", args.host, api_port, STAGE)
    try:
        server.serve_forever()
    finally:
        api_server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
