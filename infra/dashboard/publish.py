#!/usr/bin/env python3
"""Publishes the dashboard to a deployed Lifeboat stack.

Reads the stack's outputs (DashboardBucketName, AdminApiUrl), uploads the page's files to
the dashboard bucket and writes its ``config.json`` with the admin API's URL and region
(the page then signs its requests with SigV4). Run by ``make publish-dashboard
STACK_NAME=<stack> [AWS_REGION=<region>]`` with the deployer's credentials.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import boto3

HERE = Path(__file__).resolve().parent
FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack-name", required=True)
    parser.add_argument("--region", default=None)
    args = parser.parse_args(argv)

    session = boto3.session.Session(region_name=args.region)
    region = session.region_name
    if not region:
        print("no region: pass --region or set AWS_REGION", file=sys.stderr)
        return 2
    stacks = session.client("cloudformation").describe_stacks(StackName=args.stack_name)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks["Stacks"][0].get("Outputs", [])}
    missing = [k for k in ("DashboardBucketName", "AdminApiUrl", "DashboardUrl") if k not in outputs]
    if missing:
        print(f"stack {args.stack_name} has no output {', '.join(missing)}", file=sys.stderr)
        return 2
    s3 = session.client("s3")
    bucket = outputs["DashboardBucketName"]
    for name, content_type in FILES.items():
        s3.put_object(
            Bucket=bucket,
            Key=name,
            Body=(HERE / name).read_bytes(),
            ContentType=content_type,
            CacheControl="no-cache",
        )
    config = {"api": outputs["AdminApiUrl"], "region": region}
    s3.put_object(
        Bucket=bucket,
        Key="config.json",
        Body=json.dumps(config).encode(),
        ContentType="application/json",
        CacheControl="no-cache",
    )
    print(f"dashboard published: {outputs['DashboardUrl']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
