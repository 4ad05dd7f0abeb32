"""The admin API over HTTP on the local stack, as API Gateway serves it on AWS.

The launcher serves this on its own port (``$LIFEBOAT_API_PORT``, default 5078) under the
stage ``/v1``, like a deployed REST API (``https://<id>.execute-api.<region>.amazonaws.com/v1``):

- every request must be signed with SigV4 for the service ``execute-api`` (as the API's
  ``AWS_IAM`` authorization demands), by one of the local principals below; the signature
  is verified here against that principal's secret, and a request more than 5 minutes
  away from this clock is refused, as on AWS;
- the signer's access key decides the IAM identity the function sees
  (``requestContext.identity.userArn``), exactly where API Gateway puts it;
- the request, any method and body, becomes a REST proxy event that goes through the
  Lambda bridge to the real ``admin-api`` binary, and its answer comes back as HTTP.

The local principals are fixed credentials of the emulator, like moto's own ``testing``
keys: they open nothing but this local endpoint. ``functions.env``'s ``ADMIN_ROLES`` maps
their ARNs to Lifeboat roles.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl, quote

from werkzeug.wrappers import Request, Response

STAGE = "/v1"
ADMIN_API = "admin-api"
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
SERVICE = "execute-api"
MAX_SKEW = dt.timedelta(minutes=5)
MAX_BODY = 6 * 1024 * 1024


@dataclass(frozen=True)
class Principal:
    role: str
    access_key_id: str
    secret_access_key: str
    arn: str


PRINCIPALS = (
    Principal(
        "viewer",
        "LBLOCALVIEWER",
        "lifeboat-local-viewer",
        f"arn:aws:iam::{ACCOUNT_ID}:user/lifeboat-viewer",
    ),
    Principal(
        "operator",
        "LBLOCALOPERATOR",
        "lifeboat-local-operator",
        f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/LifeboatOperator/operator",
    ),
    Principal(
        "admin",
        "LBLOCALADMIN",
        "lifeboat-local-admin",
        f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/LifeboatAdmin/admin",
    ),
    Principal(
        "approver",
        "LBLOCALAPPROVER",
        "lifeboat-local-approver",
        f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/LifeboatApprover/approver",
    ),
)
BY_KEY = {p.access_key_id: p for p in PRINCIPALS}


class Reply(Protocol):
    status: int
    body: bytes


Forward = Callable[[str, bytes, str], Reply]

AUTH = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<signature>[0-9a-f]{64})$"
)


class Refused(Exception):
    """A request API Gateway would refuse before the function: 403 with its message."""


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    k = _hmac(f"AWS4{secret}".encode(), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


def canonical_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    encoded = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def canonical_request(
    method: str, raw_path: str, query: str, headers: dict[str, str], signed: list[str], body: bytes
) -> str:
    # Every AWS service but S3 encodes the (already encoded) path once more.
    uri = quote(raw_path or "/", safe="/~")
    lines = [f"{h}:{' '.join(headers.get(h, '').split())}\n" for h in signed]
    payload = headers.get("x-amz-content-sha256") or hashlib.sha256(body).hexdigest()
    return "\n".join(
        [method, uri, canonical_query(query), "".join(lines), ";".join(signed), payload]
    )


def verify(
    method: str,
    raw_path: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
    now: dt.datetime,
) -> Principal:
    """The local principal that signed this request; :class:`Refused` when none did."""
    auth = headers.get("authorization", "")
    m = AUTH.match(auth.strip())
    if not m:
        raise Refused("Missing Authentication Token")
    parts = m["credential"].split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise Refused("Credential should be scoped to a valid region and service")
    key_id, date, region, service, _ = parts
    if region != REGION or service != SERVICE:
        raise Refused(f"Credential should be scoped to correct service: '{SERVICE}' in {REGION}")
    principal = BY_KEY.get(key_id)
    if principal is None:
        raise Refused("The security token included in the request is invalid.")
    signed = m["signed"].split(";")
    if "host" not in signed or signed != sorted(signed):
        raise Refused("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
    amz_date = headers.get("x-amz-date", "")
    try:
        at = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise Refused("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.") from None
    if not amz_date.startswith(date):
        raise Refused("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP")
    if abs(now - at) > MAX_SKEW:
        raise Refused("Signature expired: the request is more than 5 minutes away from the server's time")
    creq = canonical_request(method, raw_path, query, headers, signed, body)
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()]
    )
    expected = hmac.new(
        signing_key(principal.secret_access_key, date, region, service),
        to_sign.encode(),
        hashlib.sha256,
    ).hexdigest()
    if not hmac.compare_digest(expected, m["signature"]):
        raise Refused(
            "The request signature we calculated does not match the signature you provided."
        )
    return principal


def rest_event(
    method: str,
    route: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
    principal: Principal,
    request_id: str,
) -> dict[str, Any]:
    """The REST proxy event API Gateway sends for this request (AWS_IAM authorization)."""
    pairs = parse_qsl(query, keep_blank_values=True)
    single = {k: v for k, v in pairs} or None
    multi: dict[str, list[str]] = {}
    for k, v in pairs:
        multi.setdefault(k, []).append(v)
    forwarded = {k: v for k, v in headers.items() if k not in ("authorization",)}
    try:
        text, encoded = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    return {
        "resource": route,
        "path": route,
        "httpMethod": method,
        "headers": forwarded,
        "multiValueHeaders": {k: [v] for k, v in forwarded.items()},
        "queryStringParameters": single,
        "multiValueQueryStringParameters": multi or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": "local",
            "resourcePath": route,
            "httpMethod": method,
            "stage": STAGE.strip("/"),
            "requestId": request_id,
            "identity": {
                "accountId": ACCOUNT_ID,
                "accessKey": principal.access_key_id,
                "userArn": principal.arn,
                "sourceIp": "127.0.0.1",
            },
        },
        "body": text if body else None,
        "isBase64Encoded": encoded,
    }


def gateway_error(status: int, message: str, request_id: str) -> Response:
    """An answer of API Gateway itself (not of the function): ``{"message": ...}``."""
    return Response(
        json.dumps({"message": message}),
        status=status,
        mimetype="application/json",
        headers={"x-amzn-RequestId": request_id, "x-amzn-ErrorType": "AccessDeniedException" if status == 403 else "BadGatewayException"},
    )


class ApiGateway:
    """WSGI app: the admin API's REST stage on the local stack."""

    def __init__(self, forward: Forward, clock: Callable[[], dt.datetime] | None = None) -> None:
        self._forward = forward
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))

    def __call__(self, environ: Any, start_response: Any) -> Any:
        return self.answer(Request(environ), environ)(environ, start_response)

    def answer(self, request: Request, environ: dict[str, Any]) -> Response:
        request_id = str(uuid.uuid4())
        raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or quote(request.path)
        raw_path = raw.split("?", 1)[0]
        if not (raw_path == STAGE or raw_path.startswith(STAGE + "/")):
            return gateway_error(403, "Missing Authentication Token", request_id)
        if (request.content_length or 0) > MAX_BODY:
            return gateway_error(413, "Request Too Long", request_id)
        body = request.get_data()
        headers = {k.lower(): v for k, v in request.headers.items()}
        query = request.query_string.decode("utf-8", "replace")
        try:
            principal = verify(request.method, raw_path, query, headers, body, self._clock())
        except Refused as err:
            return gateway_error(403, str(err), request_id)
        route = request.path[len(STAGE) :] or "/"
        event = rest_event(request.method, route, query, headers, body, principal, request_id)
        try:
            upstream = self._forward(ADMIN_API, json.dumps(event).encode(), "application/json")
        except OSError as err:
            return gateway_error(502, f"admin-api unreachable: {err}", request_id)
        try:
            reply = json.loads(upstream.body)
        except ValueError:
            return gateway_error(502, "Internal server error", request_id)
        if upstream.status != 200 or not isinstance(reply, dict) or "statusCode" not in reply:
            # A function error (errorType/errorMessage): API Gateway answers 502.
            return gateway_error(502, "Internal server error", request_id)
        out: dict[str, str] = {}
        for name, value in (reply.get("multiValueHeaders") or {}).items():
            if isinstance(value, list) and value:
                out[name] = ", ".join(str(v) for v in value)
        for name, value in (reply.get("headers") or {}).items():
            out[name] = str(value)
        out["x-amzn-RequestId"] = request_id
        data = reply.get("body") or ""
        payload = base64.b64decode(data) if reply.get("isBase64Encoded") else data.encode()
        return Response(payload, status=int(reply["statusCode"]), headers=out)
