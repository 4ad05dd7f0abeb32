"""The deployed wiring, proven offline: IAM of the SAM-transformed template.yaml.

Usage: check.py [template.yaml]

Transforms the template with the SAM translator (infra/checkov/transform.py), resolves
it for a fixed account, region and stack name under two parameter sets (the defaults, and
every optional feature configured), and evaluates with an IAM policy simulator
(@cloud-copilot/iam-simulate, run by simulate.mjs; every condition operator, request
context keys as the real call carries them, KMS key policies, trust policies, Lambda
resource policies) that

- every EventBridge Scheduler schedule's role may invoke its target and write its
  KMS-encrypted dead-letter queue (and the key policy lets it use the key), and the
  scheduler may assume the role;
- every function's on-failure destination can be written by the function's role;
- every state machine's role may invoke each function (and publish to each topic) its
  definition names;
- API Gateway may invoke the function behind every route of the API;
- EventBridge may invoke the function every rule targets;
- a function may invoke the function or start the state machine its environment names;
- each function can still do the destructive work it exists for, on what Lifeboat made;
- no role may delete or modify a database, cluster, snapshot, table, backup, archive,
  parameter or DNS zone Lifeboat did not create, bypass S3 governance retention, or share
  a snapshot with an account no parameter names.

Prints one line per request (invoker, action, target, expected, result) and exits 1 when
any result differs from what is expected.
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
sys.path.insert(0, str(HERE.parent / "checkov"))

from resolve import Resolver, Unresolvable  # noqa: E402

ACCOUNT = "123456789012"
REGION = "us-east-1"
STACK = "lifeboat"
OTHER_REGION = "eu-west-1"
UNNAMED_ACCOUNT = "999988887777"
SHARE_ACCOUNT = "210987654321"
DR_KEY = f"arn:aws:kms:us-west-2:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555"

# Every optional part of the stack deployed, with example values.
CONFIGURED = {
    "ArchiveVaultName": "lifeboat-archive",
    "DrKmsKeys": f"us-west-2={DR_KEY}",
    "DrKmsKeyArns": DR_KEY,
    "DrDrillPlan": "orders",
    "AlertEmail": "ops@example.com",
    "TableExportBucket": "lifeboat-exports-123456789012-{region}",
}
OPTIONAL_CONFIGURED = {
    "DrHostedZoneIds": "Z0123456789ABC",
    "SnapshotShareAccounts": SHARE_ACCOUNT,
}

# AWS managed policies SAM attaches, as AWS publishes them. A role with any other
# managed policy fails the check (its document is unknown here).
MANAGED_POLICIES = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": "*",
            }
        ],
    },
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess": {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "xray:PutTraceSegments",
                    "xray:PutTelemetryRecords",
                    "xray:GetSamplingRules",
                    "xray:GetSamplingTargets",
                    "xray:GetSamplingStatisticSummaries",
                ],
                "Resource": ["*"],
            }
        ],
    },
}

LIFEBOAT_TAGS = {"lifeboat:created-by": "lifeboat"}
FOREIGN_TAGS = {"team": "orders", "env": "production"}

RDS_TAG_KEY = {"db": "rds:db-tag", "cluster": "rds:cluster-tag", "snapshot": "rds:snapshot-tag",
               "cluster-snapshot": "rds:cluster-snapshot-tag"}


def resource_tags(arn: str, tags: dict[str, str]) -> dict[str, str]:
    """The resource-tag context keys AWS fills in for a request on `arn` tagged `tags`."""
    ctx = {f"aws:ResourceTag/{k}": v for k, v in tags.items()}
    parts = arn.split(":")
    if len(parts) > 5 and parts[2] == "rds" and parts[5] in RDS_TAG_KEY:
        ctx.update({f"{RDS_TAG_KEY[parts[5]]}/{k}": v for k, v in tags.items()})
    return ctx


def request_tags(tags: dict[str, str]) -> dict[str, object]:
    ctx: dict[str, object] = {f"aws:RequestTag/{k}": v for k, v in tags.items()}
    ctx["aws:TagKeys"] = sorted(tags)
    return ctx


def region_of(arn: str) -> str:
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 and parts[3] else REGION


@dataclass
class Case:
    section: str
    invoker: str
    action: str
    resource: str
    allow: bool
    principal: str = ""
    identity: list = field(default_factory=list)
    resource_policy: dict | None = None
    context: dict = field(default_factory=dict)
    note: str = ""
    accepted: str = ""  # an allow IAM cannot narrow further, with the reason
    result: str = ""


class Lazy(dict):
    """Deployed resources, each resolved when first used (a resource the check never
    reads, such as the dashboard's, need not be resolvable)."""

    def __init__(self, resolver: Resolver):
        super().__init__()
        self.r = resolver

    def __missing__(self, key: str) -> dict:
        if key not in self.r.resources:
            raise KeyError(key)
        self[key] = value = self.r.resource(key)
        return value

    def __contains__(self, key: object) -> bool:
        return key in self.r.resources

    def keys(self):
        return self.r.resources.keys()

    def __iter__(self):
        return iter(self.r.resources)

    def items(self):
        return [(k, self[k]) for k in self.r.resources]

    def of_type(self, t: str):
        return [(k, self[k]) for k, v in self.r.resources.items() if v["Type"] == t]


class Stack:
    """The resolved template: roles with their policies, and lookups."""

    def __init__(self, original: dict, transformed: dict, params: dict[str, str], base: Path):
        self.original = original
        self.base = base
        self.r = Resolver(transformed, params, ACCOUNT, REGION, STACK)
        self.res = Lazy(self.r)
        self.roles: dict[str, dict] = {}
        for k, v in self.res.of_type("AWS::IAM::Role"):
            self.roles[self.r.get_att(k, "Arn")] = {"logical": k, "name": self.r.ref(k), "props": v["Properties"]}
        self.policies: dict[str, list] = {arn: self._identity(role) for arn, role in self.roles.items()}

    def _identity(self, role: dict) -> list:
        props = role["props"]
        out = []
        for p in props.get("Policies", []):
            out.append({"name": f"{role['logical']}/{p['PolicyName']}", "policy": p["PolicyDocument"]})
        for arn in props.get("ManagedPolicyArns", []):
            doc = MANAGED_POLICIES.get(arn)
            if doc is None:
                raise Unresolvable(f"{role['logical']}: managed policy {arn} is not known to the check")
            out.append({"name": arn.rsplit("/", 1)[-1], "policy": doc})
        for k, v in self.res.of_type("AWS::IAM::Policy") + self.res.of_type("AWS::IAM::ManagedPolicy"):
            if role["name"] in v["Properties"].get("Roles", []):
                out.append({"name": k, "policy": v["Properties"]["PolicyDocument"]})
        return out

    def of_type(self, t: str):
        return self.res.of_type(t)

    def role(self, arn: str) -> dict:
        if arn not in self.roles:
            raise Unresolvable(f"role {arn} is not a role of this stack")
        return self.roles[arn]

    def session(self, role_arn: str) -> str:
        return f"arn:aws:sts::{ACCOUNT}:assumed-role/{self.role(role_arn)['name']}/lifeboat-check"

    def function_arn(self, ref: str) -> str:
        """A function's ARN from its name, ARN or partial ARN."""
        if ref.startswith("arn:"):
            return ref
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{ref}"

    def functions(self) -> dict[str, str]:
        """function ARN -> logical id."""
        return {self.r.get_att(k, "Arn"): k for k, _ in self.of_type("AWS::Lambda::Function")}

    def key_for(self, key_ref: str) -> tuple[str, dict] | None:
        """(key ARN, key policy) of a KMS key given by id, ARN or alias; None for AWS
        managed keys (alias/aws/...), whose key policies admit the account's principals."""
        if key_ref.startswith("alias/aws/"):
            return None
        for k, v in self.of_type("AWS::KMS::Alias"):
            if v["Properties"].get("AliasName") == key_ref:
                key_ref = v["Properties"]["TargetKeyId"]
        for k, v in self.of_type("AWS::KMS::Key"):
            attrs = self.r.attributes(k)
            if key_ref in (attrs["Ref"], attrs["Arn"]):
                return attrs["Arn"], v["Properties"]["KeyPolicy"]
        raise Unresolvable(f"KMS key {key_ref} is not a key of this stack")

    def lambda_resource_policy(self, fn_arn: str) -> dict | None:
        name = fn_arn.rsplit(":", 1)[-1]
        statements = []
        for k, v in self.of_type("AWS::Lambda::Permission"):
            p = v["Properties"]
            if p["FunctionName"] not in (name, fn_arn):
                continue
            principal = p["Principal"]
            st = {
                "Sid": k,
                "Effect": "Allow",
                "Principal": {"Service": principal} if principal.endswith(".amazonaws.com") else {"AWS": principal},
                "Action": p["Action"],
                "Resource": fn_arn,
            }
            cond = {}
            if "SourceArn" in p:
                cond["ArnLike"] = {"AWS:SourceArn": p["SourceArn"]}
            if "SourceAccount" in p:
                cond["StringEquals"] = {"AWS:SourceAccount": p["SourceAccount"]}
            if cond:
                st["Condition"] = cond
            statements.append(st)
        return {"Version": "2012-10-17", "Statement": statements} if statements else None


class Checker:
    def __init__(self, stack: Stack, profile: str):
        self.s = stack
        self.profile = profile
        self.cases: list[Case] = []

    # --- building blocks -----------------------------------------------------------
    def as_role(self, section, invoker, role_arn, action, resource, allow=True, context=None, resource_policy=None, note="", accepted=""):
        ctx = {
            "aws:RequestedRegion": region_of(resource),
            "aws:PrincipalArn": role_arn,
            "aws:PrincipalAccount": ACCOUNT,
        }
        ctx.update(context or {})
        self.cases.append(Case(section, invoker, action, resource, allow, principal=self.s.session(role_arn),
                               identity=self.s.policies[role_arn], resource_policy=resource_policy,
                               context=ctx, note=note, accepted=accepted))

    def as_service(self, section, invoker, service, action, resource, resource_policy, context, allow=True, note=""):
        self.cases.append(Case(section, invoker, action, resource, allow, principal=service,
                               resource_policy=resource_policy, context=context, note=note))

    def trust(self, section, invoker, service, role_arn):
        trust = self.s.role(role_arn)["props"]["AssumeRolePolicyDocument"]
        self.as_service(section, invoker, service, "sts:AssumeRole", role_arn, trust,
                        {"aws:SourceAccount": ACCOUNT, "aws:RequestedRegion": REGION},
                        note=f"{service} assumes {self.s.role(role_arn)['logical']}")

    def use_key(self, section, invoker, role_arn, key_ref, service, context, actions=("kms:GenerateDataKey", "kms:Decrypt")):
        found = self.s.key_for(key_ref)
        if found is None:
            return
        key_arn, key_policy = found
        ctx = {"kms:ViaService": f"{service}.{REGION}.amazonaws.com", "kms:CallerAccount": ACCOUNT}
        ctx.update(context)
        for a in actions:
            self.as_role(section, invoker, role_arn, a, key_arn, context=ctx, resource_policy=key_policy,
                         note=f"key of the {service} resource (key policy and IAM)")

    def send_to_queue(self, section, invoker, role_arn, queue_arn):
        self.as_role(section, invoker, role_arn, "sqs:SendMessage", queue_arn)
        queue = next((v for k, v in self.s.of_type("AWS::SQS::Queue") if self.s.r.get_att(k, "Arn") == queue_arn), None)
        if queue is None:
            raise Unresolvable(f"{invoker}: dead-letter queue {queue_arn} is not a queue of this stack")
        key = queue["Properties"].get("KmsMasterKeyId")
        if key:
            self.use_key(section, invoker, role_arn, key, "sqs", {"kms:EncryptionContext:aws:sqs:arn": queue_arn})

    # --- the wiring --------------------------------------------------------------------
    def schedules(self):
        fns = self.s.functions()
        for k, v in self.s.of_type("AWS::Scheduler::Schedule"):
            t = v["Properties"]["Target"]
            role = t["RoleArn"]
            who = f"schedule {k}"
            self.trust("schedules", who, "scheduler.amazonaws.com", role)
            target = t["Arn"]
            if target in fns:
                self.as_role("schedules", who, role, "lambda:InvokeFunction", target,
                             resource_policy=self.s.lambda_resource_policy(target))
            elif ":states:" in target:
                self.as_role("schedules", who, role, "states:StartExecution", target)
            else:
                raise Unresolvable(f"{who}: target {target} is neither a function nor a state machine of this stack")
            dlq = t.get("DeadLetterConfig", {}).get("Arn")
            if dlq:
                self.send_to_queue("schedules", who, role, dlq)

    def execution_roles(self):
        for arn, k in self.s.functions().items():
            self.trust("functions", f"function {k}", "lambda.amazonaws.com", self.s.res[k]["Properties"]["Role"])

    def destinations(self):
        fns = self.s.functions()
        by_name = {self.s.r.ref(k): arn for arn, k in fns.items()}
        for k, v in self.s.of_type("AWS::Lambda::EventInvokeConfig"):
            p = v["Properties"]
            fn_arn = by_name.get(p["FunctionName"]) or p["FunctionName"]
            role = self.s.res[fns[fn_arn]]["Properties"]["Role"]
            dest = p.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            if dest and ":sqs:" in dest:
                self.send_to_queue("destinations", f"function {fns[fn_arn]} (on failure)", role, dest)

    def state_machines(self):
        for k, v in self.s.of_type("AWS::StepFunctions::StateMachine"):
            p = v["Properties"]
            role = p["RoleArn"]
            who = f"state machine {k}"
            self.trust("state machines", who, "states.amazonaws.com", role)
            definition = self.definition(k, p)
            for state, task in tasks(definition.get("States", {})):
                res = task["Resource"]
                params = task.get("Parameters") or task.get("Arguments") or {}
                if res.startswith("arn:aws:states:::lambda:invoke"):
                    fn = params.get("FunctionName")
                    if fn is None:
                        raise Unresolvable(f"{who}/{state}: FunctionName is not static")
                    self.as_role("state machines", f"{who} ({state})", role, "lambda:InvokeFunction", self.s.function_arn(fn))
                elif res.startswith("arn:aws:lambda:"):
                    self.as_role("state machines", f"{who} ({state})", role, "lambda:InvokeFunction", res)
                elif res == "arn:aws:states:::sns:publish":
                    topic = params.get("TopicArn")
                    if topic is None:
                        raise Unresolvable(f"{who}/{state}: TopicArn is not static")
                    self.as_role("state machines", f"{who} ({state})", role, "sns:Publish", topic)
                    t = next((tv for tk, tv in self.s.of_type("AWS::SNS::Topic") if self.s.r.ref(tk) == topic), None)
                    key = (t or {}).get("Properties", {}).get("KmsMasterKeyId")
                    if key:
                        self.use_key("state machines", f"{who} ({state})", role, key, "sns",
                                     {"kms:EncryptionContext:aws:sns:topicArn": topic})
                elif res.startswith("arn:aws:states:::states:startExecution"):
                    self.as_role("state machines", f"{who} ({state})", role, "states:StartExecution", params["StateMachineArn"])
                else:
                    raise Unresolvable(f"{who}/{state}: task resource {res} is not modelled by the check")

    def definition(self, logical: str, props: dict) -> dict:
        subs = {k: str(v) for k, v in props.get("DefinitionSubstitutions", {}).items()}
        if "DefinitionString" in props:
            text = props["DefinitionString"]
        elif "Definition" in props:
            text = json.dumps(props["Definition"])
        else:
            uri = self.s.original["Resources"][logical]["Properties"].get("DefinitionUri")
            if not isinstance(uri, str):
                raise Unresolvable(f"state machine {logical}: no definition the check can read")
            text = (self.s.base / uri).read_text(encoding="utf-8")

        def sub(m):
            name = m.group(1)
            if name not in subs:
                raise Unresolvable(f"state machine {logical}: ${{{name}}} has no substitution")
            return subs[name]

        import re
        return json.loads(re.sub(r"\$\{([A-Za-z0-9_]+)\}", sub, text))

    def api(self):
        fns = self.s.functions()
        stages = {}
        for k, v in self.s.of_type("AWS::ApiGateway::Stage"):
            stages[v["Properties"]["RestApiId"]] = v["Properties"]["StageName"]
        for k, v in self.s.of_type("AWS::ApiGateway::RestApi"):
            api_id = self.s.r.ref(k)
            stage = stages.get(api_id)
            if stage is None:
                raise Unresolvable(f"API {k} has no stage")
            for path, methods in v["Properties"].get("Body", {}).get("paths", {}).items():
                for method, op in methods.items():
                    integ = op.get("x-amazon-apigateway-integration") if isinstance(op, dict) else None
                    if not integ or integ.get("type") == "mock":
                        continue
                    uri = integ["uri"]
                    if "/functions/" not in uri:
                        raise Unresolvable(f"API {k} {method} {path}: integration {uri} is not modelled")
                    fn_arn = uri.split("/functions/", 1)[1].rsplit("/invocations", 1)[0]
                    if fn_arn not in fns:
                        raise Unresolvable(f"API {k} {method} {path}: {fn_arn} is not a function of this stack")
                    verb = "GET" if method == "x-amazon-apigateway-any-method" else method.upper()
                    source = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/{stage}/{verb}{path}"
                    who = f"API {k} {verb} {path}"
                    creds = integ.get("credentials")
                    if creds:
                        self.trust("api", who, "apigateway.amazonaws.com", creds)
                        self.as_role("api", who, creds, "lambda:InvokeFunction", fn_arn)
                    else:
                        self.as_service("api", who, "apigateway.amazonaws.com", "lambda:InvokeFunction", fn_arn,
                                        self.s.lambda_resource_policy(fn_arn),
                                        {"aws:SourceArn": source, "aws:SourceAccount": ACCOUNT,
                                         "aws:RequestedRegion": REGION})

    def rules(self):
        """EventBridge may invoke the function every rule of the default bus targets."""
        fns = self.s.functions()
        for k, v in self.s.of_type("AWS::Events::Rule"):
            rule_arn = self.s.r.get_att(k, "Arn")
            for target in v["Properties"].get("Targets", []):
                fn_arn = target["Arn"]
                if fn_arn not in fns:
                    raise Unresolvable(f"rule {k}: target {fn_arn} is not a function of this stack")
                self.as_service("rules", f"rule {k}", "events.amazonaws.com", "lambda:InvokeFunction", fn_arn,
                                self.s.lambda_resource_policy(fn_arn),
                                {"aws:SourceArn": rule_arn, "aws:SourceAccount": ACCOUNT,
                                 "aws:RequestedRegion": REGION})

    def environment(self):
        fns = self.s.functions()
        names = {self.s.r.ref(k): arn for arn, k in fns.items()}
        machines = {self.s.r.ref(k) for k, _ in self.s.of_type("AWS::StepFunctions::StateMachine")}
        for arn, k in fns.items():
            props = self.s.res[k]["Properties"]
            role = props["Role"]
            for var, value in props.get("Environment", {}).get("Variables", {}).items():
                who = f"function {k} (${var})"
                if value in names or (value in fns and value != arn):
                    self.as_role("environment", who, role, "lambda:InvokeFunction", names.get(value, value))
                elif value in machines:
                    self.as_role("environment", who, role, "states:StartExecution", value)

    # --- what the functions must still do on what Lifeboat made ----------------------
    def own_work(self, params: dict):
        fns = {k: v["Properties"]["Role"] for k, v in self.s.of_type("AWS::Lambda::Function")}
        dr = params["DrRegions"][0]
        own_db = lambda prefix, region=dr: f"arn:aws:rds:{region}:{ACCOUNT}:db:{prefix}-1a2b3c4d-orders"  # noqa: E731
        own_cluster = lambda prefix, region=dr: f"arn:aws:rds:{region}:{ACCOUNT}:cluster:{prefix}-1a2b3c4d-ledger"  # noqa: E731
        tagged = resource_tags
        if "RunDrStepFunction" in fns:
            role = fns["RunDrStepFunction"]
            w = "function RunDrStepFunction"
            for prefix, region in (("lbdr", dr), ("lbfo", dr), ("lbfb", REGION)):
                db, cl = own_db(prefix, region), own_cluster(prefix, region)
                self.as_role("own work", w, role, "rds:RestoreDBInstanceFromDBSnapshot", db, context=request_tags(LIFEBOAT_TAGS))
                self.as_role("own work", w, role, "rds:RestoreDBClusterFromSnapshot", cl, context=request_tags(LIFEBOAT_TAGS))
                self.as_role("own work", w, role, "rds:AddTagsToResource", db, context=request_tags(LIFEBOAT_TAGS))
                self.as_role("own work", w, role, "rds:DeleteDBInstance", db, context=tagged(db, LIFEBOAT_TAGS))
                self.as_role("own work", w, role, "rds:DeleteDBCluster", cl, context=tagged(cl, LIFEBOAT_TAGS))
            snap = f"arn:aws:rds:{dr}:{ACCOUNT}:snapshot:lbfbs-1a2b3c4d-orders"
            self.as_role("own work", w, role, "rds:CreateDBSnapshot", snap, context=request_tags(LIFEBOAT_TAGS))
            self.as_role("own work", w, role, "rds:DeleteDBSnapshot", snap, context=tagged(snap, LIFEBOAT_TAGS))
            pre = f"arn:aws:rds:{REGION}:{ACCOUNT}:snapshot:lbpre-1a2b3c4d-orders"
            self.as_role("own work", w, role, "rds:CreateDBSnapshot", pre, context=request_tags(LIFEBOAT_TAGS))
            self.as_role("own work", w, role, "rds:CreateDBSnapshot", f"arn:aws:rds:{REGION}:{ACCOUNT}:db:orders",
                         context={**request_tags(LIFEBOAT_TAGS), **tagged(f"arn:aws:rds:{REGION}:{ACCOUNT}:db:orders", {"lifeboat:policy": "gold"})})
            path = params.get("DrSwitchParameterPath")
            if isinstance(path, str):
                param = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{path}orders/db/endpoint"
                for a in ("ssm:GetParameter", "ssm:PutParameter", "ssm:DeleteParameter"):
                    self.as_role("own work", w, role, a, param)
            zones = [z for z in params.get("DrHostedZoneIds", []) if z]
            for z in zones:
                self.as_role("own work", w, role, "route53:ChangeResourceRecordSets", f"arn:aws:route53:::hostedzone/{z}",
                             context={"route53:ChangeResourceRecordSetsRecordTypes": ["CNAME"],
                                      "route53:ChangeResourceRecordSetsActions": ["UPSERT"]})
        if "RunDrStepFunction" in fns:
            role, w = fns["RunDrStepFunction"], "function RunDrStepFunction"
            # An Aurora restore's writer instance, created in the restored cluster.
            for arn in (f"arn:aws:rds:{dr}:{ACCOUNT}:db:lbdr-1a2b3c4d-ledger-1", own_cluster("lbdr")):
                self.as_role("own work", w, role, "rds:CreateDBInstance", arn, context=request_tags(LIFEBOAT_TAGS))
            # Failback: the DR side's final snapshot copied back to the source region.
            for region in (dr, REGION):
                copy = f"arn:aws:rds:{region}:{ACCOUNT}:snapshot:lbfbs-1a2b3c4d-orders"
                self.as_role("own work", w, role, "rds:CopyDBSnapshot", copy, context=request_tags(LIFEBOAT_TAGS))
            final = f"arn:aws:rds:{dr}:{ACCOUNT}:cluster-snapshot:lbdr-1a2b3c4d-ledger-final"
            self.as_role("own work", w, role, "rds:DeleteDBCluster", final)
            cs = f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster-snapshot:lbfbs-1a2b3c4d-ledger"
            self.as_role("own work", w, role, "rds:DeleteDBClusterSnapshot", cs, context=tagged(cs, LIFEBOAT_TAGS))
        if "CreateSnapshotsFunction" in fns:
            role, w = fns["CreateSnapshotsFunction"], "function CreateSnapshotsFunction"
            src = f"arn:aws:rds:{REGION}:{ACCOUNT}:db:orders"
            snap = f"arn:aws:rds:{REGION}:{ACCOUNT}:snapshot:lb-gold-orders-20261123-1800"
            for arn in (src, snap):
                self.as_role("own work", w, role, "rds:CreateDBSnapshot", arn, context=request_tags(LIFEBOAT_TAGS))
            self.as_role("own work", w, role, "rds:AddTagsToResource", snap, context=request_tags(LIFEBOAT_TAGS))
        if "CopySnapshotsFunction" in fns:
            role, w = fns["CopySnapshotsFunction"], "function CopySnapshotsFunction"
            copy = f"arn:aws:rds:{dr}:{ACCOUNT}:snapshot:lb-gold-orders-20261123-1800"
            self.as_role("own work", w, role, "rds:CopyDBSnapshot", copy, context=request_tags(LIFEBOAT_TAGS))
            self.as_role("own work", w, role, "rds:AddTagsToResource", copy, context=request_tags(LIFEBOAT_TAGS))
        if "TestRestoresFunction" in fns:
            role, w = fns["TestRestoresFunction"], "function TestRestoresFunction"
            for region in (REGION, dr):
                rds = f"arn:aws:rds:{region}:{ACCOUNT}"
                db, cl, writer = f"{rds}:db:lbrt-0123456789abcdef", f"{rds}:cluster:lbrt-0123456789abcdef", f"{rds}:db:lbrt-0123456789abcdef-w"
                snap, csnap = f"{rds}:snapshot:lb-gold-orders-20261123-1800", f"{rds}:cluster-snapshot:lb-gold-ledger-20261123-1800"
                net = f"{rds}:subgrp:restore-tests"
                for action, target in (("rds:RestoreDBInstanceFromDBSnapshot", db), ("rds:RestoreDBClusterFromSnapshot", cl),
                                       ("rds:CreateDBInstance", writer), ("rds:AddTagsToResource", db)):
                    self.as_role("own work", w, role, action, target, context=request_tags(LIFEBOAT_TAGS))
                    # Untagged, a test database could not be told from anyone's: refused.
                    self.as_role("own work", w, role, action, target, allow=False)
                for action, source in (("rds:RestoreDBInstanceFromDBSnapshot", snap), ("rds:RestoreDBInstanceFromDBSnapshot", net),
                                       ("rds:RestoreDBClusterFromSnapshot", csnap), ("rds:RestoreDBClusterFromSnapshot", net)):
                    self.as_role("own work", w, role, action, source)
                for action, target in (("rds:DeleteDBInstance", db), ("rds:DeleteDBInstance", writer), ("rds:DeleteDBCluster", cl)):
                    self.as_role("own work", w, role, action, target, context=tagged(target, LIFEBOAT_TAGS))
                # A database named like a test database but not Lifeboat's, and Lifeboat's
                # own DR databases: never deleted by restore tests.
                self.as_role("own work", w, role, "rds:DeleteDBInstance", db, allow=False, context=tagged(db, FOREIGN_TAGS))
                for other in (f"{rds}:db:lbdr-1a2b3c4d-orders", f"{rds}:cluster:lbfo-1a2b3c4d-ledger"):
                    action = "rds:DeleteDBInstance" if ":db:" in other else "rds:DeleteDBCluster"
                    self.as_role("own work", w, role, action, other, allow=False, context=tagged(other, LIFEBOAT_TAGS))
                key = f"arn:aws:kms:{region}:{ACCOUNT}:key/00000000-1111-2222-3333-444444444444"
                via = {"kms:ViaService": f"rds.{region}.amazonaws.com"}
                # A customer key's default key policy: the account's IAM policies decide.
                default = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*",
                                                                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}}]}
                self.as_role("own work", w, role, "kms:CreateGrant", key, context=via, resource_policy=default)
                self.as_role("own work", w, role, "kms:CreateGrant", key, allow=False, resource_policy=default)
            fn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function"
            self.as_role("own work", w, role, "lambda:InvokeFunction", f"{fn}:lifeboat-restore-validate-orders")
            self.as_role("own work", w, role, "lambda:InvokeFunction", f"{fn}:production-orders-api", allow=False)
        if "TrackRecoveryPointsFunction" in fns and [a for a in params.get("SnapshotShareAccounts", []) if a]:
            role, w = fns["TrackRecoveryPointsFunction"], "function TrackRecoveryPointsFunction"
            copy = f"arn:aws:rds:{dr}:{ACCOUNT}:snapshot:lb-gold-orders-20261123-1800"
            self.as_role("own work", w, role, "rds:ModifyDBSnapshotAttribute", copy, context=tagged(copy, LIFEBOAT_TAGS))
        if "ExpireRecoveryPointsFunction" in fns:
            role, w = fns["ExpireRecoveryPointsFunction"], "function ExpireRecoveryPointsFunction"
            for rp in (f"arn:aws:rds:{REGION}:{ACCOUNT}:snapshot:awsbackup:job-1a2b3c4d",
                       f"arn:aws:backup:{REGION}:{ACCOUNT}:recovery-point:1a2b3c4d"):
                self.as_role("own work", w, role, "backup:DeleteRecoveryPoint", rp)
        if "ExpireRecoveryPointsFunction" in fns:
            role = fns["ExpireRecoveryPointsFunction"]
            for region in (REGION, dr):
                snap = f"arn:aws:rds:{region}:{ACCOUNT}:snapshot:lb-gold-orders-20261123-1800"
                self.as_role("own work", "function ExpireRecoveryPointsFunction", role, "rds:DeleteDBSnapshot", snap,
                             context=tagged(snap, LIFEBOAT_TAGS))
        if "ExpireRecoveryPointsFunction" in fns:
            # Expired S3 runs and config bundles: versions under lifeboat/ in the backup
            # bucket, and nothing else there (no delete markers, no user keys).
            role, w = fns["ExpireRecoveryPointsFunction"], "function ExpireRecoveryPointsFunction"
            bucket = params["S3BackupBucketName"]
            copy = f"arn:aws:s3:::{bucket}/lifeboat/photos/2026-1a2b3c4d/data/lb-gold-photos-2026-1a2b3c4d-20261123-1800/2026/a.jpg"
            manifest = f"arn:aws:s3:::{bucket}/lifeboat/photos/2026-1a2b3c4d/manifests/lb-gold-photos-2026-1a2b3c4d-20261123-1800.jsonl.zst"
            for target in (copy, manifest):
                self.as_role("own work", w, role, "s3:GetObjectVersion", target)
                self.as_role("own work", w, role, "s3:DeleteObjectVersion", target)
                self.as_role("own work", w, role, "s3:DeleteObject", target, allow=False)
            self.as_role("own work", w, role, "s3:DeleteObjectVersion", f"arn:aws:s3:::{bucket}/exports/orders.parquet", allow=False)
            self.as_role("own work", w, role, "s3:BypassGovernanceRetention", copy, allow=False)
        # Tables' copies: exports into each DR region's export bucket, imported there.
        exports = params.get("TableExportBucket")
        if isinstance(exports, str) and exports:
            bucket = exports.replace("{region}", dr)
            copy_objects = f"arn:aws:s3:::{bucket}/lifeboat-table-exports/lb-gold-orders-20261123-1800/AWSDynamoDB/x/data/a.json.gz"
            table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orders"
            if "CopySnapshotsFunction" in fns:
                role, w = fns["CopySnapshotsFunction"], "function CopySnapshotsFunction"
                self.as_role("own work", w, role, "dynamodb:ExportTableToPointInTime", table)
                self.as_role("own work", w, role, "s3:PutObject", copy_objects)
            if "TrackRecoveryPointsFunction" in fns:
                role, w = fns["TrackRecoveryPointsFunction"], "function TrackRecoveryPointsFunction"
                self.as_role("own work", w, role, "dynamodb:DescribeExport", f"{table}/export/01700000000000-abc")
            if "ExpireRecoveryPointsFunction" in fns:
                role, w = fns["ExpireRecoveryPointsFunction"], "function ExpireRecoveryPointsFunction"
                self.as_role("own work", w, role, "s3:DeleteObject", copy_objects)
                # Nothing outside Lifeboat's prefix of the bucket.
                self.as_role("own work", w, role, "s3:DeleteObject", f"arn:aws:s3:::{bucket}/someone-elses/x", allow=False)
            if "RunDrStepFunction" in fns:
                role, w = fns["RunDrStepFunction"], "function RunDrStepFunction"
                for prefix in ("lbdr", "lbfo"):
                    target = f"arn:aws:dynamodb:{dr}:{ACCOUNT}:table/{prefix}-1a2b3c4d-orders"
                    self.as_role("own work", w, role, "dynamodb:ImportTable", target)
                    self.as_role("own work", w, role, "dynamodb:DescribeImport", f"{target}/import/01700000000000-abc")
                self.as_role("own work", w, role, "s3:GetObject", copy_objects)
                # Never an import over a table Lifeboat does not name.
                self.as_role("own work", w, role, "dynamodb:ImportTable",
                             f"arn:aws:dynamodb:{dr}:{ACCOUNT}:table/production-orders", allow=False)
        if "AdminApiFunction" in fns:
            role = fns["AdminApiFunction"]
            w = "function AdminApiFunction"
            target = f"arn:aws:rds:{REGION}:{ACCOUNT}:db:orders-restored"
            restored = request_tags({"lifeboat:restored-from": "lb-gold-orders-20261123-1800"})
            source = f"arn:aws:rds:{REGION}:{ACCOUNT}:snapshot:lb-gold-orders-20261123-1800"
            for arn in (target, source):
                self.as_role("own work", w, role, "rds:RestoreDBInstanceFromDBSnapshot", arn, context=restored)
            self.as_role("own work", w, role, "rds:AddTagsToResource", target, context=restored)
            # The pre-restore snapshot of a protected database (tagged with its policy).
            protected = f"arn:aws:rds:{REGION}:{ACCOUNT}:db:orders"
            pre = f"arn:aws:rds:{REGION}:{ACCOUNT}:snapshot:lb-pre-1a2b3c4d"
            pre_tags = request_tags({"lifeboat:pre-restore": "orders"})
            for arn in (protected, pre):
                self.as_role("own work", w, role, "rds:CreateDBSnapshot", arn,
                             context={**pre_tags, **tagged(protected, {"lifeboat:policy": "gold"})} if arn == protected else pre_tags)
            self.as_role("own work", w, role, "rds:AddTagsToResource", pre, context=pre_tags)
            # Overwrite by rename-and-swap: the protected target renamed aside, deleted (with
            # a final snapshot) once the operator finishes the restore.
            self.as_role("own work", w, role, "rds:ModifyDBInstance", protected,
                         context=tagged(protected, {"lifeboat:policy": "gold"}))
            aside = f"arn:aws:rds:{REGION}:{ACCOUNT}:db:orders-lbpre-1a2b3c4d"
            self.as_role("own work", w, role, "rds:DeleteDBInstance", aside, context=tagged(aside, {"lifeboat:policy": "gold"}))

    # --- what no role may do ----------------------------------------------------------------
    def probes(self, params: dict):
        regions = sorted({REGION, OTHER_REGION, params.get("S3BackupRegion", REGION), *params["DrRegions"]})
        catalog = next(self.s.r.get_att(k, "Arn") for k, _ in self.s.of_type("AWS::DynamoDB::Table"))
        backup_bucket = params["S3BackupBucketName"]
        protected_bucket = params["S3ProtectedBuckets"].replace("*", "orders").replace("?", "x")
        share_accounts = [a for a in params.get("SnapshotShareAccounts", []) if a]
        probes: list[tuple[str, str, dict, dict]] = []
        for r in regions:
            db = f"arn:aws:rds:{r}:{ACCOUNT}:db:production-orders"
            cl = f"arn:aws:rds:{r}:{ACCOUNT}:cluster:production-ledger"
            sn = f"arn:aws:rds:{r}:{ACCOUNT}:snapshot:someone-elses"
            cs = f"arn:aws:rds:{r}:{ACCOUNT}:cluster-snapshot:someone-elses-cluster"
            # A production database whose name looks like Lifeboat's: the tag decides.
            lookalike = f"arn:aws:rds:{r}:{ACCOUNT}:db:lbdr-lookalike-orders"
            for a in ("rds:DeleteDBInstance", "rds:ModifyDBInstance", "rds:RebootDBInstance", "rds:StopDBInstance"):
                probes.append((a, db, resource_tags(db, FOREIGN_TAGS), {}))
            for a in ("rds:DeleteDBInstance", "rds:ModifyDBInstance"):
                probes.append((a, lookalike, resource_tags(lookalike, FOREIGN_TAGS), {}))
            for a in ("rds:DeleteDBCluster", "rds:ModifyDBCluster", "rds:StopDBCluster"):
                probes.append((a, cl, resource_tags(cl, FOREIGN_TAGS), {}))
            for a in ("rds:DeleteDBSnapshot", "rds:ModifyDBSnapshot", "rds:ModifyDBSnapshotAttribute"):
                probes.append((a, sn, resource_tags(sn, FOREIGN_TAGS), {}))
            for a in ("rds:DeleteDBClusterSnapshot", "rds:ModifyDBClusterSnapshotAttribute"):
                probes.append((a, cs, resource_tags(cs, FOREIGN_TAGS), {}))
            # Tagging a foreign database as Lifeboat's would make it deletable.
            for target in (db, cl, sn):
                probes.append(("rds:AddTagsToResource", target, {**resource_tags(target, FOREIGN_TAGS), **request_tags(LIFEBOAT_TAGS)}, {}))
                probes.append(("rds:RemoveTagsFromResource", target, {**resource_tags(target, FOREIGN_TAGS), "aws:TagKeys": ["team"]}, {}))
            # Sharing a Lifeboat snapshot with an account no parameter names.
            for own in (f"arn:aws:rds:{r}:{ACCOUNT}:snapshot:lb-gold-orders-20261123-1800",
                        f"arn:aws:rds:{r}:{ACCOUNT}:cluster-snapshot:lb-gold-ledger-20261123-1800"):
                action = "rds:ModifyDBSnapshotAttribute" if ":snapshot:" in own else "rds:ModifyDBClusterSnapshotAttribute"
                accepted = {}
                if share_accounts:
                    accepted = {"TrackRecoveryPointsFunctionRole":
                                f"SnapshotShareAccounts names {','.join(share_accounts)}: RDS has no condition key for "
                                f"the account a snapshot is shared with, so IAM cannot refuse {UNNAMED_ACCOUNT}"}
                probes.append((action, own, resource_tags(own, LIFEBOAT_TAGS), accepted))
            # The PITR history of a database, and global databases.
            ab = f"arn:aws:rds:{r}:{ACCOUNT}:auto-backup:ab-someone-elses"
            probes.append(("rds:DeleteDBInstanceAutomatedBackup", ab, {}, {}))
            cab = f"arn:aws:rds:{r}:{ACCOUNT}:cluster-auto-backup:cluster-ab-someone-elses"
            probes.append(("rds:DeleteDBClusterAutomatedBackup", cab, {}, {}))
            # Keys that encrypt backups: deleting or disabling one makes them unreadable.
            for key in (f"arn:aws:kms:{r}:{ACCOUNT}:key/00000000-1111-2222-3333-444444444444",
                        *[k for k in params.get("DrKmsKeyArns", []) if k and region_of(k) == r]):
                probes.append(("kms:ScheduleKeyDeletion", key, {}, {}))
                probes.append(("kms:DisableKey", key, {}, {}))
            tbl = f"arn:aws:dynamodb:{r}:{ACCOUNT}:table/production-orders"
            for a in ("dynamodb:DeleteTable", "dynamodb:UpdateTable", "dynamodb:PutItem", "dynamodb:DeleteItem",
                      "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"):
                probes.append((a, tbl, resource_tags(tbl, FOREIGN_TAGS), {}))
            bk = f"{tbl}/backup/01700000000000-someone"
            probes.append(("dynamodb:DeleteBackup", bk, {}, {
                "ExpireRecoveryPointsFunctionRole":
                    "DynamoDB backups carry no tags and their ARNs no creator: the function deletes only "
                    "the lb- backups its catalog records"}))
            vault_reason = ("AWS Backup recovery points carry no creator IAM can check: the function deletes only "
                            "points whose backup job it started (job id recorded)")
            rp = f"arn:aws:backup:{r}:{ACCOUNT}:recovery-point:someone-elses"
            probes.append(("backup:DeleteRecoveryPoint", rp, resource_tags(rp, FOREIGN_TAGS),
                           {"ExpireRecoveryPointsFunctionRole": vault_reason}))
            rp_rds = f"arn:aws:rds:{r}:{ACCOUNT}:snapshot:awsbackup:job-someone-elses"
            probes.append(("backup:DeleteRecoveryPoint", rp_rds, resource_tags(rp_rds, FOREIGN_TAGS),
                           {"ExpireRecoveryPointsFunctionRole": vault_reason}))
            vault = f"arn:aws:backup:{r}:{ACCOUNT}:backup-vault:production-vault"
            probes.append(("backup:DeleteBackupVault", vault, {}, {}))
            gv = f"arn:aws:glacier:{r}:{ACCOUNT}:vaults/someone-elses-vault"
            probes.append(("glacier:DeleteArchive", gv, {}, {}))
            probes.append(("glacier:DeleteVault", gv, {}, {}))
            param = f"arn:aws:ssm:{r}:{ACCOUNT}:parameter/production/orders/db-password"
            probes.append(("ssm:PutParameter", param, {}, {}))
            probes.append(("ssm:DeleteParameter", param, {}, {}))
        probes.append(("dynamodb:DeleteTable", catalog, {}, {}))
        gc = f"arn:aws:rds::{ACCOUNT}:global-cluster:production-global"
        probes.append(("rds:DeleteGlobalCluster", gc, {"aws:RequestedRegion": REGION}, {}))
        probes.append(("rds:RemoveFromGlobalCluster", gc, {"aws:RequestedRegion": REGION}, {}))
        for key in self.s.of_type("AWS::KMS::Key"):
            probes.append(("kms:ScheduleKeyDeletion", self.s.r.get_att(key[0], "Arn"), {}, {}))
        for bucket in (f"arn:aws:s3:::{protected_bucket}", f"arn:aws:s3:::{backup_bucket}"):
            probes.append(("s3:DeleteBucket", bucket, {}, {}))
        zone = "arn:aws:route53:::hostedzone/ZFOREIGN00000000000"
        probes.append(("route53:ChangeResourceRecordSets", zone,
                       {"route53:ChangeResourceRecordSetsRecordTypes": ["CNAME"],
                        "route53:ChangeResourceRecordSetsActions": ["UPSERT"]}, {}))
        for obj in (f"arn:aws:s3:::{backup_bucket}/lifeboat/orders/data/x", f"arn:aws:s3:::{protected_bucket}/x",
                    "arn:aws:s3:::someone-elses-bucket/x"):
            probes.append(("s3:BypassGovernanceRetention", obj, {}, {}))
        for obj in (f"arn:aws:s3:::{protected_bucket}/x", "arn:aws:s3:::someone-elses-bucket/x"):
            probes.append(("s3:DeleteObjectVersion", obj, {}, {}))
            probes.append(("s3:DeleteObject", obj, {}, {}))
        for bucket in (f"arn:aws:s3:::{protected_bucket}", "arn:aws:s3:::someone-elses-bucket"):
            probes.append(("s3:PutLifecycleConfiguration", bucket, {}, {}))
            probes.append(("s3:PutBucketPolicy", bucket, {}, {}))
        # Lifeboat's backups: only expire-recovery-points deletes them (behind the floor).
        for r in (REGION, *params["DrRegions"]):
            for kind, action in (("snapshot", "rds:DeleteDBSnapshot"), ("cluster-snapshot", "rds:DeleteDBClusterSnapshot")):
                arn = f"arn:aws:rds:{r}:{ACCOUNT}:{kind}:lb-gold-orders-20261123-1800"
                probes.append((action, arn, resource_tags(arn, LIFEBOAT_TAGS), {"ExpireRecoveryPointsFunctionRole": None}))
        for role_arn, role in self.s.roles.items():
            for action, arn, ctx, accepted in probes:
                # {role: reason}: an allow IAM cannot narrow further for that role, with
                # the reason; {role: None}: that role's own work, not probed.
                if role["logical"] in accepted and accepted[role["logical"]] is None:
                    continue
                self.as_role("must not", f"role {role['logical']}", role_arn, action, arn, allow=False,
                             context=ctx, accepted=accepted.get(role["logical"], {}))


