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
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from check import ACCOUNT, REGION, Case, simulate, verdict  # noqa: E402
from resolve import Resolver  # noqa: E402

BUCKET = "lifeboat-s3-backups"
BREAK_GLASS = f"arn:aws:iam::{ACCOUNT}:role/lifeboat-break-glass"
ATTACKER = f"arn:aws:iam::{ACCOUNT}:role/deploy"
EXPIRY = f"arn:aws:iam::{ACCOUNT}:role/lifeboat-ExpireRecoveryPointsFunctionRole-A1B2C3D4E5F6"
LOOKALIKE = f"arn:aws:iam::{ACCOUNT}:role/lifeboat-evil"
ADMIN = [{"name": "AdministratorAccess", "policy": {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "*", "Resource": "*"}]}}]
DELETE_VERSIONS = [{"name": "retention", "policy": {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "s3:DeleteObjectVersion", "Resource": f"arn:aws:s3:::{BUCKET}/*"}]}}]
TLS = {"aws:SecureTransport": "true"}


def case(what: str, principal: str, identity: list, action: str, resource: str, policy: dict, allowed: bool,
         context: dict | None = None) -> Case:
    """One request as the wiring check models it, with what every real request carries:
    who signed it (and, unless `context` says otherwise, TLS)."""
    ctx = {"aws:PrincipalArn": principal, "aws:PrincipalAccount": ACCOUNT,
           **(TLS if context is None else context)}
    return Case("locks", what, action, resource, allowed, principal=principal, identity=identity,
                resource_policy=policy, context=ctx)


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
        out.append(case("attacker loosens the bucket", ATTACKER, ADMIN, action, bucket, with_glass, False))
        out.append(case("break-glass loosens the bucket", BREAK_GLASS, ADMIN, action, bucket, with_glass, True))
        out.append(case("nobody loosens it without a break-glass role", BREAK_GLASS, ADMIN, action, bucket, without,
                        False))
    for policy, glass in ((with_glass, True), (without, False)):
        out.append(case("attacker bypasses governance retention", ATTACKER, ADMIN,
                        "s3:BypassGovernanceRetention", obj, policy, False))
        out.append(case("attacker deletes a backup version", ATTACKER, ADMIN, "s3:DeleteObjectVersion", obj,
                        policy, False))
        out.append(case("a role named like Lifeboat's deletes a version", LOOKALIKE, ADMIN,
                        "s3:DeleteObjectVersion", obj, policy, False))
        out.append(case("Lifeboat's retention deletes an expired version", EXPIRY, DELETE_VERSIONS,
                        "s3:DeleteObjectVersion", obj, policy, True))
        out.append(case("Lifeboat's retention bypasses governance", EXPIRY, ADMIN,
                        "s3:BypassGovernanceRetention", obj, policy, False))
        out.append(case("break-glass bypasses governance", BREAK_GLASS, ADMIN, "s3:BypassGovernanceRetention",
                        obj, policy, glass))
    out.append(case("a read without TLS", EXPIRY, ADMIN, "s3:GetObject", obj, with_glass, False,
                    {"aws:SecureTransport": "false"}))
    out.append(case("Lifeboat reads over TLS", EXPIRY, ADMIN, "s3:GetObject", obj, with_glass, True))
    keys = key_policies(template, BREAK_GLASS)
    if len(keys) < 2:
        raise SystemExit(f"expected the catalog's and the config bundles' keys, found {sorted(keys)}")
    for glass, policies in ((True, keys), (False, key_policies(template, ""))):
        for name, policy in policies.items():
            key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{name.lower()}"
            for action in ("kms:ScheduleKeyDeletion", "kms:DisableKey"):
                out.append(case(f"attacker destroys {name}", ATTACKER, ADMIN, action, key, policy, False, {}))
                out.append(case(f"break-glass retires {name}", BREAK_GLASS, ADMIN, action, key, policy, glass, {}))
            out.append(case(f"{name} still usable by the account", EXPIRY, ADMIN, "kms:Decrypt", key, policy, True,
                            {}))
    vault = f"arn:aws:glacier:us-west-2:{ACCOUNT}:vaults/lifeboat-archive"
    lock = json.loads((bucket_stack.parent / "glacier-vault-lock.json").read_text())
    lock = json.loads(json.dumps(lock).replace("111122223333", ACCOUNT))
    for age, allowed in (("30", False), ("364", False), ("365", True)):
        out.append(case(f"an archive {age} days old is deleted", ATTACKER, ADMIN, "glacier:DeleteArchive", vault, lock,
                        allowed, {"glacier:ArchiveAgeInDays": age}))
    return out


def run(template: Path, bucket_stack: Path) -> int:
    all_cases = cases(template, bucket_stack)
    simulate(all_cases)
    failures = 0
    for c in all_cases:
        ok, word = verdict(c)
        failures += not ok
        mark = "" if ok else f"  <-- expected {'allowed' if c.allow else 'denied'} {c.note}"
        print(f"{c.invoker:<52} {c.action:<38} {c.resource.split(':')[-1][:40]:<40} {word}{mark}")
    if failures:
        print(f"locks check FAILED: {failures} of {len(all_cases)} requests")
        return 1
    print(f"locks check passed: {len(all_cases)} requests evaluated as expected")
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(run(Path(args[0] if args else "template.yaml"), Path(args[1] if len(args) > 1 else
                                                                   "infra/s3-backup-bucket.yaml")))
