"""What the local deployment has before any test or demo runs, as an operator would have
set it up on AWS: the isolated network restore tests put their databases in.

In each region of the local stack: a VPC with no internet gateway, two subnets in two
availability zones, the DB subnet group ``lifeboat-restore-tests`` over them, and the
security group ``lifeboat-restore-tests`` with no ingress rule. The security group gets a
fixed id (moto draws ids at random) so that ``functions.env`` can name it in
``RESTORE_TEST_NETWORKS``, as a deployment's parameter names the operator's group.
"""

from __future__ import annotations

from typing import Any

ACCOUNT = "123456789012"
REGIONS = ("us-east-1", "us-west-2")
NAME = "lifeboat-restore-tests"
# One id for every region (ids are per region on AWS too); hex, as AWS's are.
SECURITY_GROUP_ID = "sg-0b0a7e57000000001"


def provision(account: str = ACCOUNT, regions: tuple[str, ...] = REGIONS) -> list[str]:
    """Creates the restore-test network in each region of moto's in-process backends
    (idempotent); returns one line per region saying what is there."""
    from moto.ec2.models import ec2_backends
    from moto.ec2.models import security_groups as sg_models
    from moto.rds.models import rds_backends

    done = []
    for region in regions:
        rds = rds_backends[account][region]
        if NAME in rds.subnet_groups:
            done.append(f"{region}: {NAME} already there")
            continue
        ec2 = ec2_backends[account][region]
        vpc = ec2.create_vpc("10.99.0.0/16", tags=[{"Key": "Name", "Value": NAME}])
        subnets: list[Any] = [
            ec2.create_subnet(vpc.id, f"10.99.{i}.0/24", availability_zone=f"{region}{zone}")
            for i, zone in enumerate("ab", start=1)
        ]
        original = sg_models.random_security_group_id
        sg_models.random_security_group_id = lambda: SECURITY_GROUP_ID
        try:
            group = ec2.create_security_group(NAME, "Lifeboat restore tests: no ingress", vpc_id=vpc.id)
        finally:
            sg_models.random_security_group_id = original
        rds.create_subnet_group(NAME, "Lifeboat restore tests: no route out", subnets, [])
        done.append(f"{region}: subnet group {NAME} in {vpc.id}, security group {group.id}")
    return done
