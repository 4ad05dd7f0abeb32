//! Policies that select resources without the policy tag (by type, ids, tags, account),
//! and DynamoDB tables protected like databases, against the in-memory fakes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use chrono::{DateTime, Utc};
use create_snapshots::{Deps, handle};
use lifeboat_domain::{Region, ResourceKind, ResourceRef, Status};
use lifeboat_ports::Tag;
use lifeboat_testkit::{Fakes, event_json_for};

const TICK: &str = include_str!("../../../events/create-snapshots/scheduler-tick.json");

fn now() -> DateTime<Utc> {
    "2026-11-23T18:15:02Z".parse().unwrap()
}

fn add(fakes: &Fakes, kind: ResourceKind, id: &str, account: &str, tags: &[(&str, &str)]) -> ResourceRef {
    let arn = match kind {
        ResourceKind::DynamoDbTable => format!("arn:aws:dynamodb:us-east-1:{account}:table/{id}"),
        _ => format!("arn:aws:rds:us-east-1:{account}:db:{id}"),
    };
    let r = ResourceRef {
        kind,
        id: id.into(),
        arn,
        region: Region::parse("us-east-1").unwrap(),
    };
    fakes
        .snapshots
        .add_resource(r.clone(), tags.iter().map(|(k, v)| Tag::new(*k, *v)).collect());
    r
}

#[tokio::test]
async fn selected_tables_and_databases_are_backed_up_and_both_are_copied() {
    let fakes = Fakes::new(now());
    // Every prod table of one account, hourly, with a copy target (for its databases).
    fakes.catalog.put_policy_json(
        "tables",
        r#"{"name":"tables","every":"1h","rpo":"2h","retain":24,"priority":3,
            "copies":[{"region":"us-west-2"}],
            "select":{"types":["dynamodb-table"],"tags":{"env":"prod"},"accounts":["111122223333"]}}"#,
    );
    // Two databases by explicit id, daily.
    fakes.catalog.put_policy_json(
        "named",
        r#"{"name":"named","every":"1h","rpo":"2h","retain":3,"priority":5,"select":{"ids":["orders","billing"]}}"#,
    );
    let carts = add(
        &fakes,
        ResourceKind::DynamoDbTable,
        "carts",
        "111122223333",
        &[("env", "prod")],
    );
    let _dev = add(
        &fakes,
        ResourceKind::DynamoDbTable,
        "carts-dev",
        "111122223333",
        &[("env", "dev")],
    );
    let _other = add(
        &fakes,
        ResourceKind::DynamoDbTable,
        "audit",
        "444455556666",
        &[("env", "prod")],
    );
    let orders = add(&fakes, ResourceKind::RdsInstance, "orders", "111122223333", &[]);
    // Tagged for another policy: the tag wins over the selection.
    let _billing = add(
        &fakes,
        ResourceKind::RdsInstance,
        "billing",
        "111122223333",
        &[("lifeboat:policy", "nosuch")],
    );
    let deps = Deps {
        ports: fakes.ports(),
        config: Fakes::config(),
        runs: create_snapshots::DataRuns::default(),
    };

    let report = handle(&deps, event_json_for(TICK, "tick-1")).await.unwrap();
    let created: Vec<String> = report.created.iter().map(ToString::to_string).collect();
    assert_eq!(
        created,
        [
            "us-east-1/db/lb-named-orders-20261123-1800",
            "us-east-1/table/lb-tables-carts-20261123-1800",
        ]
    );
    // The tag naming an unknown policy is reported, not overridden by the selection.
    assert!(
        report
            .skipped
            .iter()
            .any(|s| s.subject.ends_with(":db:billing") && s.code == "unknown-policy"),
        "{:?}",
        report.skipped
    );
    let table_point = fakes
        .catalog
        .points()
        .into_iter()
        .find(|p| p.resource == carts)
        .unwrap();
    assert_eq!(table_point.status, Status::Available);
    assert_eq!(table_point.policy.as_str(), "tables");
    assert!(fakes.catalog.points().iter().any(|p| p.resource == orders));
    // The table's policy has a copy target: tables are copied (as exports) as databases are.
    let tables = lifeboat_domain::Policy::from_json(
        r#"{"name":"tables","every":"1h","rpo":"2h","retain":24,"copies":[{"region":"us-west-2"}]}"#,
    )
    .unwrap();
    assert_eq!(tables.copies_for(ResourceKind::DynamoDbTable).len(), 1);
    assert_eq!(tables.copies_for(ResourceKind::RdsInstance).len(), 1);

    // A replay of the tick creates nothing more.
    let again = handle(&deps, event_json_for(TICK, "tick-2")).await.unwrap();
    assert!(again.created.is_empty());
    assert_eq!(again.already_recorded, 2);
}

#[tokio::test]
async fn a_resource_two_policies_select_goes_to_the_most_critical_and_the_overlap_is_reported() {
    let fakes = Fakes::new(now());
    fakes.catalog.put_policy_json(
        "broad",
        r#"{"name":"broad","every":"1h","rpo":"2h","retain":3,"priority":8,"select":{"types":["rds-instance"]}}"#,
    );
    fakes.catalog.put_policy_json(
        "critical",
        r#"{"name":"critical","every":"1h","rpo":"2h","retain":3,"priority":1,"select":{"tags":{"tier":"1"}}}"#,
    );
    add(
        &fakes,
        ResourceKind::RdsInstance,
        "orders",
        "111122223333",
        &[("tier", "1")],
    );
    add(&fakes, ResourceKind::RdsInstance, "scratch", "111122223333", &[]);
    let deps = Deps {
        ports: fakes.ports(),
        config: Fakes::config(),
        runs: create_snapshots::DataRuns::default(),
    };
    let report = handle(&deps, event_json_for(TICK, "tick-3")).await.unwrap();
    let created: Vec<String> = report.created.iter().map(ToString::to_string).collect();
    assert_eq!(
        created,
        [
            "us-east-1/db/lb-broad-scratch-20261123-1800",
            "us-east-1/db/lb-critical-orders-20261123-1800",
        ]
    );
    let overlap = report
        .skipped
        .iter()
        .find(|s| s.code == "several-policies")
        .expect("the overlap is reported");
    assert!(overlap.subject.ends_with(":db:orders"));
    assert!(overlap.message.contains("critical") && overlap.message.contains("broad"));
}
