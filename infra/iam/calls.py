"""Every AWS operation the functions made during the stack tests, checked against the
function's role in the SAM-transformed template.yaml.

Usage: calls.py LOG [LOG ...] [--template template.yaml]

The functions' SDK clients count their calls (shared/aws/src/calls.rs): the first time a
process makes an operation it logs `aws operation` with the function
(`AWS_LAMBDA_FUNCTION_NAME`) and the operation (`Service:Operation`), and every run logs its
calls in `run finished`. This reads those lines from the local stack's log
(.local/stack/cargo-lambda.log), maps each operation to the IAM action(s) it needs, and
checks that the function's role (the template's function whose `BuildProperties.Binary`
is the function) has an Allow statement for each, with no Deny statement on all
resources. It is an action-level check: which resources each grant covers is proven by
check.py with a real policy evaluator. A function missing a permission it uses fails here,
naming the function, the operation and the action.

Exits 1 when an operation is not granted, or when the log names no operation at all (the
check would prove nothing).
"""

from __future__ import annotations

import fnmatch
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

# The SDK's service names (smithy metadata) -> IAM service prefixes.
SERVICES = {
    "RDS": "rds",
    "DynamoDB": "dynamodb",
    "S3": "s3",
    "SNS": "sns",
    "SQS": "sqs",
    "KMS": "kms",
    "SSM": "ssm",
    "Route53": "route53",
    "Route 53": "route53",
    "SFN": "states",
    "Lambda": "lambda",
    "SecretsManager": "secretsmanager",
    "Secrets Manager": "secretsmanager",
    "Glacier": "glacier",
    "Backup": "backup",
    "STS": "sts",
    "CloudWatch": "cloudwatch",
    "EventBridge": "events",
    "Scheduler": "scheduler",
}

# Operations whose IAM action has another name (or that need several actions).
ACTIONS = {
    "S3:ListObjectsV2": ["s3:ListBucket"],
    "S3:ListObjects": ["s3:ListBucket"],
    "S3:ListObjectVersions": ["s3:ListBucketVersions"],
    "S3:HeadBucket": ["s3:ListBucket"],
    "S3:HeadObject": ["s3:GetObject"],
    "S3:GetObjectAttributes": ["s3:GetObject", "s3:GetObjectAttributes"],
    "S3:CopyObject": ["s3:GetObject", "s3:PutObject"],
    "S3:UploadPartCopy": ["s3:GetObject", "s3:PutObject"],
    "S3:CreateMultipartUpload": ["s3:PutObject"],
    "S3:UploadPart": ["s3:PutObject"],
    "S3:CompleteMultipartUpload": ["s3:PutObject"],
    "S3:DeleteObjects": ["s3:DeleteObject"],
    # With a versionId S3 asks for s3:DeleteObjectVersion, without one (a delete marker)
    # for s3:DeleteObject; the log names the operation only, so either grant passes here
    # ("|": any one of) and check.py proves which keys each role may delete.
    "S3:DeleteObject": ["s3:DeleteObject|s3:DeleteObjectVersion"],
    "S3:GetBucketLifecycleConfiguration": ["s3:GetLifecycleConfiguration"],
    "S3:PutBucketLifecycleConfiguration": ["s3:PutLifecycleConfiguration"],
    "S3:GetObjectLockConfiguration": ["s3:GetBucketObjectLockConfiguration"],
    "S3:PutObjectLockConfiguration": ["s3:PutBucketObjectLockConfiguration"],
    "S3:GetBucketNotificationConfiguration": ["s3:GetBucketNotification"],
    "S3:PutBucketNotificationConfiguration": ["s3:PutBucketNotification"],
    "Lambda:Invoke": ["lambda:InvokeFunction"],
    "DynamoDB:ExportTableToPointInTime": ["dynamodb:ExportTableToPointInTime"],
    "Glacier:UploadMultipartPart": ["glacier:UploadMultipartPart"],
}

FIRST_USE = re.compile(r'"operation":"(?P<op>[^"]+)"')
FUNCTION = re.compile(r'"function":"(?P<fn>[^"]+)"')
CALLS = re.compile(r'"calls":"(?P<calls>\{.*?\})"')


def actions_of(op: str) -> list[str]:
    if op in ACTIONS:
        return ACTIONS[op]
    service, _, name = op.partition(":")
    prefix = SERVICES.get(service)
    if prefix is None or not name:
        raise ValueError(f"operation {op!r}: its IAM service is not known to the check (add it to SERVICES)")
    return [f"{prefix}:{name}"]


def operations(lines) -> dict[str, set[str]]:
    """function -> operations, from `aws operation` and `run finished` log lines."""
    used: dict[str, set[str]] = {}
    for line in lines:
        fn = FUNCTION.search(line)
        if fn is None:
            continue
        if "aws operation" in line:
            op = FIRST_USE.search(line)
            if op:
                used.setdefault(fn["fn"], set()).add(op["op"])
        elif "run finished" in line:
            m = CALLS.search(line)
            if m:
                try:
                    calls = json.loads(m["calls"].replace('\\"', '"'))
                except json.JSONDecodeError:
                    continue
                used.setdefault(fn["fn"], set()).update(calls)
    return used


