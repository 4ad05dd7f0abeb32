"""Locks that hold, proven offline: the backup bucket's policy (infra/s3-backup-bucket.yaml)
and the keys' policies (template.yaml) evaluated with a real IAM policy simulator
(@cloud-copilot/iam-simulate, through simulate.mjs) against an attacker holding an
administrator credential of the production account.

Usage: locks.py [template.yaml] [infra/s3-backup-bucket.yaml]

For each case: the principal, its identity policy (AdministratorAccess for the attacker and
the break-glass role; the real grant for Lifeboat's retention role), the action, the
resource, the request context (TLS or not), and what must come out. Exits 1 when any
result differs, printing every case.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from resolve import Resolver  # noqa: E402

ACCOUNT = "123456789012"
REGION = "us-east-1"
BUCKET = "lifeboat-s3-backups"
BREAK_GLASS = f"arn:aws:iam::{ACCOUNT}:role/lifeboat-break-glass"
ATTACKER = f"arn:aws:iam::{ACCOUNT}:role/deploy"
EXPIRY = f"arn:aws:iam::{ACCOUNT}:role/lifeboat-ExpireRecoveryPointsFunctionRole-A1B2C3D4E5F6"
LOOKALIKE = f"arn:aws:iam::{ACCOUNT}:role/lifeboat-evil"
ADMIN = [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}]
DELETE_VERSIONS = [{"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "s3:DeleteObjectVersion", "Resource": f"arn:aws:s3:::{BUCKET}/*"}]}]
TLS = {"aws:SecureTransport": "true"}


@dataclass
class Case:
    what: str
    principal: str
    identity: list
    action: str
    resource: str
    policy: dict
    allowed: bool
    context: dict = field(default_factory=lambda: dict(TLS))
    result: str = ""


def load(path: Path) -> dict:
    from cfnlint.decode import decode

    doc, problems = decode(str(path))
    if problems or doc is None:
        raise SystemExit(f"{path}: {problems}")
    return doc


def bucket_policy(path: Path, break_glass: str) -> dict:
    """The backup bucket's policy as deployed with `break_glass` (or none)."""
    r = Resolver(load(path), {"BucketName": BUCKET, "BreakGlassRoleArn": break_glass}, ACCOUNT, REGION, "backups")
    return r.resolve(r.resources["BackupBucketPolicy"]["Properties"]["PolicyDocument"])


def key_policies(path: Path, break_glass: str) -> dict[str, dict]:
    """Every KMS key policy of the Lifeboat template deployed with `break_glass` (or none;
    no SAM resource is involved)."""
    doc = load(path)
    r = Resolver(doc, {"BreakGlassRoleArn": break_glass}, ACCOUNT, REGION, "lifeboat")
    return {
        name: r.resolve(res["Properties"]["KeyPolicy"])
        for name, res in r.resources.items()
        if res.get("Type") == "AWS::KMS::Key"
    }