def tasks(states: dict):
    for name, st in states.items():
        t = st.get("Type")
        if t == "Task":
            yield name, st
        elif t == "Map":
            inner = st.get("ItemProcessor") or st.get("Iterator") or {}
            yield from tasks(inner.get("States", {}))
        elif t == "Parallel":
            for b in st.get("Branches", []):
                yield from tasks(b.get("States", {}))


def simulate(cases: list[Case]) -> None:
    payload = [
        {
            "request": {
                "principal": c.principal,
                "action": c.action,
                "resource": {"resource": c.resource, "accountId": ACCOUNT},
                "contextVariables": c.context,
            },
            "identityPolicies": c.identity,
            "resourcePolicy": c.resource_policy,
        }
        for c in cases
    ]
    node = os.environ.get("NODE", "node")
    proc = subprocess.run([node, str(HERE / "simulate.mjs")], input=json.dumps(payload), capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit("the IAM simulator failed (see above)")
    for c, r in zip(cases, json.loads(proc.stdout), strict=True):
        c.result = r["result"]
        if r["result"] == "Error":
            c.note = json.dumps(r.get("errors"))[:400]


def verdict(c: Case) -> tuple[bool, str]:
    allowed = c.result == "Allowed"
    if c.result == "Error":
        return False, "ERROR"
    if c.allow:
        return allowed, "allowed" if allowed else "DENIED"
    if allowed and c.accepted:
        return True, "allowed (accepted)"
    return not allowed, "denied" if not allowed else "ALLOWED"


PROFILES = {"defaults": {}, "configured": CONFIGURED}


class CheckError(Exception):
    """The template cannot be transformed or modelled: the check proves nothing."""


def evaluate(template_path: Path, base: Path | None = None, profiles=tuple(PROFILES)) -> tuple[list[str], int, list[str]]:
    """(failures, requests evaluated, table lines) for `template_path`, whose relative
    paths (state machine definitions) are resolved against `base`."""
    from cfnlint.decode import decode
    from transform import Transform  # infra/checkov/transform.py's translator

    base = base or template_path.parent
    original, problems = decode(str(template_path))
    if problems or original is None:
        raise CheckError("; ".join(str(p) for p in problems) or "empty template")
    failures: list[str] = []
    lines: list[str] = []
    total = 0
    for profile in profiles:
        values = dict(PROFILES[profile])
        if profile == "configured":
            declared = original.get("Parameters", {})
            values.update({k: v for k, v in OPTIONAL_CONFIGURED.items() if k in declared})
        transformed, _ = decode(str(template_path))
        t = Transform(str(template_path), transformed, REGION)
        errors = t.transform_template()
        if errors:
            raise CheckError("; ".join(str(e) for e in errors))
        try:
            stack = Stack(original, t.template(), values, base)
            chk = Checker(stack, profile)
            chk.schedules()
            chk.execution_roles()
            chk.destinations()
            chk.state_machines()
            chk.api()
            chk.rules()
            chk.environment()
            chk.own_work(stack.r.params)
            chk.probes(stack.r.params)
        except (Unresolvable, KeyError) as e:
            raise CheckError(f"[{profile}] the check cannot model the template: {e!r}") from e
        empty = [x for x in ("schedules", "functions", "destinations", "state machines", "api", "own work", "must not")
                 if not any(c.section == x for c in chk.cases)]
        if empty:
            raise CheckError(f"[{profile}] the check found nothing to evaluate for: {', '.join(empty)}")
        simulate(chk.cases)
        lines.append(f"\n== parameters: {profile} {json.dumps(values) if values else ''}")
        lines.append(f"{'section':<15} {'invoker':<58} {'action':<38} {'target':<90} {'result'}")
        denied_ok = 0
        for c in chk.cases:
            ok, word = verdict(c)
            total += 1
            # Passing negative probes are summarised, not listed one by one.
            if c.section == "must not" and ok and c.result != "Allowed":
                denied_ok += 1
                continue
            line = f"{c.section:<15} {c.invoker[:58]:<58} {c.action:<38} {c.resource[:90]:<90} {word}"
            if c.accepted and c.result == "Allowed":
                line += f"  ({c.accepted})"
            if not ok:
                line += f"  <-- expected {'allowed' if c.allow else 'denied'}"
                if c.note:
                    line += f"; {c.note}"
                failures.append(f"[{profile}] {c.invoker}: {c.action} on {c.resource} {word}")
            lines.append(line)
        lines.append(f"{'must not':<15} {'every role (' + str(len(stack.roles)) + ')':<58} {'destructive probes':<38} "
                     f"{'foreign databases, clusters, snapshots, tables, backups, archives, ...':<90} {denied_ok} denied")
    return failures, total, lines


def run(template_path: Path) -> int:
    try:
        failures, total, lines = evaluate(template_path)
    except CheckError as e:
        print(f"IAM check could not run: {e}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    print()
    if failures:
        print(f"IAM check FAILED: {len(failures)} of {total} requests evaluated differently from what the product needs:")
        for f in failures:
            print(f"  {f}")
        return 1
    print(f"IAM check passed: {total} requests evaluated as expected.")
    return 0


if __name__ == "__main__":
    sys.exit(run(Path(sys.argv[1] if len(sys.argv) > 1 else "template.yaml").resolve()))
