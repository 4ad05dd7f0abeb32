"""Unit tests of the strict RDS hooks (strict_rds.py) on moto in-process, with a fake clock.

Run: .venv/bin/python -m unittest discover -s infra/local -p 'test_*.py'
"""

from __future__ import annotations

import os
import unittest

os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

import boto3  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402
from moto import mock_aws  # noqa: E402

import strict_rds  # noqa: E402

REGION = "us-east-1"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class StrictRdsTest(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        strict_rds.install(strict_rds.Timings(delete_s=60, available_s=10, rename_s=20), self.clock)
        self.mock = mock_aws()
        self.mock.start()
        self.rds = boto3.client("rds", region_name=REGION)

    def tearDown(self) -> None:
        self.mock.stop()

    # -- helpers -------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        self.clock.now += seconds

    def code(self, call, **kwargs) -> str:  # type: ignore[no-untyped-def]
        with self.assertRaises(ClientError) as caught:
            call(**kwargs)
        return caught.exception.response["Error"]["Code"]

    def instance(self, name: str, **extra) -> dict:  # type: ignore[no-untyped-def]
        return self.rds.create_db_instance(
            DBInstanceIdentifier=name,
            DBInstanceClass="db.t4g.micro",
            Engine="postgres",
            AllocatedStorage=20,
            MasterUsername="admin",
            MasterUserPassword="password123",
            **extra,
        )["DBInstance"]

    def status(self, name: str) -> str:
        return self.rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0][
            "DBInstanceStatus"
        ]

    def cluster(self, name: str) -> dict:
        return self.rds.describe_db_clusters(DBClusterIdentifier=name)["DBClusters"][0]

    def snapshot_status(self, name: str) -> str:
        return self.rds.describe_db_snapshots(DBSnapshotIdentifier=name)["DBSnapshots"][0]["Status"]

    def available_instance(self, name: str) -> None:
        self.instance(name)
        self.advance(10)
        self.assertEqual(self.status(name), "available")

    def available_cluster_with_writer(self, name: str) -> None:
        self.rds.create_db_cluster(
            DBClusterIdentifier=name,
            Engine="aurora-postgresql",
            MasterUsername="admin",
            MasterUserPassword="password123",
        )
        self.rds.create_db_instance(
            DBInstanceIdentifier=f"{name}-1",
            DBClusterIdentifier=name,
            DBInstanceClass="db.r6g.large",
            Engine="aurora-postgresql",
        )
        self.advance(10)

    # -- 1. asynchronous deletes ------------------------------------------------------

    def test_a_deleted_instance_stays_deleting_and_keeps_its_name(self) -> None:
        self.available_instance("orders")
        out = self.rds.delete_db_instance(DBInstanceIdentifier="orders", SkipFinalSnapshot=True)
        self.assertEqual(out["DBInstance"]["DBInstanceStatus"], "deleting")
        self.advance(59)
        self.assertEqual(self.status("orders"), "deleting")
        self.assertEqual(self.code(self.instance, name="orders"), "DBInstanceAlreadyExists")
        self.assertEqual(
            self.code(
                self.rds.delete_db_instance, DBInstanceIdentifier="orders", SkipFinalSnapshot=True
            ),
            "InvalidDBInstanceState",
        )
        self.advance(1)
        self.assertEqual(
            self.code(self.rds.describe_db_instances, DBInstanceIdentifier="orders"),
            "DBInstanceNotFound",
        )
        self.instance("orders")  # the name is free again

    def test_restoring_or_renaming_onto_a_deleting_instance_fails(self) -> None:
        self.available_instance("orders")
        self.available_instance("other")
        self.rds.create_db_snapshot(DBInstanceIdentifier="other", DBSnapshotIdentifier="snap")
        self.advance(10)
        self.rds.delete_db_instance(DBInstanceIdentifier="orders", SkipFinalSnapshot=True)
        self.assertEqual(
            self.code(
                self.rds.restore_db_instance_from_db_snapshot,
                DBInstanceIdentifier="orders",
                DBSnapshotIdentifier="snap",
            ),
            "DBInstanceAlreadyExists",
        )
        self.assertEqual(
            self.code(
                self.rds.restore_db_instance_to_point_in_time,
                SourceDBInstanceIdentifier="other",
                TargetDBInstanceIdentifier="orders",
                UseLatestRestorableTime=True,
            ),
            "DBInstanceAlreadyExists",
        )
        self.assertEqual(
            self.code(
                self.rds.modify_db_instance,
                DBInstanceIdentifier="other",
                NewDBInstanceIdentifier="orders",
                ApplyImmediately=True,
            ),
            "DBInstanceAlreadyExists",
        )

    def test_a_deleting_cluster_keeps_its_name(self) -> None:
        self.available_cluster_with_writer("ledger")
        self.rds.create_db_cluster_snapshot(
            DBClusterIdentifier="ledger", DBClusterSnapshotIdentifier="ledger-snap"
        )
        self.advance(10)
        self.assertEqual(
            self.code(
                self.rds.delete_db_cluster, DBClusterIdentifier="ledger", SkipFinalSnapshot=True
            ),
            "InvalidDBClusterStateFault",
        )
        self.rds.delete_db_instance(DBInstanceIdentifier="ledger-1")
        # A deleting member no longer holds the cluster.
        out = self.rds.delete_db_cluster(DBClusterIdentifier="ledger", SkipFinalSnapshot=True)
        self.assertEqual(out["DBCluster"]["Status"], "deleting")
        self.assertEqual(self.cluster("ledger")["Status"], "deleting")
        self.assertEqual(
            self.code(
                self.rds.restore_db_cluster_from_snapshot,
                DBClusterIdentifier="ledger",
                SnapshotIdentifier="ledger-snap",
                Engine="aurora-postgresql",
            ),
            "DBClusterAlreadyExistsFault",
        )
        self.assertEqual(
            self.code(
                self.rds.create_db_cluster,
                DBClusterIdentifier="ledger",
                Engine="aurora-postgresql",
                MasterUsername="admin",
                MasterUserPassword="password123",
            ),
            "DBClusterAlreadyExistsFault",
        )
        self.assertEqual(
            self.code(
                self.rds.delete_db_cluster, DBClusterIdentifier="ledger", SkipFinalSnapshot=True
            ),
            "InvalidDBClusterStateFault",
        )
        self.advance(60)
        self.assertEqual(
            self.code(self.rds.describe_db_clusters, DBClusterIdentifier="ledger"),
            "DBClusterNotFoundFault",
        )

    def test_a_cluster_cannot_be_created_over_a_live_one(self) -> None:
        self.available_cluster_with_writer("ledger")
        self.assertEqual(
            self.code(
                self.rds.create_db_cluster,
                DBClusterIdentifier="ledger",
                Engine="aurora-postgresql",
                MasterUsername="admin",
                MasterUserPassword="password123",
            ),
            "DBClusterAlreadyExistsFault",
        )

    # -- renames -----------------------------------------------------------------------

    def test_an_instance_rename_takes_time_and_frees_the_old_name_afterwards(self) -> None:
        self.available_instance("orders")
        out = self.rds.modify_db_instance(
            DBInstanceIdentifier="orders",
            NewDBInstanceIdentifier="orders-lbpre-1",
            ApplyImmediately=True,
        )["DBInstance"]
        self.assertEqual(out["DBInstanceIdentifier"], "orders")
        self.assertEqual(out["DBInstanceStatus"], "renaming")
        self.assertEqual(self.status("orders"), "renaming")
        # The new name is taken from the start; the old one until the rename is done.
        self.assertEqual(self.code(self.instance, name="orders-lbpre-1"), "DBInstanceAlreadyExists")
        self.assertEqual(self.code(self.instance, name="orders"), "DBInstanceAlreadyExists")
        self.advance(20)
        self.assertEqual(self.status("orders-lbpre-1"), "available")
        self.assertEqual(
            self.code(self.rds.describe_db_instances, DBInstanceIdentifier="orders"),
            "DBInstanceNotFound",
        )
        backups = self.rds.describe_db_instance_automated_backups(
            DBInstanceIdentifier="orders-lbpre-1"
        )["DBInstanceAutomatedBackups"]
        self.assertEqual(len(backups), 1, "the automated backups follow the instance")
        self.instance("orders")

    def test_a_rename_without_apply_immediately_waits_for_the_maintenance_window(self) -> None:
        self.available_instance("orders")
        self.rds.modify_db_instance(
            DBInstanceIdentifier="orders", NewDBInstanceIdentifier="orders-new"
        )
        self.advance(100)
        self.assertEqual(self.status("orders"), "available")

    def test_a_cluster_rename_moves_its_members(self) -> None:
        self.available_cluster_with_writer("ledger")
        out = self.rds.modify_db_cluster(
            DBClusterIdentifier="ledger", NewDBClusterIdentifier="ledger-old", ApplyImmediately=True
        )["DBCluster"]
        self.assertEqual(out["Status"], "renaming")
        self.advance(20)
        renamed = self.cluster("ledger-old")
        self.assertEqual(renamed["Status"], "available")
        self.assertEqual([m["DBInstanceIdentifier"] for m in renamed["DBClusterMembers"]], ["ledger-1"])
        self.assertEqual(
            self.code(self.rds.describe_db_clusters, DBClusterIdentifier="ledger"),
            "DBClusterNotFoundFault",
        )

    # -- 2. snapshots, copies, restores take time ---------------------------------------

    def test_snapshots_copies_and_restores_pass_through_transitional_states(self) -> None:
        created = self.instance("orders")
        self.assertEqual(created["DBInstanceStatus"], "creating")
        self.assertEqual(
            self.code(
                self.rds.create_db_snapshot, DBInstanceIdentifier="orders", DBSnapshotIdentifier="s1"
            ),
            "InvalidDBInstanceState",
        )
        self.advance(10)
        out = self.rds.create_db_snapshot(DBInstanceIdentifier="orders", DBSnapshotIdentifier="s1")
        self.assertEqual(out["DBSnapshot"]["Status"], "creating")
        for call, kwargs in [
            (
                self.rds.copy_db_snapshot,
                {"SourceDBSnapshotIdentifier": "s1", "TargetDBSnapshotIdentifier": "s2"},
            ),
            (
                self.rds.restore_db_instance_from_db_snapshot,
                {"DBInstanceIdentifier": "restored", "DBSnapshotIdentifier": "s1"},
            ),
        ]:
            self.assertEqual(self.code(call, **kwargs), "InvalidDBSnapshotState")
        self.advance(10)
        self.assertEqual(self.snapshot_status("s1"), "available")
        copy = self.rds.copy_db_snapshot(
            SourceDBSnapshotIdentifier="s1", TargetDBSnapshotIdentifier="s2"
        )
        self.assertEqual(copy["DBSnapshot"]["Status"], "copying")
        restored = self.rds.restore_db_instance_from_db_snapshot(
            DBInstanceIdentifier="restored", DBSnapshotIdentifier="s1"
        )
        self.assertEqual(restored["DBInstance"]["DBInstanceStatus"], "creating")
        self.advance(9)
        self.assertEqual(self.snapshot_status("s2"), "copying")
        self.assertEqual(self.status("restored"), "creating")
        self.advance(1)
        self.assertEqual(self.snapshot_status("s2"), "available")
        self.assertEqual(self.status("restored"), "available")

    def test_cluster_snapshots_and_copies_take_time(self) -> None:
        self.available_cluster_with_writer("ledger")
        out = self.rds.create_db_cluster_snapshot(
            DBClusterIdentifier="ledger", DBClusterSnapshotIdentifier="c1"
        )
        self.assertEqual(out["DBClusterSnapshot"]["Status"], "creating")
        self.assertEqual(
            self.code(
                self.rds.restore_db_cluster_from_snapshot,
                DBClusterIdentifier="ledger-restored",
                SnapshotIdentifier="c1",
                Engine="aurora-postgresql",
            ),
            "InvalidDBClusterSnapshotStateFault",
        )
        self.advance(10)
        copy = self.rds.copy_db_cluster_snapshot(
            SourceDBClusterSnapshotIdentifier="c1", TargetDBClusterSnapshotIdentifier="c2"
        )
        self.assertEqual(copy["DBClusterSnapshot"]["Status"], "copying")

    # -- 3. automated backups and final snapshots --------------------------------------

    def test_a_delete_removes_the_automated_backups_unless_told_otherwise(self) -> None:
        for name in ("gone", "kept"):
            self.available_instance(name)
            backups = self.rds.describe_db_instance_automated_backups(DBInstanceIdentifier=name)
            self.assertEqual(len(backups["DBInstanceAutomatedBackups"]), 1)
        self.rds.delete_db_instance(DBInstanceIdentifier="gone", SkipFinalSnapshot=True)
        self.rds.delete_db_instance(
            DBInstanceIdentifier="kept", SkipFinalSnapshot=True, DeleteAutomatedBackups=False
        )
        self.advance(60)
        gone = self.rds.describe_db_instance_automated_backups(DBInstanceIdentifier="gone")
        self.assertEqual(gone["DBInstanceAutomatedBackups"], [])
        kept = self.rds.describe_db_instance_automated_backups(DBInstanceIdentifier="kept")
        self.assertEqual(
            [b["Status"] for b in kept["DBInstanceAutomatedBackups"]], ["retained"]
        )
        self.assertEqual(
            self.code(
                self.rds.restore_db_instance_to_point_in_time,
                SourceDBInstanceIdentifier="gone",
                TargetDBInstanceIdentifier="back",
                UseLatestRestorableTime=True,
            ),
            "DBInstanceNotFound",
        )
        # Nothing of the data is left: no snapshot names the deleted instance.
        left = self.rds.describe_db_snapshots(DBInstanceIdentifier="gone")["DBSnapshots"]
        self.assertEqual(left, [])

    def test_a_delete_needs_a_final_snapshot_or_skip_and_the_final_snapshot_is_created(self) -> None:
        self.available_instance("orders")
        self.assertEqual(
            self.code(self.rds.delete_db_instance, DBInstanceIdentifier="orders"),
            "InvalidParameterCombination",
        )
        self.rds.delete_db_instance(
            DBInstanceIdentifier="orders", FinalDBSnapshotIdentifier="orders-final"
        )
        self.assertEqual(self.snapshot_status("orders-final"), "creating")
        self.advance(10)
        self.assertEqual(self.snapshot_status("orders-final"), "available")

    def test_a_cluster_delete_removes_its_automated_backups_and_keeps_a_final_snapshot(self) -> None:
        self.available_cluster_with_writer("ledger")
        self.rds.delete_db_instance(DBInstanceIdentifier="ledger-1")
        automated = self.rds.describe_db_cluster_snapshots(
            DBClusterIdentifier="ledger", SnapshotType="automated"
        )["DBClusterSnapshots"]
        self.assertEqual(len(automated), 1)
        self.assertEqual(
            self.code(self.rds.delete_db_cluster, DBClusterIdentifier="ledger"),
            "InvalidParameterCombination",
        )
        self.rds.delete_db_cluster(
            DBClusterIdentifier="ledger", FinalDBSnapshotIdentifier="ledger-final"
        )
        snapshots = self.rds.describe_db_cluster_snapshots(DBClusterIdentifier="ledger")[
            "DBClusterSnapshots"
        ]
        self.assertEqual(
            [(s["DBClusterSnapshotIdentifier"], s["SnapshotType"]) for s in snapshots],
            [("ledger-final", "manual")],
        )

    # -- 4. a restored Aurora cluster has no instance and no endpoint -------------------

    def test_a_restored_cluster_has_no_endpoint_until_a_writer_is_available(self) -> None:
        self.available_cluster_with_writer("ledger")
        self.assertIn("Endpoint", self.cluster("ledger"))
        self.rds.create_db_cluster_snapshot(
            DBClusterIdentifier="ledger", DBClusterSnapshotIdentifier="c1"
        )
        self.advance(10)
        self.rds.restore_db_cluster_from_snapshot(
            DBClusterIdentifier="ledger-dr", SnapshotIdentifier="c1", Engine="aurora-postgresql"
        )
        self.advance(10)
        restored = self.cluster("ledger-dr")
        self.assertEqual(restored["Status"], "available")
        self.assertEqual(restored["DBClusterMembers"], [])
        self.assertNotIn("Endpoint", restored)
        self.assertNotIn("ReaderEndpoint", restored)
        self.rds.create_db_instance(
            DBInstanceIdentifier="ledger-dr-1",
            DBClusterIdentifier="ledger-dr",
            DBInstanceClass="db.r6g.large",
            Engine="aurora-postgresql",
        )
        self.assertNotIn("Endpoint", self.cluster("ledger-dr"), "the writer is still creating")
        self.advance(10)
        self.assertIn("Endpoint", self.cluster("ledger-dr"))