def cases(template: Path, bucket_stack: Path) -> list[Case]:
    out: list[Case] = []
    bucket = f"arn:aws:s3:::{BUCKET}"
    obj = f"{bucket}/lifeboat/orders/data/run-1/a"
    with_glass = bucket_policy(bucket_stack, BREAK_GLASS)
    without = bucket_policy(bucket_stack, "")
    loosen = ["s3:PutBucketPolicy", "s3:DeleteBucketPolicy", "s3:PutLifecycleConfiguration",
              "s3:PutBucketObjectLockConfiguration", "s3:PutBucketVersioning"]
    for action in loosen:
        out.append(Case("attacker loosens the bucket", ATTACKER, ADMIN, action, bucket, with_glass, False))
        out.append(Case("break-glass loosens the bucket", BREAK_GLASS, ADMIN, action, bucket, with_glass, True))
        out.append(Case("nobody loosens it without a break-glass role", BREAK_GLASS, ADMIN, action, bucket, without,
                        False))
    for policy, glass in ((with_glass, True), (without, False)):
        out.append(Case("attacker bypasses governance retention", ATTACKER, ADMIN,
                        "s3:BypassGovernanceRetention", obj, policy, False))
        out.append(Case("attacker deletes a backup version", ATTACKER, ADMIN, "s3:DeleteObjectVersion", obj,
                        policy, False))
        out.append(Case("a role named like Lifeboat's deletes a version", LOOKALIKE, ADMIN,
                        "s3:DeleteObjectVersion", obj, policy, False))
        out.append(Case("Lifeboat's retention deletes an expired version", EXPIRY, DELETE_VERSIONS,
                        "s3:DeleteObjectVersion", obj, policy, True))
        out.append(Case("Lifeboat's retention bypasses governance", EXPIRY, ADMIN,
                        "s3:BypassGovernanceRetention", obj, policy, False))
        out.append(Case("break-glass bypasses governance", BREAK_GLASS, ADMIN, "s3:BypassGovernanceRetention",
                        obj, policy, glass))
    out.append(Case("a read without TLS", EXPIRY, ADMIN, "s3:GetObject", obj, with_glass, False,
                    {"aws:SecureTransport": "false"}))
    out.append(Case("Lifeboat reads over TLS", EXPIRY, ADMIN, "s3:GetObject", obj, with_glass, True))
    keys = key_policies(template, BREAK_GLASS)
    if len(keys) < 2:
        raise SystemExit(f"expected the catalog's and the config bundles' keys, found {sorted(keys)}")
    for glass, policies in ((True, keys), (False, key_policies(template, ""))):
        for name, policy in policies.items():
            key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{name.lower()}"
            for action in ("kms:ScheduleKeyDeletion", "kms:DisableKey"):
                out.append(Case(f"attacker destroys {name}", ATTACKER, ADMIN, action, key, policy, False, {}))
                out.append(Case(f"break-glass retires {name}", BREAK_GLASS, ADMIN, action, key, policy, glass, {}))
            out.append(Case(f"{name} still usable by the account", EXPIRY, ADMIN, "kms:Decrypt", key, policy, True,
                            {}))
    vault = f"arn:aws:glacier:us-west-2:{ACCOUNT}:vaults/lifeboat-archive"
    lock = json.loads((bucket_stack.parent / "glacier-vault-lock.json").read_text())
    lock = json.loads(json.dumps(lock).replace("111122223333", ACCOUNT))
    for age, allowed in (("30", False), ("364", False), ("365", True)):
        out.append(Case(f"an archive {age} days old is deleted", ATTACKER, ADMIN, "glacier:DeleteArchive", vault, lock,
                        allowed, {"glacier:ArchiveAgeInDays": age}))
    return out


def simulate(all_cases: list[Case]) -> None:
    payload = [
        {
            "request": {
                "principal": c.principal,
                "action": c.action,
                "resource": {"resource": c.resource, "accountId": ACCOUNT},
                # What every real request carries: who signed it.
                "contextVariables": {"aws:PrincipalArn": c.principal, "aws:PrincipalAccount": ACCOUNT, **c.context},
            },
            "identityPolicies": [{"name": "identity", "policy": p} for p in c.identity],
            "resourcePolicy": c.policy,
        }
        for c in all_cases
    ]
    node = os.environ.get("NODE", "node")
    proc = subprocess.run([node, str(HERE / "simulate.mjs")], input=json.dumps(payload), capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit("the IAM simulator failed (see above)")
    for c, r in zip(all_cases, json.loads(proc.stdout), strict=True):
        c.result = r["result"] if r["result"] != "Error" else f"Error {json.dumps(r.get('errors'))[:300]}"


def run(template: Path, bucket_stack: Path) -> int:
    all_cases = cases(template, bucket_stack)
    simulate(all_cases)
    failures = 0
    for c in all_cases:
        ok = (c.result == "Allowed") == c.allowed and not c.result.startswith("Error")
        failures += not ok
        mark = "" if ok else f"  <-- expected {'allowed' if c.allowed else 'denied'}"
        print(f"{c.what:<52} {c.action:<38} {c.resource.split(':')[-1][:40]:<40} {c.result}{mark}")
    if failures:
        print(f"locks check FAILED: {failures} of {len(all_cases)} requests")
        return 1
    print(f"locks check passed: {len(all_cases)} requests evaluated as expected")
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(run(Path(args[0] if args else "template.yaml"), Path(args[1] if len(args) > 1 else
                                                                   "infra/s3-backup-bucket.yaml")))
