"""The dashboard on the local stack: the static page and a read-only admin API gateway.

Served by the launcher under ``/_lifeboat/dashboard/`` (an underscore is never in an S3
bucket name, so the prefix cannot shadow a path-style S3 request):

- ``GET /_lifeboat/dashboard/`` and ``/_lifeboat/dashboard/<file>``: the files of
  ``infra/dashboard/`` (only those, by name; nothing else on disk is reachable);
- ``GET /_lifeboat/dashboard/v1/<route>?<query>``: what API Gateway does on AWS. The request
  becomes a REST proxy event carrying the dashboard's IAM identity, goes through the Lambda
  bridge to the real ``admin-api`` binary, and its reply comes back as HTTP. Only GET is
  forwarded: the local dashboard reads, it never changes anything.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from werkzeug.wrappers import Request, Response

import api_gateway

PREFIX = "/_lifeboat/dashboard"
API_PREFIX = PREFIX + "/v1"
STATIC_DIR = Path(__file__).resolve().parents[1] / "dashboard"
ADMIN_API = "admin-api"
ACCOUNT_ID = "123456789012"
# The identity the local dashboard reads as: the local admin role (functions.env maps
# LifeboatAdmin/* to admin), so the audit panel has data; the gateway forwards GETs only.
PRINCIPAL = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/LifeboatAdmin/dashboard"
# It signs nothing: the launcher calls it in-process, so it has no keys.
DASHBOARD = api_gateway.Principal("dashboard", "", "", PRINCIPAL)


class Reply(Protocol):
    status: int
    body: bytes


Forward = Callable[[str, bytes, str], Reply]


def rest_event(method: str, route: str, query: str, request_id: str) -> dict[str, Any]:
    """The API Gateway REST proxy event for ``method route?query``, as AWS_IAM sends it,
    carrying the dashboard's identity (the gateway's own event builder)."""
    return api_gateway.rest_event(
        method, route, query, {"accept": "application/json"}, b"", DASHBOARD, request_id
    )


def problem(status: int, title: str, detail: str) -> Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return Response(json.dumps(body), status=status, mimetype="application/problem+json")


class Dashboard:
    """WSGI handling of the ``/_lifeboat/dashboard`` paths."""

    def __init__(self, forward: Forward, static_dir: Path = STATIC_DIR) -> None:
        self._forward = forward
        self._static_dir = static_dir

    @staticmethod
    def handles(path: str) -> bool:
        return path == PREFIX or path.startswith(PREFIX + "/")

    def __call__(self, request: Request) -> Response:
        path = request.path
        if path == PREFIX:
            return Response(status=308, headers={"Location": PREFIX + "/"})
        if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
            return self._api(request, path[len(API_PREFIX) :] or "/")
        if request.method not in ("GET", "HEAD"):
            return problem(405, "Method not allowed", "the dashboard's files are read with GET")
        return self._static(path[len(PREFIX) + 1 :] or "index.html")

    def _static(self, name: str) -> Response:
        # Only the files directly in the dashboard directory, by exact name.
        files = {p.name: p for p in self._static_dir.iterdir() if p.is_file()}
        file = files.get(name)
        if file is None:
            return problem(404, "Not found", f"no dashboard file {name[:80]!r}")
        mimetype = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        return Response(
            file.read_bytes(), mimetype=mimetype, headers={"Cache-Control": "no-store"}
        )

    def _api(self, request: Request, route: str) -> Response:
        if request.method != "GET":
            return problem(
                405,
                "Method not allowed",
                "the local dashboard reads only; call the admin API for changes",
            )
        request_id = str(uuid.uuid4())
        query = request.query_string.decode("utf-8", "replace")
        event = rest_event("GET", route, query, request_id)
        try:
            upstream = self._forward(ADMIN_API, json.dumps(event).encode(), "application/json")
        except OSError as err:
            return problem(502, "Bad gateway", f"admin-api unreachable: {err}")
        try:
            reply = json.loads(upstream.body)
        except ValueError:
            return problem(502, "Bad gateway", "admin-api answered something that is not JSON")
        if upstream.status != 200 or not isinstance(reply, dict) or "statusCode" not in reply:
            # A function error (errorType/errorMessage): API Gateway answers 502.
            return problem(502, "Bad gateway", "admin-api failed; see its log")
        headers: dict[str, str] = {}
        for name, value in (reply.get("multiValueHeaders") or {}).items():
            if isinstance(value, list) and value:
                headers[name] = ", ".join(str(v) for v in value)
        for name, value in (reply.get("headers") or {}).items():
            headers[name] = str(value)
        headers["x-amzn-RequestId"] = request_id
        body = reply.get("body") or ""
        if reply.get("isBase64Encoded"):
            data = base64.b64decode(body)
        else:
            data = body.encode()
        return Response(data, status=int(reply["statusCode"]), headers=headers)
