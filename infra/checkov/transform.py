"""Transforms template.yaml with the Serverless Application Model, offline.

Usage: transform.py <template.yaml> <out.json>

Uses the SAM translator that cfn-lint bundles (the stack venv), with SAM CLI's list of
managed policies, so checkov sees the CloudFormation AWS deploys: the functions' roles,
the API, the schedules. Checkov skips written in template.yaml (a resource's
Metadata.checkov.skip, each with a comment) travel with the resources.
"""

import json
import sys

from cfnlint.decode import decode
from cfnlint.template.transforms._sam import Transform


def template_source(source: str) -> dict:
    """The template as written (before the transform)."""
    template, _ = decode(source)
    return template or {}


def carry_api_skips(original: dict, result: dict) -> None:
    """SAM does not pass an `AWS::Serverless::Api`'s Metadata to the stage it generates
    (`<Api><StageName>Stage`): copy the API's checkov skips there."""
    resources = result.get("Resources", {})
    for name, res in original.get("Resources", {}).items():
        if res.get("Type") != "AWS::Serverless::Api":
            continue
        skips = res.get("Metadata", {}).get("checkov")
        stage = f"{name}{res.get('Properties', {}).get('StageName', '')}Stage"
        if skips and stage in resources:
            resources[stage].setdefault("Metadata", {})["checkov"] = skips


def main() -> int:
    source, out = sys.argv[1], sys.argv[2]
    template, problems = decode(source)
    if problems or template is None:
        for p in problems:
            print(p, file=sys.stderr)
        return 1
    transform = Transform(source, template, "us-east-1")
    errors = transform.transform_template()
    if errors:
        for e in errors:
            print(e, file=sys.stderr)
        return 1
    result = transform.template()
    carry_api_skips(template_source(source), result)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1, default=str)
    print(f"SAM-transformed template: {out} ({len(transform.template().get('Resources', {}))} resources)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
