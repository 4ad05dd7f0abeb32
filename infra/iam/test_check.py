"""The IAM check catches what it exists to catch.

Usage: test_check.py [template.yaml]

Reintroduces defects into a copy of template.yaml (the schedule that could not invoke its
function, SAM's schedule roles without the DLQ's key, deletes of any database, writes to
any SSM parameter, a key policy that does not admit the account, a state machine that may
not invoke its function, a region-only condition on a destructive grant) and requires the
check to report each one, naming the invoker and the request. Exits 1 otherwise.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from check import CheckError, evaluate  # noqa: E402

A = "arn:aws:rds:us-east-1:123456789012"

# (what is changed, old text, new text, failures the check must report)
MUTATIONS = [
    (
        "the scheduler role does not name expire-recovery-points",
        "                  - !GetAtt ExpireRecoveryPointsFunction.Arn\n",
        "",
        ["schedule ExpireRecoveryPointsFunctionHourly: lambda:InvokeFunction on arn:aws:lambda:"],
    ),
    (
        "tier-backups' schedule gets SAM's generated role (no key for the encrypted DLQ)",
        "            Input: '{}'\n            RetryPolicy:\n              MaximumRetryAttempts: 3\n"
        "              MaximumEventAgeInSeconds: 3600\n            DeadLetterConfig:\n"
        "              Arn: !GetAtt FunctionsDlq.Arn\n            RoleArn: !GetAtt SchedulerRole.Arn\n",
        "            Input: '{}'\n            RetryPolicy:\n              MaximumRetryAttempts: 3\n"
        "              MaximumEventAgeInSeconds: 3600\n            DeadLetterConfig:\n"
        "              Arn: !GetAtt FunctionsDlq.Arn\n",
        ["schedule TierBackupsFunctionDailyTiering: kms:GenerateDataKey on arn:aws:kms:",
         "schedule TierBackupsFunctionDailyTiering: kms:Decrypt on arn:aws:kms:"],
    ),
    (
        "admin-api may delete any database (as it could before)",
        "            - Sid: DeleteRenamedTargets\n              Effect: Allow\n              Action: rds:DeleteDBInstance\n"
        "              Resource: !Sub arn:${AWS::Partition}:rds:${AWS::Region}:${AWS::AccountId}:db:*-lbpre-*\n"
        "              Condition:\n                \"Null\":\n                  aws:ResourceTag/lifeboat:policy: \"false\"\n",
        "            - Sid: DeleteRenamedTargets\n              Effect: Allow\n              Action: rds:DeleteDBInstance\n"
        "              Resource: !Sub arn:${AWS::Partition}:rds:${AWS::Region}:${AWS::AccountId}:db:*\n",
        [f"role AdminApiFunctionRole: rds:DeleteDBInstance on {A}:db:production-orders ALLOWED"],
    ),
    (
        "run-dr-step's deletes scoped by region alone (no tag condition)",
        "                - !Sub arn:${AWS::Partition}:rds:*:${AWS::AccountId}:cluster-snapshot:lbfbs-*\n"
        "              Condition:\n                StringEquals:\n"
        "                  aws:RequestedRegion: !Split [\",\", !Sub [\"${AWS::Region},${Dr}\", {Dr: !Join [\",\", !Ref DrRegions]}]]\n"
        "                  aws:ResourceTag/lifeboat:created-by: lifeboat\n",
        "                - !Sub arn:${AWS::Partition}:rds:*:${AWS::AccountId}:cluster-snapshot:lbfbs-*\n"
        "              Condition:\n                StringEquals:\n"
        "                  aws:RequestedRegion: !Split [\",\", !Sub [\"${AWS::Region},${Dr}\", {Dr: !Join [\",\", !Ref DrRegions]}]]\n",
        ["role RunDrStepFunctionRole: rds:DeleteDBInstance on arn:aws:rds:us-west-2:123456789012:db:lbdr-lookalike-orders ALLOWED"],
    ),
    (
        "run-dr-step may write any SSM parameter (as it could before)",
        ":parameter${DrSwitchParameterPath}*",
        ":parameter/*",
        ["role RunDrStepFunctionRole: ssm:PutParameter on arn:aws:ssm:us-east-1:123456789012:parameter/production/orders/db-password ALLOWED"],
    ),
    (
        "the DR state machine's role may invoke another function only",
        "        - LambdaInvokePolicy:\n            FunctionName: !Ref RunDrStepFunction\n",
        "        - LambdaInvokePolicy:\n            FunctionName: !Ref PlanBackupsFunction\n",
        ["state machine DrStateMachine (Precheck): lambda:InvokeFunction on arn:aws:lambda:"],
    ),
]

# A separate run: a key policy that does not admit the account denies every use of the key.
KEY_POLICY = (
    "the catalog key's policy does not admit this account",
    "              AWS: !Sub arn:${AWS::Partition}:iam::${AWS::AccountId}:root\n            Action: kms:*\n"
    "            Resource: \"*\"\n          # CloudWatch Logs encrypts",
    "              AWS: arn:aws:iam::111111111111:root\n            Action: kms:*\n"
    "            Resource: \"*\"\n          # CloudWatch Logs encrypts",
    ["schedule CreateSnapshotsFunctionEvery15Minutes: kms:GenerateDataKey on arn:aws:kms:",
     "function CreateSnapshotsFunction (on failure): kms:GenerateDataKey on arn:aws:kms:"],
)


def mutated(text: str, mutations) -> str:
    for what, old, new, _ in mutations:
        if text.count(old) != 1:
            raise SystemExit(f"test_check: cannot apply '{what}': the text to change occurs {text.count(old)} times")
        text = text.replace(old, new)
    return text


def check(template: Path, mutations) -> list[str]:
    text = mutated(template.read_text(encoding="utf-8"), mutations)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "template.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            failures, _, _ = evaluate(path, base=template.parent, profiles=("defaults",))
        except CheckError as e:
            raise SystemExit(f"test_check: the check could not run on the changed template: {e}") from e
    missing = []
    for what, _, _, expected in mutations:
        for e in expected:
            if not any(e in f for f in failures):
                missing.append(f"{what}: no failure reported matching '{e}'")
            else:
                print(f"caught: {what}: {next(f for f in failures if e in f)}")
    return missing


def main() -> int:
    template = Path(sys.argv[1] if len(sys.argv) > 1 else "template.yaml").resolve()
    missing = check(template, MUTATIONS) + check(template, [KEY_POLICY])
    if missing:
        print("IAM check self-test FAILED: the check missed defects it must catch:")
        for m in missing:
            print(f"  {m}")
        return 1
    print(f"IAM check self-test passed: all {len(MUTATIONS) + 1} reintroduced defects were reported.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
