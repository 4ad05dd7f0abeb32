"""Unit tests of the local deployment: template.yaml derived for moto (local_stack.py) and
deployed to a moto server, then deployed again (provision.py).

Run: .venv/bin/python -m unittest discover -s infra/local -p 'test_*.py'
"""

from __future__ import annotations

import copy
import fnmatch
import json
import logging
import unittest
from functools import cache
from typing import Any

from cfnlint.decode import cfn_yaml

import local_stack
import provision
import stack
from api_gateway import PRINCIPALS
from launcher import enable_step_functions_execution
from local_stack import METADATA_KEY, TEMPLATE, DerivationError, Derived

MOTO_PORT, API_PORT = 5077, 5078
READ_ONLY = ("Describe", "Get", "List", "Head")


@cache
def env_text() -> str:
    """functions.env as stack.py renders it for the default ports."""
    return stack.render_functions_env(stack.Settings.from_env({}))


@cache
def transformed() -> tuple[dict[str, Any], dict[str, Any]]:
    return local_stack.transform(TEMPLATE, "us-east-1")


def derived(original: dict[str, Any] | None = None, result: dict[str, Any] | None = None) -> Derived:
    written, sam = transformed()
    return local_stack.derive_from(original or written, result or sam, env_text(), MOTO_PORT, API_PORT)


def local(template: dict[str, Any]) -> dict[str, Any]:
    return template["Metadata"][METADATA_KEY]


def env() -> dict[str, str]:
    return local_stack.parse_env(env_text())


def named_by_env() -> dict[str, tuple[str, str]]:
    """logical id -> (variable, value) of the functions.env variables the template fills
    from a resource it creates locally."""
    _, sam = transformed()
    found = {}
    for variable, value in local_stack.function_variables(sam):
        refs = list(local_stack.references(value))
        kind = sam["Resources"].get(refs[0], {}).get("Type") if len(refs) == 1 else None
        if kind in local_stack.STACK_TYPES or kind in local_stack.API_TYPES:
            found[refs[0]] = (variable, env()[variable])
    return found