def _as_list(v) -> list:
    return v if isinstance(v, list) else [v]


def _matches(patterns, action: str) -> bool:
    return any(fnmatch.fnmatchcase(action.lower(), str(p).lower()) for p in _as_list(patterns))


def granted(policies: list[dict], action: str) -> bool:
    """An Allow statement names the action, and no unconditional Deny on every resource
    names it."""
    allowed = False
    for p in policies:
        for st in _as_list(p["policy"].get("Statement", [])):
            if "Action" not in st:
                continue
            if not _matches(st["Action"], action):
                continue
            if st.get("Effect") == "Deny" and "Condition" not in st and "*" in _as_list(st.get("Resource", [])):
                return False
            if st.get("Effect") == "Allow":
                allowed = True
    return allowed


def roles_by_binary(template_path: Path) -> dict[str, list[dict]]:
    """function binary -> its role's policies, from the transformed template (the
    defaults and with every optional part configured: an operation must be granted in
    both)."""
    from cfnlint.decode import decode

    import check

    original, problems = decode(str(template_path))
    if problems or original is None:
        raise check.CheckError("; ".join(str(p) for p in problems) or "empty template")
    by_binary: dict[str, list[dict]] = {}
    from transform import Transform  # noqa: E402  (infra/checkov, on check.py's path)

    for profile, values in check.PROFILES.items():
        values = dict(values)
        if profile == "configured":
            declared = original.get("Parameters", {})
            values.update({k: v for k, v in check.OPTIONAL_CONFIGURED.items() if k in declared})
        transformed, _ = decode(str(template_path))
        t = Transform(str(template_path), transformed, check.REGION)
        errors = t.transform_template()
        if errors:
            raise check.CheckError("; ".join(str(e) for e in errors))
        stack = check.Stack(original, t.template(), values, template_path.parent)
        for logical, fn in stack.of_type("AWS::Lambda::Function"):
            binary = (
                original.get("Resources", {}).get(logical, {}).get("Metadata", {})
                .get("BuildProperties", {}).get("Binary")
            )
            if not binary:
                continue
            role = fn["Properties"]["Role"]
            by_binary.setdefault(f"{profile}:{binary}", []).extend(stack.policies[role])
    return by_binary


def evaluate(used: dict[str, set[str]], roles: dict[str, list[dict]]) -> tuple[list[str], list[str]]:
    """(failures, lines)."""
    failures: list[str] = []
    lines: list[str] = []
    # The local stack deploys every optional part (infra/local/functions.env: the table
    # export bucket, DR switch targets, ...), so its calls are those of the "configured"
    # parameter set; with the defaults those calls are not made.
    profiles = ["configured"] if any(k.startswith("configured:") for k in roles) else sorted({k.split(":", 1)[0] for k in roles})
    for fn in sorted(used):
        for op in sorted(used[fn]):
            try:
                needed = actions_of(op)
            except ValueError as e:
                failures.append(f"{fn}: {e}")
                continue
            for action in needed:
                if not any(f"{profile}:{fn}" in roles for profile in profiles):
                    failures.append(f"{fn}: no function of the template builds this binary")
                    continue
                for profile in profiles:
                    # A function deployed only with an optional part (e.g. the archive
                    # vault) is checked where it exists.
                    policies = roles.get(f"{profile}:{fn}")
                    if policies is None:
                        continue
                    ok = any(granted(policies, a) for a in action.split("|"))
                    lines.append(f"{profile:<11} {fn:<24} {op:<44} {action:<44} {'granted' if ok else 'NOT GRANTED'}")
                    if not ok:
                        failures.append(f"[{profile}] {fn} calls {op}: its role grants no {action}")
    return sorted(set(failures)), lines


def run(logs: list[Path], template: Path, quiet: bool = False) -> int:
    used: dict[str, set[str]] = {}
    for log in logs:
        text = log.read_text(errors="replace") if log.exists() else ""
        for fn, ops in operations(text.splitlines()).items():
            used.setdefault(fn, set()).update(ops)
    if not used:
        print(f"calls check could not run: no function operation in {', '.join(map(str, logs))}", file=sys.stderr)
        return 1
    failures, lines = evaluate(used, roles_by_binary(template))
    if not quiet:
        print("\n".join(lines))
    n = sum(len(v) for v in used.values())
    if failures:
        print(f"calls check FAILED: {len(failures)} operation(s) the functions made are not granted to them:")
        for f in failures:
            print(f"  {f}")
        return 1
    print(f"calls check passed: {n} operations of {len(used)} functions, each granted by the function's role.")
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    quiet = "--quiet" in args
    args = [a for a in args if a != "--quiet"]
    template = Path("template.yaml")
    if "--template" in args:
        i = args.index("--template")
        template = Path(args[i + 1])
        del args[i : i + 2]
    sys.exit(run([Path(a) for a in args] or [Path(".local/stack/cargo-lambda.log")], template.resolve(), quiet))