class TimingsTest(unittest.TestCase):
    def test_timings_come_from_the_environment(self) -> None:
        t = strict_rds.Timings.from_env(
            {strict_rds.ENV_DELETE: "7", strict_rds.ENV_AVAILABLE: "0.5", strict_rds.ENV_RENAME: ""}
        )
        self.assertEqual(t, strict_rds.Timings(delete_s=7, available_s=0.5, rename_s=2))
        with self.assertRaises(ValueError):
            strict_rds.Timings.from_env({strict_rds.ENV_DELETE: "soon"})


if __name__ == "__main__":
    unittest.main()


class RestoreTestNetworkTest(unittest.TestCase):
    """The local deployment's restore-test network (deployment.py), on moto in-process."""

    def test_every_region_gets_the_subnet_group_and_the_group_with_no_ingress_once(self) -> None:
        import deployment

        with mock_aws():
            first = deployment.provision()
            again = deployment.provision()
            self.assertEqual(len(first), 2)
            self.assertTrue(all("already there" in line for line in again))
            for region in deployment.REGIONS:
                rds = boto3.client("rds", region_name=region)
                group = rds.describe_db_subnet_groups(DBSubnetGroupName=deployment.NAME)["DBSubnetGroups"][0]
                self.assertEqual(len(group["Subnets"]), 2)
                ec2 = boto3.client("ec2", region_name=region)
                sg = ec2.describe_security_groups(GroupIds=[deployment.SECURITY_GROUP_ID])["SecurityGroups"][0]
                self.assertEqual(sg["IpPermissions"], [])
                self.assertEqual(sg["VpcId"], group["VpcId"])
