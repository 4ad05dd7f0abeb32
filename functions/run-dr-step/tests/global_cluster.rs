//! The RDS adapter's requests where the emulator cannot show them, on mocked RDS clients
//! (aws-smithy-mocks: the exact request is matched, no network). Aurora global-database
//! failover and switchover: moto 5.2.5 answers `FailoverGlobalCluster` and
//! `SwitchoverGlobalCluster` with 500 NotImplemented. Deletes: moto ignores
//! `DeleteAutomatedBackups` for clusters and takes a final snapshot whatever
//! `SkipFinalSnapshot` says, so the exact parameters are checked here.

use std::collections::HashMap;

use aws_sdk_rds::operation::failover_global_cluster::FailoverGlobalClusterOutput;
use aws_sdk_rds::operation::switchover_global_cluster::SwitchoverGlobalClusterOutput;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use lifeboat_aws::dr::RdsDrDatabases;
use lifeboat_domain::Region;
use lifeboat_ports::dr::DrDatabases;

#[tokio::test]
async fn the_global_database_fails_over_to_the_named_secondary_cluster_allowing_data_loss() {
    let target = "arn:aws:rds:us-west-2:123456789012:cluster:ledger-west";
    // The outage path: the primary region is impaired, so only AllowDataLoss can move it.
    let failover = mock!(aws_sdk_rds::Client::failover_global_cluster)
        .match_requests(move |r| {
            r.global_cluster_identifier() == Some("ledger-global")
                && r.target_db_cluster_identifier() == Some(target)
                && r.allow_data_loss() == Some(true)
                && r.switchover().is_none()
        })
        .then_output(|| FailoverGlobalClusterOutput::builder().build());
    let client = mock_client!(aws_sdk_rds, RuleMode::MatchAny, [&failover]);
    let region = Region::parse("us-west-2").unwrap();
    let dbs = RdsDrDatabases::with_clients(HashMap::from([(region.clone(), client)]));
    dbs.failover_global_cluster(&region, "ledger-global", target)
        .await
        .unwrap();
    assert_eq!(failover.num_calls(), 1);
    // No client for another region: refused, nothing called.
    let other = Region::parse("eu-west-1").unwrap();
    assert!(
        dbs.failover_global_cluster(&other, "ledger-global", target)
            .await
            .is_err()
    );
    assert_eq!(failover.num_calls(), 1);
}

#[tokio::test]
async fn a_planned_move_switches_the_global_database_over() {
    let target = "arn:aws:rds:us-west-2:123456789012:cluster:ledger-west";
    let switchover = mock!(aws_sdk_rds::Client::switchover_global_cluster)
        .match_requests(move |r| {
            r.global_cluster_identifier() == Some("ledger-global") && r.target_db_cluster_identifier() == Some(target)
        })
        .then_output(|| SwitchoverGlobalClusterOutput::builder().build());
    let failover = mock!(aws_sdk_rds::Client::failover_global_cluster)
        .then_output(|| FailoverGlobalClusterOutput::builder().build());
    let client = mock_client!(aws_sdk_rds, RuleMode::MatchAny, [&switchover, &failover]);
    let region = Region::parse("us-west-2").unwrap();
    let dbs = RdsDrDatabases::with_clients(HashMap::from([(region.clone(), client)]));
    dbs.switchover_global_cluster(&region, "ledger-global", target)
        .await
        .unwrap();
    assert_eq!((switchover.num_calls(), failover.num_calls()), (1, 0));
}

#[tokio::test]
async fn a_move_already_under_way_is_an_invalid_state_not_a_failure() {
    use aws_sdk_rds::operation::failover_global_cluster::FailoverGlobalClusterError;
    use aws_sdk_rds::types::error::InvalidGlobalClusterStateFault;
    use lifeboat_ports::PortError;
    let busy = mock!(aws_sdk_rds::Client::failover_global_cluster).then_error(|| {
        FailoverGlobalClusterError::InvalidGlobalClusterStateFault(
            InvalidGlobalClusterStateFault::builder()
                .message("global cluster is failing over")
                .meta(
                    aws_sdk_rds::error::ErrorMetadata::builder()
                        .code("InvalidGlobalClusterStateFault")
                        .message("global cluster is failing over")
                        .build(),
                )
                .build(),
        )
    });
    let client = mock_client!(aws_sdk_rds, RuleMode::MatchAny, [&busy]);
    let region = Region::parse("us-west-2").unwrap();
    let dbs = RdsDrDatabases::with_clients(HashMap::from([(region.clone(), client)]));
    let err = dbs
        .failover_global_cluster(&region, "ledger-global", "arn:aws:rds:us-west-2:1:cluster:x")
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::InvalidState(_)), "{err:?}");
}