def without_metadata(value: Any) -> Any:
    """An API answer without its ResponseMetadata (request ids differ on every call)."""
    if isinstance(value, dict):
        return {k: without_metadata(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [without_metadata(v) for v in value]
    return value


class DerivationTest(unittest.TestCase):
    """What template.yaml becomes on the local stack (no emulator needed)."""

    def test_every_resource_is_created_or_listed_with_the_reason_it_is_not(self) -> None:
        _, sam = transformed()
        template = derived().template
        in_stack = set(template["Resources"])
        by_api = set(local(template)["ApiResources"])
        not_created = {item["LogicalId"]: item["Reason"] for item in local(template)["NotCreated"]}
        for logical, resource in sam["Resources"].items():
            places = [logical in in_stack, logical in by_api, logical in not_created]
            self.assertEqual(places.count(True), 1, f"{logical} ({resource['Type']}): {places}")
            if logical in not_created:
                self.assertTrue(not_created[logical].strip(), logical)
        additions = in_stack - set(sam["Resources"])
        self.assertEqual(additions, {"ConfigBackupKeyLocalAlias"})
        kinds = {r["Type"] for r in sam["Resources"].values()}
        for kind in ("AWS::DynamoDB::Table", "AWS::SNS::Topic", "AWS::SQS::Queue", "AWS::S3::Bucket",
                     "AWS::SecretsManager::Secret", "AWS::StepFunctions::StateMachine"):
            self.assertIn(kind, kinds)
            self.assertNotIn(kind, local_stack.NOT_CREATED)

    def test_the_stack_resources_keep_the_templates_properties(self) -> None:
        _, sam = transformed()
        template = derived().template
        named = named_by_env()
        for logical, resource in template["Resources"].items():
            if logical not in sam["Resources"]:
                continue
            props = dict(resource["Properties"])
            if logical in named:
                props.pop(local_stack.STACK_TYPES[resource["Type"]] or "", None)
            want = dict(sam["Resources"][logical].get("Properties", {}))
            if resource["Type"] == "AWS::KMS::Key":
                props.pop("KeyPolicy")
                want.pop("KeyPolicy")
            self.assertEqual(props, want, logical)

    def test_the_catalog_table_has_the_key_schema_and_indexes_written_in_template_yaml(self) -> None:
        written = cfn_yaml.load(str(TEMPLATE))["Resources"]["CatalogTable"]["Properties"]
        table = derived().template["Resources"]["CatalogTable"]["Properties"]
        for prop in ("KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes", "BillingMode"):
            self.assertEqual(json.dumps(table[prop]), json.dumps(local_stack.plain(written[prop])), prop)

    def test_resources_are_named_as_functions_env_names_them(self) -> None:
        template = derived().template
        every = {**template["Resources"], **local(template)["ApiResources"]}
        named = named_by_env()
        self.assertTrue({"CatalogTable", "AlertsTopic", "DrReportsBucket", "ConfirmSigningKeySecret",
                         "DrStateMachine", "BackupObjectsStateMachine", "ConfigBackupKey"} <= set(named))
        for logical, (variable, value) in named.items():
            kind = every[logical]["Type"]
            if kind == "AWS::KMS::Key":
                alias = template["Resources"][f"{logical}LocalAlias"]["Properties"]
                self.assertEqual(alias, {"AliasName": value, "TargetKeyId": {"Ref": logical}}, variable)
                continue
            prop = local_stack.STACK_TYPES.get(kind) or local_stack.API_TYPES[kind][0]
            self.assertEqual(every[logical]["Properties"][prop], value.split(":")[-1], variable)

    def test_state_machines_run_the_asl_of_infra_calling_the_local_functions(self) -> None:
        machines = local(derived().template)["ApiResources"]
        written = cfn_yaml.load(str(TEMPLATE))["Resources"]
        for logical in ("DrStateMachine", "BackupObjectsStateMachine"):
            text, variables = machines[logical]["Properties"]["DefinitionString"]["Fn::Sub"]
            uri = written[logical]["Properties"]["DefinitionUri"]
            self.assertEqual(text, (TEMPLATE.parent / uri).read_text())
            self.assertEqual(variables["AlertsTopicArn"], {"Ref": "AlertsTopic"})
            functions = [v for k, v in variables.items() if k.endswith("FunctionArn")]
            self.assertTrue(functions)
            for arn in functions:
                self.assertRegex(arn, r"^arn:aws:lambda:us-east-1:123456789012:function:[a-z-]+$")

    def test_outputs_point_at_the_local_stack(self) -> None:
        template = derived().template
        outputs = template["Outputs"]
        self.assertEqual(outputs["AdminApiUrl"]["Value"], f"http://127.0.0.1:{API_PORT}/v1")
        self.assertEqual(outputs["DashboardUrl"]["Value"], f"http://127.0.0.1:{MOTO_PORT}/_lifeboat/dashboard/")
        self.assertEqual(outputs["CatalogTableName"]["Value"], {"Ref": "CatalogTable"})
        self.assertIn("SnapshotExportRoleArn", local(template)["OmittedOutputs"])

    def test_a_resource_type_nobody_decided_on_is_an_error(self) -> None:
        written, sam = transformed()
        changed = copy.deepcopy(sam)
        changed["Resources"]["NewThing"] = {"Type": "AWS::Kinesis::Stream", "Properties": {}}
        with self.assertRaisesRegex(DerivationError, "NewThing: AWS::Kinesis::Stream"):
            derived(written, changed)

    def test_a_created_resource_referring_to_what_is_not_created_is_an_error(self) -> None:
        written, sam = transformed()
        changed = copy.deepcopy(sam)
        changed["Resources"]["AlertsTopic"]["Properties"]["DisplayName"] = {"Ref": "AdminApi"}
        with self.assertRaisesRegex(DerivationError, "AlertsTopic refers to AdminApi"):
            derived(written, changed)

    def test_every_local_principal_has_its_role_in_admin_roles(self) -> None:
        roles = json.loads(env()["ADMIN_ROLES"])
        for principal in PRINCIPALS:
            granted = [role for pattern, role in roles.items() if fnmatch.fnmatchcase(principal.arn, pattern)]
            self.assertTrue(granted, principal.arn)
            if principal.role in ("viewer", "operator", "admin"):
                self.assertEqual(granted, [principal.role], principal.arn)


class DeploymentTest(unittest.TestCase):
    """provision.py against a moto server (Step Functions execution on, as the launcher has it)."""

    server: Any
    emulator: provision.Emulator
    first: list[str]

    @classmethod
    def setUpClass(cls) -> None:
        from moto.moto_api._internal.models import moto_api_backend
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        enable_step_functions_execution()
        cls.addClassCleanup(moto_api_backend.set_config, {"stepfunctions": {"execute_state_machine": False}})
        cls.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        cls.server.start()
        cls.addClassCleanup(cls.server.stop)
        host, port = cls.server.get_host_and_port()
        cls.emulator = provision.Emulator(f"http://{host}:{port}", "us-east-1")
        cls.first = provision.provision(cls.emulator, derived().inputs, derived)

    def again(self, inputs: str | None = None) -> tuple[list[str], list[str]]:
        """Another run (derive must not be needed); (its lines, the calls it made)."""
        def refuse() -> Derived:
            raise AssertionError("a deployed stack was derived again")

        before = len(self.emulator.calls)
        lines = provision.provision(self.emulator, inputs or derived().inputs, refuse)
        return lines, self.emulator.calls[before:]

    def snapshot(self) -> str:
        """Everything the deployment made, as the APIs describe it."""
        em = self.emulator
        cfn, ddb, s3, sm, sfn, kms = (em(s) for s in ("cloudformation", "dynamodb", "s3", "secretsmanager",
                                                      "stepfunctions", "kms"))
        sns, sqs = em("sns"), em("sqs")
        state: dict[str, Any] = {
            "stack": cfn.describe_stacks(StackName="lifeboat")["Stacks"],
            "resources": cfn.describe_stack_resources(StackName="lifeboat")["StackResources"],
            "tables": [ddb.describe_table(TableName=t)["Table"] for t in ddb.list_tables()["TableNames"]],
            "pitr": ddb.describe_continuous_backups(TableName="lifeboat-catalog"),
            "ttl": ddb.describe_time_to_live(TableName="lifeboat-catalog"),
            "topics": [sns.get_topic_attributes(TopicArn=t["TopicArn"])["Attributes"] for t in sns.list_topics()["Topics"]],
            "queues": [sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["All"])["Attributes"]
                       for q in sqs.list_queues().get("QueueUrls", [])],
            "buckets": [(b["Name"], s3.get_bucket_versioning(Bucket=b["Name"]).get("Status"),
                         s3.get_public_access_block(Bucket=b["Name"])["PublicAccessBlockConfiguration"],
                         s3.get_bucket_ownership_controls(Bucket=b["Name"])["OwnershipControls"])
                        for b in s3.list_buckets()["Buckets"]],
            "secrets": [sm.describe_secret(SecretId=s["ARN"]) for s in sm.list_secrets()["SecretList"]],
            "machines": [sfn.describe_state_machine(stateMachineArn=m["stateMachineArn"])
                         for m in sfn.list_state_machines()["stateMachines"]],
            "keys": [kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"] for k in kms.list_keys()["Keys"]],
            "aliases": kms.list_aliases()["Aliases"],
        }
        return json.dumps(without_metadata(state), default=str, sort_keys=True, indent=0)

    def test_the_first_run_creates_the_resources_and_says_so(self) -> None:
        self.assertEqual(self.first[0].split(",")[1].split()[0], "created")
        for name in ("lifeboat-catalog", "lifeboat-alerts", "lifeboat-dr-reports", "lifeboat/confirm-signing-key",
                     "lifeboat-dr", "lifeboat-backup-objects", "alias/lifeboat-config", "lifeboat-FunctionsDlq-"):
            self.assertTrue(any(name in line and " created " in line for line in self.first), name)
        self.assertEqual(sum(" principal " in line for line in self.first), len(PRINCIPALS))

    def test_a_second_run_changes_nothing_and_says_what_is_there(self) -> None:
        before = self.snapshot()
        lines, calls = self.again()
        self.assertEqual(self.snapshot(), before)
        self.assertIn("already there", lines[0])
        writes = [c for c in calls if not c.split(":")[1].startswith(READ_ONLY)]
        self.assertEqual(writes, [], "a run on a deployed stack must only read")
        self.assertEqual([line.replace("already there", "created      ") for line in lines[1:]],
                         [line for line in self.first[1:]])

    def test_changed_inputs_are_reported_and_the_stack_left_alone(self) -> None:
        before = self.snapshot()
        lines, calls = self.again(inputs="something-else")
        self.assertEqual(self.snapshot(), before)
        self.assertTrue(any("make down up" in line for line in lines))
        self.assertFalse([c for c in calls if not c.split(":")[1].startswith(READ_ONLY)])

    def test_what_moto_cloudformation_drops_is_set(self) -> None:
        ddb, s3 = self.emulator("dynamodb"), self.emulator("s3")
        pitr = ddb.describe_continuous_backups(TableName="lifeboat-catalog")["ContinuousBackupsDescription"]
        self.assertEqual(pitr["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"], "ENABLED")
        ttl = ddb.describe_time_to_live(TableName="lifeboat-catalog")["TimeToLiveDescription"]
        self.assertEqual((ttl["TimeToLiveStatus"], ttl["AttributeName"]), ("ENABLED", "expires_at"))
        self.assertEqual(s3.get_bucket_versioning(Bucket="lifeboat-dr-reports")["Status"], "Enabled")
        block = s3.get_public_access_block(Bucket="lifeboat-dr-reports")["PublicAccessBlockConfiguration"]
        self.assertTrue(all(block.values()))

    def test_functions_env_names_resources_that_exist(self) -> None:
        em = self.emulator
        describe = {
            "AWS::DynamoDB::Table": lambda v: em("dynamodb").describe_table(TableName=v),
            "AWS::SNS::Topic": lambda v: em("sns").get_topic_attributes(TopicArn=v),
            "AWS::S3::Bucket": lambda v: em("s3").head_bucket(Bucket=v),
            "AWS::KMS::Key": lambda v: em("kms").describe_key(KeyId=v),
            "AWS::SecretsManager::Secret": lambda v: em("secretsmanager").describe_secret(SecretId=v),
            "AWS::StepFunctions::StateMachine": lambda v: em("stepfunctions").describe_state_machine(stateMachineArn=v),
        }
        _, sam = transformed()
        for logical, (variable, value) in named_by_env().items():
            with self.subTest(variable=variable):
                describe[sam["Resources"][logical]["Type"]](value)

    def test_the_signing_key_is_generated_as_the_template_asks(self) -> None:
        value = self.emulator("secretsmanager").get_secret_value(SecretId="lifeboat/confirm-signing-key")["SecretString"]
        # Checked, never printed.
        self.assertTrue(len(value) == 64 and value.isalnum(), "not 64 alphanumeric characters")

    def test_state_machines_name_the_local_functions_and_topic(self) -> None:
        sfn = self.emulator("stepfunctions")
        arn = "arn:aws:states:us-east-1:123456789012:stateMachine:lifeboat-dr"
        text = sfn.describe_state_machine(stateMachineArn=arn)["definition"]
        self.assertNotIn("${", text)
        self.assertIn("arn:aws:lambda:us-east-1:123456789012:function:run-dr-step", text)
        self.assertIn("arn:aws:sns:us-east-1:123456789012:lifeboat-alerts", text)

    def test_the_stack_has_the_templates_outputs(self) -> None:
        stack_ = self.emulator("cloudformation").describe_stacks(StackName="lifeboat")["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack_["Outputs"]}
        self.assertEqual(outputs["AdminApiUrl"], f"http://127.0.0.1:{API_PORT}/v1")
        self.assertEqual(outputs["CatalogTableName"], "lifeboat-catalog")
        self.assertEqual(outputs["DrStateMachineArn"], "arn:aws:states:us-east-1:123456789012:stateMachine:lifeboat-dr")


if __name__ == "__main__":
    unittest.main()
