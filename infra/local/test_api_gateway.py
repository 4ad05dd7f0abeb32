"""Unit tests of the local admin API gateway (api_gateway.py): requests signed by botocore's
own SigV4 signer, as the AWS CLI and awscurl sign them, against a stand-in for the function.

Run: .venv/bin/python -m unittest discover -s infra/local -p 'test_*.py'
"""

from __future__ import annotations

import datetime as dt
import json
import unittest
from dataclasses import dataclass
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from werkzeug.test import Client

import api_gateway
from api_gateway import BY_KEY, PRINCIPALS, ApiGateway

HOST = "127.0.0.1:5078"


@dataclass
class Reply:
    status: int
    body: bytes


class Function:
    """Stands in for admin-api: echoes what it received as a 200 proxy response."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.fail = False

    def __call__(self, name: str, payload: bytes, _content_type: str) -> Reply:
        event = json.loads(payload)
        self.events.append(event)
        if self.fail:
            return Reply(200, json.dumps({"errorType": "Internal", "errorMessage": "x"}).encode())
        body = json.dumps({"function": name, "path": event["path"], "body": event["body"]})
        return Reply(
            200,
            json.dumps(
                {"statusCode": 201, "headers": {"content-type": "application/json", "etag": '"v1"'}, "body": body}
            ).encode(),
        )


def signed(
    method: str,
    path: str,
    body: bytes = b"",
    key: str = "LBLOCALOPERATOR",
    secret: str | None = None,
    service: str = "execute-api",
) -> tuple[str, dict[str, str]]:
    url = f"http://{HOST}{path}"
    req = AWSRequest(method=method, url=url, data=body, headers={"content-type": "application/json"})
    secret = secret if secret is not None else BY_KEY[key].secret_access_key
    SigV4Auth(Credentials(key, secret), service, "us-east-1").add_auth(req)
    return url, dict(req.headers.items())


class GatewayTest(unittest.TestCase):
    def setUp(self) -> None:
        self.function = Function()
        self.gateway = ApiGateway(self.function)
        self.client = Client(self.gateway)

    def send(self, method: str, path: str, body: bytes = b"", **kw: Any) -> Any:
        url, headers = signed(method, path, body, **kw)
        return self.client.open(
            url.removeprefix(f"http://{HOST}"),
            method=method,
            data=body,
            headers=headers,
            base_url=f"http://{HOST}",
        )

    def test_each_local_principal_reaches_the_function_as_its_own_identity(self) -> None:
        for p in PRINCIPALS:
            r = self.send("GET", "/v1/resources?kind=rds-instance&x=a%20b", key=p.access_key_id)
            self.assertEqual(r.status_code, 201, r.get_data(as_text=True))
            event = self.function.events[-1]
            self.assertEqual(event["requestContext"]["identity"]["userArn"], p.arn)
            self.assertEqual(event["path"], "/resources")
            self.assertEqual(event["queryStringParameters"], {"kind": "rds-instance", "x": "a b"})
            self.assertNotIn("authorization", event["headers"])
        self.assertEqual(r.headers["etag"], '"v1"')

    def test_a_write_carries_its_body_and_an_encoded_path_keeps_its_encoding(self) -> None:
        body = json.dumps({"resources": ["arn:aws:rds:us-east-1:123456789012:db:orders"]}).encode()
        r = self.send("POST", "/v1/recovery-points/us-east-1%2Fdb%2Flb-gold-orders", body)
        self.assertEqual(r.status_code, 201, r.get_data(as_text=True))
        event = self.function.events[-1]
        self.assertEqual(event["httpMethod"], "POST")
        self.assertEqual(json.loads(event["body"]), json.loads(body))

    def test_unsigned_badly_signed_or_foreign_requests_never_reach_the_function(self) -> None:
        cases = {
            "unsigned": lambda: self.client.get("/v1/resources"),
            "unknown key": lambda: self.send("GET", "/v1/resources", key="AKIDNOBODY", secret="x"),
            "wrong secret": lambda: self.send("GET", "/v1/resources", secret="not-the-secret"),
            "wrong service": lambda: self.send("GET", "/v1/resources", service="s3"),
        }
        for name, call in cases.items():
            r = call()
            self.assertEqual(r.status_code, 403, name)
            self.assertIn("message", r.get_json(), name)
        # Signed for one body, sent with another.
        url, headers = signed("POST", "/v1/backups", b'{"resources":[]}')
        r = self.client.post("/v1/backups", data=b'{"resources":["x"]}', headers=headers)
        self.assertEqual(r.status_code, 403)
        self.assertIn("signature", r.get_json()["message"])
        self.assertEqual(self.function.events, [])

    def test_a_signature_from_another_time_is_refused(self) -> None:
        later = ApiGateway(self.function, clock=lambda: dt.datetime.now(dt.UTC) + dt.timedelta(minutes=6))
        client = Client(later)
        url, headers = signed("GET", "/v1/resources")
        r = client.get("/v1/resources", headers=headers)
        self.assertEqual(r.status_code, 403)
        self.assertIn("expired", r.get_json()["message"])

    def test_outside_the_stage_or_a_failing_function_is_the_gateways_own_answer(self) -> None:
        r = self.send("GET", "/resources")
        self.assertEqual(r.status_code, 403)
        self.function.fail = True
        r = self.send("GET", "/v1/resources")
        self.assertEqual(r.status_code, 502)
        self.assertEqual(r.get_json()["message"], "Internal server error")

    def test_the_principals_are_those_functions_env_gives_roles(self) -> None:
        from pathlib import Path

        env = (Path(api_gateway.__file__).parent / "functions.env").read_text()
        line = next(l for l in env.splitlines() if l.startswith("ADMIN_ROLES="))
        roles = json.loads(line.split("=", 1)[1].strip("'"))

        def role_of(arn: str) -> str | None:
            for pattern, role in roles.items():
                if arn == pattern or (pattern.endswith("*") and arn.startswith(pattern[:-1])):
                    return role
            return None

        want = {"viewer": "viewer", "operator": "operator", "admin": "admin", "approver": "admin"}
        for p in PRINCIPALS:
            self.assertEqual(role_of(p.arn), want[p.role], p.arn)


if __name__ == "__main__":
    unittest.main()