/// RDS quotas for the pre-check (`DescribeAccountAttributes` is not implemented by moto
/// 5.2.5 either).
#[tokio::test]
async fn quotas_are_read_for_the_precheck() {
    use aws_sdk_rds::operation::describe_account_attributes::DescribeAccountAttributesOutput;
    use aws_sdk_rds::types::AccountQuota;
    let quotas = mock!(aws_sdk_rds::Client::describe_account_attributes).then_output(|| {
        DescribeAccountAttributesOutput::builder()
            .account_quotas(
                AccountQuota::builder()
                    .account_quota_name("DBInstances")
                    .used(39)
                    .max(40)
                    .build(),
            )
            .account_quotas(
                AccountQuota::builder()
                    .account_quota_name("DBClusters")
                    .used(2)
                    .max(40)
                    .build(),
            )
            .build()
    });
    let client = mock_client!(aws_sdk_rds, RuleMode::MatchAny, [&quotas]);
    let region = Region::parse("us-west-2").unwrap();
    let dbs = RdsDrDatabases::with_clients(HashMap::from([(region.clone(), client)]));
    let got = dbs.quotas(&region).await.unwrap();
    assert_eq!(
        got,
        vec![("DBInstances".to_owned(), 39, 40), ("DBClusters".to_owned(), 2, 40)]
    );
}

/// Every delete of a database that may hold data takes a final snapshot and keeps the
/// automated backups; only a throwaway skips both.
#[tokio::test]
async fn deletes_keep_a_final_snapshot_and_the_automated_backups_unless_throwaway() {
    use aws_sdk_rds::operation::delete_db_cluster::DeleteDbClusterOutput;
    use aws_sdk_rds::operation::delete_db_instance::DeleteDbInstanceOutput;
    use lifeboat_domain::ResourceKind;
    use lifeboat_ports::dr::DeleteMode;

    let keep_instance = mock!(aws_sdk_rds::Client::delete_db_instance)
        .match_requests(|r| {
            r.db_instance_identifier() == Some("lbfo-0a1b2c3d-orders")
                && r.final_db_snapshot_identifier() == Some("lbfo-0a1b2c3d-orders-final")
                && r.skip_final_snapshot() == Some(false)
                && r.delete_automated_backups() == Some(false)
        })
        .then_output(|| DeleteDbInstanceOutput::builder().build());
    let keep_cluster = mock!(aws_sdk_rds::Client::delete_db_cluster)
        .match_requests(|r| {
            r.db_cluster_identifier() == Some("lbfo-0a1b2c3d-ledger")
                && r.final_db_snapshot_identifier() == Some("lbfo-0a1b2c3d-ledger-final")
                && r.skip_final_snapshot() == Some(false)
                && r.delete_automated_backups() == Some(false)
        })
        .then_output(|| DeleteDbClusterOutput::builder().build());
    let throwaway = mock!(aws_sdk_rds::Client::delete_db_instance)
        .match_requests(|r| {
            r.db_instance_identifier() == Some("lbdr-0a1b2c3d-orders")
                && r.final_db_snapshot_identifier().is_none()
                && r.skip_final_snapshot() == Some(true)
                && r.delete_automated_backups() == Some(true)
        })
        .then_output(|| DeleteDbInstanceOutput::builder().build());
    // A restored cluster's writer goes first (RDS refuses to delete a cluster with
    // members); the cluster's final snapshot keeps the data.
    let members = mock!(aws_sdk_rds::Client::describe_db_clusters).then_output(|| {
        aws_sdk_rds::operation::describe_db_clusters::DescribeDbClustersOutput::builder()
            .db_clusters(
                aws_sdk_rds::types::DbCluster::builder()
                    .db_cluster_identifier("lbfo-0a1b2c3d-ledger")
                    .db_cluster_members(
                        aws_sdk_rds::types::DbClusterMember::builder()
                            .db_instance_identifier("lbfo-0a1b2c3d-ledger-w1")
                            .is_cluster_writer(true)
                            .build(),
                    )
                    .build(),
            )
            .build()
    });
    let writer = mock!(aws_sdk_rds::Client::delete_db_instance)
        .match_requests(|r| r.db_instance_identifier() == Some("lbfo-0a1b2c3d-ledger-w1"))
        .then_output(|| DeleteDbInstanceOutput::builder().build());
    let client = mock_client!(
        aws_sdk_rds,
        RuleMode::MatchAny,
        [&keep_instance, &members, &writer, &keep_cluster, &throwaway]
    );
    let region = Region::parse("us-west-2").unwrap();
    let dbs = RdsDrDatabases::with_clients(HashMap::from([(region.clone(), client)]));
    dbs.delete(
        &region,
        ResourceKind::RdsInstance,
        "lbfo-0a1b2c3d-orders",
        DeleteMode::KeepData {
            final_snapshot: "lbfo-0a1b2c3d-orders-final",
        },
    )
    .await
    .unwrap();
    dbs.delete(
        &region,
        ResourceKind::AuroraCluster,
        "lbfo-0a1b2c3d-ledger",
        DeleteMode::KeepData {
            final_snapshot: "lbfo-0a1b2c3d-ledger-final",
        },
    )
    .await
    .unwrap();
    dbs.delete(
        &region,
        ResourceKind::RdsInstance,
        "lbdr-0a1b2c3d-orders",
        DeleteMode::Throwaway,
    )
    .await
    .unwrap();
    assert_eq!(
        (
            keep_instance.num_calls(),
            writer.num_calls(),
            keep_cluster.num_calls(),
            throwaway.num_calls()
        ),
        (1, 1, 1, 1)
    );
}
