"""The calls check itself: it reads both log lines, maps operations to IAM actions, and
reports an operation the function's role does not grant (on the real template).

Usage: test_calls.py [template.yaml]
"""

from __future__ import annotations

import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import calls  # noqa: E402

TEMPLATE = Path(sys.argv[1] if len(sys.argv) > 1 else "template.yaml").resolve()

FIRST_USE = ('{"level":"INFO","fields":{"message":"aws operation","function":"%s",'
             '"operation":"%s"},"target":"lifeboat::aws::calls"}')
RUN_FINISHED = ('{"level":"INFO","fields":{"message":"run finished","function":"%s",'
                '"calls":"{\\"RDS:DescribeDBSnapshots\\": 3, \\"S3:ListObjectsV2\\": 1}"}}')


class Parsing(unittest.TestCase):
    def test_both_lines_name_the_function_and_its_operations(self):
        used = calls.operations([
            FIRST_USE % ("copy-snapshots", "RDS:CopyDBSnapshot"),
            RUN_FINISHED % "copy-snapshots",
            " INFO terminating lambda function instance function=\"copy-snapshots\"",
        ])
        self.assertEqual(used, {"copy-snapshots": {"RDS:CopyDBSnapshot", "RDS:DescribeDBSnapshots", "S3:ListObjectsV2"}})

    def test_operations_map_to_their_iam_actions(self):
        self.assertEqual(calls.actions_of("S3:ListObjectsV2"), ["s3:ListBucket"])
        self.assertEqual(calls.actions_of("SFN:StartExecution"), ["states:StartExecution"])
        self.assertEqual(calls.actions_of("Lambda:Invoke"), ["lambda:InvokeFunction"])
        self.assertEqual(calls.actions_of("S3:DeleteObject"), ["s3:DeleteObject|s3:DeleteObjectVersion"])
        with self.assertRaises(ValueError):
            calls.actions_of("Nonesuch:Do")


class Grants(unittest.TestCase):
    def policy(self, *statements):
        return [{"name": "p", "policy": {"Statement": list(statements)}}]

    def test_wildcards_allow_and_an_unconditional_deny_wins(self):
        p = self.policy({"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::b/*"})
        self.assertTrue(calls.granted(p, "s3:GetObject"))
        self.assertFalse(calls.granted(p, "s3:PutObject"))
        p = self.policy({"Effect": "Allow", "Action": ["s3:*"], "Resource": "*"},
                        {"Effect": "Deny", "Action": "s3:PutObject", "Resource": "*"})
        self.assertFalse(calls.granted(p, "s3:PutObject"))


class OnTheTemplate(unittest.TestCase):
    def run_log(self, *lines):
        with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as f:
            f.write("\n".join(lines) + "\n")
        try:
            return calls.run([Path(f.name)], TEMPLATE, quiet=True)
        finally:
            Path(f.name).unlink()

    def test_an_operation_the_role_does_not_grant_fails(self):
        self.assertEqual(self.run_log(FIRST_USE % ("copy-snapshots", "RDS:CopyDBSnapshot")), 0)
        self.assertEqual(self.run_log(FIRST_USE % ("verify-backups", "DynamoDB:DeleteTable")), 1)
        self.assertEqual(self.run_log(FIRST_USE % ("verify-backups", "RDS:DeleteDBInstance")), 1)

    def test_a_delete_passes_with_either_delete_grant(self):
        # expire-recovery-points deletes versions only (s3:DeleteObjectVersion); verify-backups
        # deletes nothing in S3.
        self.assertEqual(self.run_log(FIRST_USE % ("expire-recovery-points", "S3:DeleteObject")), 0)
        self.assertEqual(self.run_log(FIRST_USE % ("verify-backups", "S3:DeleteObject")), 1)

    def test_an_unknown_function_or_an_empty_log_fails(self):
        self.assertEqual(self.run_log(FIRST_USE % ("no-such-function", "SNS:Publish")), 1)
        self.assertEqual(self.run_log("nothing here"), 1)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1])
