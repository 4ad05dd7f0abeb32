"""Resolves a (SAM-transformed) CloudFormation template for one account, region, stack
name and parameter set: conditions, !Ref, !GetAtt, !Sub, !Join, !Split, !Select, !If and
AWS::NoValue, with the physical names and ARNs CloudFormation would give each resource
(generated names get a fixed suffix). What cannot be resolved raises an error naming it,
so no policy is ever evaluated with an unresolved placeholder in it.
"""

from __future__ import annotations

import copy
import re
import uuid
from typing import Any

SUFFIX = "A1B2C3D4E5F6"
NO_VALUE = object()


class Unresolvable(Exception):
    pass


class Resolver:
    def __init__(
        self,
        template: dict,
        parameters: dict[str, str],
        account: str,
        region: str,
        stack: str,
        partition: str = "aws",
    ):
        self.template = template
        self.account = account
        self.region = region
        self.stack = stack
        self.partition = partition
        self.params: dict[str, Any] = {}
        for name, spec in template.get("Parameters", {}).items():
            if name in parameters:
                value = parameters[name]
            elif "Default" in spec:
                value = spec["Default"]
            else:
                raise Unresolvable(f"parameter {name} has no default and no value was given")
            value = str(value) if not isinstance(value, list) else ",".join(map(str, value))
            if spec.get("Type") == "CommaDelimitedList" or spec.get("Type", "").startswith("List<"):
                self.params[name] = value.split(",")
            else:
                self.params[name] = value
        unknown = set(parameters) - set(template.get("Parameters", {}))
        if unknown:
            raise Unresolvable(f"values given for parameters the template does not declare: {sorted(unknown)}")
        self._conditions: dict[str, bool] = {}
        self._names: dict[str, dict[str, Any]] = {}
        self.resources = {
            k: v for k, v in template.get("Resources", {}).items() if self.deployed(v)
        }

    # --- conditions -------------------------------------------------------------
    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            spec = self.template.get("Conditions", {}).get(name)
            if spec is None:
                raise Unresolvable(f"condition {name} is not declared")
            self._conditions[name] = bool(self.resolve(spec))
        return self._conditions[name]

    def deployed(self, resource: dict) -> bool:
        cond = resource.get("Condition")
        return cond is None or self.condition(cond)

    # --- physical names -----------------------------------------------------------
    def _generated(self, logical: str, lower: bool = False, limit: int = 64) -> str:
        name = f"{self.stack}-{logical}"[: limit - len(SUFFIX) - 1] + f"-{SUFFIX}"
        return name.lower() if lower else name

    def attributes(self, logical: str) -> dict[str, Any]:
        """Ref and GetAtt values of a deployed resource."""
        if logical in self._names:
            return self._names[logical]
        res = self.resources.get(logical)
        if res is None:
            raise Unresolvable(f"{logical} is not a resource deployed with these parameters")
        props = res.get("Properties", {})
        t = res["Type"]
        p, r, a = self.partition, self.region, self.account

        def prop(key: str, default: str) -> str:
            return str(self.resolve(props[key])) if key in props else default

        if t == "AWS::Lambda::Function":
            name = prop("FunctionName", self._generated(logical))
            arn = f"arn:{p}:lambda:{r}:{a}:function:{name}"
            attrs = {"Ref": name, "Arn": arn}
        elif t == "AWS::IAM::Role":
            name = prop("RoleName", self._generated(logical))
            attrs = {"Ref": name, "Arn": f"arn:{p}:iam::{a}:role/{name}", "RoleId": f"AROA{SUFFIX}"}
        elif t == "AWS::SQS::Queue":
            name = prop("QueueName", self._generated(logical, limit=80))
            url = f"https://sqs.{r}.amazonaws.com/{a}/{name}"
            attrs = {"Ref": url, "QueueUrl": url, "QueueName": name, "Arn": f"arn:{p}:sqs:{r}:{a}:{name}"}
        elif t == "AWS::KMS::Key":
            key_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.stack}/{logical}"))
            attrs = {"Ref": key_id, "KeyId": key_id, "Arn": f"arn:{p}:kms:{r}:{a}:key/{key_id}"}
        elif t == "AWS::KMS::Alias":
            attrs = {"Ref": prop("AliasName", f"alias/{logical}")}
        elif t == "AWS::SNS::Topic":
            name = prop("TopicName", self._generated(logical, limit=256))
            arn = f"arn:{p}:sns:{r}:{a}:{name}"
            attrs = {"Ref": arn, "TopicArn": arn, "TopicName": name}
        elif t == "AWS::DynamoDB::Table":
            name = prop("TableName", self._generated(logical, limit=255))
            arn = f"arn:{p}:dynamodb:{r}:{a}:table/{name}"
            attrs = {"Ref": name, "Arn": arn, "StreamArn": f"{arn}/stream/2026-01-01T00:00:00.000"}
        elif t == "AWS::StepFunctions::StateMachine":
            name = prop("StateMachineName", self._generated(logical, limit=80))
            arn = f"arn:{p}:states:{r}:{a}:stateMachine:{name}"
            attrs = {"Ref": arn, "Arn": arn, "Name": name}
        elif t == "AWS::S3::Bucket":
            name = prop("BucketName", self._generated(logical, lower=True, limit=63))
            attrs = {
                "Ref": name,
                "Arn": f"arn:{p}:s3:::{name}",
                "DomainName": f"{name}.s3.amazonaws.com",
                "RegionalDomainName": f"{name}.s3.{r}.amazonaws.com",
            }
        elif t == "AWS::SecretsManager::Secret":
            name = prop("Name", self._generated(logical, limit=256))
            arn = f"arn:{p}:secretsmanager:{r}:{a}:secret:{name}-AbCdEf"
            attrs = {"Ref": arn, "Id": arn}
        elif t == "AWS::Logs::LogGroup":
            name = prop("LogGroupName", self._generated(logical, limit=512))
            attrs = {"Ref": name, "Arn": f"arn:{p}:logs:{r}:{a}:log-group:{name}:*"}
        elif t == "AWS::ApiGateway::RestApi":
            attrs = {"Ref": "a1b2c3d4e5", "RootResourceId": "r00t1d"}
        elif t == "AWS::Scheduler::Schedule":
            name = prop("Name", self._generated(logical))
            group = prop("GroupName", "default")
            attrs = {"Ref": name, "Arn": f"arn:{p}:scheduler:{r}:{a}:schedule/{group}/{name}"}
        elif t == "AWS::Events::Rule":
            name = prop("Name", self._generated(logical, limit=64))
            attrs = {"Ref": name, "Arn": f"arn:{p}:events:{r}:{a}:rule/{name}"}
        elif t == "AWS::CloudFront::Distribution":
            attrs = {"Ref": "E1A2B3C4D5E6F7", "Id": "E1A2B3C4D5E6F7", "DomainName": "d1a2b3c4d5e6f7.cloudfront.net"}
        else:
            attrs = {"Ref": f"{logical}-{SUFFIX}"}
        self._names[logical] = attrs
        return attrs

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::AccountId": self.account,
            "AWS::Region": self.region,
            "AWS::Partition": self.partition,
            "AWS::StackName": self.stack,
            "AWS::StackId": f"arn:{self.partition}:cloudformation:{self.region}:{self.account}:stack/{self.stack}/{uuid.uuid5(uuid.NAMESPACE_URL, self.stack)}",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
        }
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in pseudo:
            return pseudo[name]
        if name in self.params:
            return self.params[name]
        return self.attributes(name)["Ref"]

    def get_att(self, logical: str, attr: str) -> Any:
        attrs = self.attributes(logical)
        if attr not in attrs:
            raise Unresolvable(f"!GetAtt {logical}.{attr}: attribute not modelled")
        return attrs[attr]

    def sub(self, text: str, variables: dict[str, Any]) -> str:
        def one(m: re.Match) -> str:
            expr = m.group(1)
            if expr.startswith("!"):
                return "${" + expr[1:] + "}"
            if expr in variables:
                value = variables[expr]
            elif "." in expr and not expr.startswith("AWS::"):
                logical, attr = expr.split(".", 1)
                value = self.get_att(logical, attr)
            else:
                value = self.ref(expr)
            if isinstance(value, list) or value is NO_VALUE:
                raise Unresolvable(f"!Sub ${{{expr}}} is not a string")
            return str(value)

        return re.sub(r"\$\{([^}]+)\}", one, text)

    # --- intrinsic functions -------------------------------------------------------
    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            out = [self.resolve(x) for x in node]
            return [x for x in out if x is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(logical, self.resolve(attr))
            if key == "Fn::Sub":
                if isinstance(arg, str):
                    return self.sub(arg, {})
                text, variables = arg
                return self.sub(text, {k: self.resolve(v) for k, v in variables.items()})
            if key == "Fn::Join":
                sep, items = arg
                return str(sep).join(str(x) for x in self.resolve(items))
            if key == "Fn::Split":
                sep, text = arg
                return str(self.resolve(text)).split(sep)
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::If":
                cond, yes, no = arg
                return self.resolve(yes if self.condition(cond) else no)
            if key == "Fn::Equals":
                a, b = (self.resolve(x) for x in arg)
                return a == b
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::And":
                return all(self.resolve(x) for x in arg)
            if key == "Fn::Or":
                return any(self.resolve(x) for x in arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::FindInMap":
                m, k1, k2 = (self.resolve(x) for x in arg)
                return self.template["Mappings"][m][k1][k2]
            if key.startswith("Fn::"):
                raise Unresolvable(f"{key} is not supported by the resolver")
        out = {}
        for k, v in node.items():
            rv = self.resolve(v)
            if rv is not NO_VALUE:
                out[k] = rv
        return out

    def resource(self, logical: str) -> dict:
        """A deployed resource with its properties resolved."""
        res = copy.deepcopy(self.resources[logical])
        res["Properties"] = self.resolve(res.get("Properties", {}))
        return res
