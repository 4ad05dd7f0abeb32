#![allow(clippy::unwrap_used)]

use super::*;

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn plan() -> DrPlan {
    DrPlan::from_json(
        r#"{"name":"p","source_region":"us-east-1","dr_region":"us-west-2","rto":"30m","rpo":"15m",
            "databases":[{"arn":"arn:aws:rds:us-east-1:123456789012:db:orders","read_replica":"orders-r"},
                         {"arn":"arn:aws:rds:us-east-1:123456789012:cluster:ledger","step":2}],
            "network":{"allow_default_network":true}}"#,
    )
    .unwrap()
}

#[test]
fn names_are_deterministic_valid_rds_identifiers() {
    let a = resource_name("lbdr", "exec-1", "orders");
    assert_eq!(a, resource_name("lbdr", "exec-1", "orders"));
    assert_ne!(a, resource_name("lbdr", "exec-2", "orders"));
    let long = resource_name("lbdr", "e", &"x".repeat(63));
    assert!(is_rds_identifier(&long) && long.len() == 63);
    let writer = writer_instance_name(&long);
    assert!(
        is_rds_identifier(&writer) && writer.starts_with(&long[..60]),
        "{writer}"
    );
    assert_eq!(writer_instance_name("lbdr-1234abcd-ledger"), "lbdr-1234abcd-ledger-w1");
}

#[test]
fn source_choice_follows_the_rules_and_says_why() {
    let p = plan();
    let now = t("2026-11-23T03:00:00Z");
    let copy = Some((
        "us-west-2/db/lb-x".to_owned(),
        "lb-x".to_owned(),
        t("2026-11-23T02:50:00Z"),
    ));
    let healthy = SourceFacts {
        source_healthy: true,
        pitr_window: Some((t("2026-11-16T03:00:00Z"), t("2026-11-23T02:59:00Z"))),
        replica_available: true,
        newest_dr_copy: copy.clone(),
    };
    // Drill, healthy, 1 minute past the latest restorable time: PITR at that time.
    let (s, why) = choose_source(Mode::Drill, &p.databases[0], &healthy, now, now);
    assert_eq!(
        s,
        Some(Source::PointInTime {
            restore_time: t("2026-11-23T02:59:00Z")
        }),
        "{why}"
    );
    // Drill, a target inside the window.
    let (s, _) = choose_source(Mode::Drill, &p.databases[0], &healthy, t("2026-11-20T00:00:00Z"), now);
    assert!(matches!(s, Some(Source::PointInTime { .. })));
    // Drill, source down: the DR copy; drills never promote.
    let down = SourceFacts {
        source_healthy: false,
        ..healthy.clone()
    };
    let (s, why) = choose_source(Mode::Drill, &p.databases[0], &down, now, now);
    assert!(matches!(s, Some(Source::DrSnapshot { .. })), "{why}");
    assert!(why.contains("source region unhealthy"), "{why}");
    // Failover with a replica: promote it.
    let (s, why) = choose_source(Mode::Failover, &p.databases[0], &healthy, now, now);
    assert!(matches!(s, Some(Source::PromoteReplica { .. })), "{why}");
    // Aurora without a global cluster: the snapshot copy.
    let (s, _) = choose_source(Mode::Failover, &p.databases[1], &healthy, now, now);
    assert!(matches!(s, Some(Source::DrSnapshot { .. })));
    // Nothing usable.
    let none = SourceFacts::default();
    let (s, why) = choose_source(Mode::Failover, &p.databases[1], &none, now, now);
    assert!(s.is_none() && why.contains("no verified recovery point"), "{why}");
}

fn global_plan(global_move: &str) -> DrPlan {
    DrPlan::from_json(&format!(
        r#"{{"name":"g","source_region":"us-east-1","dr_region":"us-west-2","rto":"30m","rpo":"15m",
            "network":{{"allow_default_network":true}},
            "databases":[{{"arn":"arn:aws:rds:us-east-1:123456789012:cluster:ledger",
                           "global_cluster":"ledger-global","read_replica":"ledger-west",
                           "global_move":"{global_move}"}}]}}"#
    ))
    .unwrap()
}

#[test]
fn a_global_database_fails_over_with_data_loss_in_an_outage() {
    let p = global_plan("outage");
    let now = t("2026-11-23T03:00:00Z");
    let copy = Some((
        "us-west-2/cluster/lb-x".to_owned(),
        "lb-x".to_owned(),
        t("2026-11-23T02:50:00Z"),
    ));
    // The primary region is down; the secondary cluster answers.
    let facts = SourceFacts {
        source_healthy: false,
        pitr_window: None,
        replica_available: true,
        newest_dr_copy: copy.clone(),
    };
    let (s, why) = choose_source(Mode::Failover, &p.databases[0], &facts, now, now);
    assert_eq!(
        s,
        Some(Source::GlobalCluster {
            global_cluster: "ledger-global".into(),
            as_of: now,
            method: GlobalMove::Outage,
        }),
        "{why}"
    );
    assert!(why.contains("AllowDataLoss") && why.contains("ledger-west"), "{why}");
    // Never by detaching and promoting the secondary, even when the primary is healthy.
    let healthy = SourceFacts {
        source_healthy: true,
        ..facts.clone()
    };
    let (s, why) = choose_source(Mode::Failover, &p.databases[0], &healthy, now, now);
    assert!(
        matches!(
            s,
            Some(Source::GlobalCluster {
                method: GlobalMove::Outage,
                ..
            })
        ),
        "{why}"
    );
    // No secondary cluster: the verified snapshot copy in the DR region.
    let no_secondary = SourceFacts {
        replica_available: false,
        ..facts.clone()
    };
    let (s, why) = choose_source(Mode::Failover, &p.databases[0], &no_secondary, now, now);
    assert!(matches!(s, Some(Source::DrSnapshot { .. })), "{why}");
    // Drills never move a global database.
    let (s, why) = choose_source(Mode::Drill, &p.databases[0], &healthy, now, now);
    assert!(matches!(s, Some(Source::DrSnapshot { .. })), "{why}");
}

#[test]
fn a_planned_move_of_a_global_database_is_a_switchover_and_needs_the_primary() {
    let p = global_plan("planned");
    let now = t("2026-11-23T03:00:00Z");
    let healthy = SourceFacts {
        source_healthy: true,
        pitr_window: None,
        replica_available: true,
        newest_dr_copy: None,
    };
    let (s, why) = choose_source(Mode::Failover, &p.databases[0], &healthy, now, now);
    assert!(
        matches!(
            s,
            Some(Source::GlobalCluster {
                method: GlobalMove::Planned,
                ..
            })
        ),
        "{why}"
    );
    assert!(why.contains("switchover") && why.contains("no data loss"), "{why}");
    // Primary down: refused with the way out, never a silent data-losing failover.
    let down = SourceFacts {
        source_healthy: false,
        ..healthy
    };
    let (s, why) = choose_source(Mode::Failover, &p.databases[0], &down, now, now);
    assert!(s.is_none(), "{why}");
    assert!(why.contains("set global_move to \"outage\""), "{why}");
}

#[test]
fn an_execution_recorded_before_the_move_was_named_reads_as_an_outage_failover() {
    let old = r#"{"type":"global-cluster","global_cluster":"g","as_of":"2026-11-23T03:00:00Z"}"#;
    let s: Source = serde_json::from_str(old).unwrap();
    assert!(matches!(
        s,
        Source::GlobalCluster {
            method: GlobalMove::Outage,
            ..
        }
    ));
}

#[test]
fn rto_and_rpo_are_measured_against_the_targets() {
    let p = plan();
    let t0 = t("2026-11-23T03:00:00Z");
    let mut e = DrExecution::new(&p, "x", Mode::Drill, t0, t0);
    assert_eq!(e.current_step(), Some(1));
    e.databases[0].source = Some(Source::PointInTime {
        restore_time: t("2026-11-23T02:59:00Z"),
    });
    e.databases[1].source = Some(Source::DrSnapshot {
        recovery_point: "r".into(),
        snapshot: "s".into(),
        taken_at: t("2026-11-23T02:40:00Z"),
    });
    e.validated_at = Some(t("2026-11-23T03:12:00Z"));
    let m = e.measure(&p);
    assert_eq!((m.rto_secs, m.rto_met), (Some(720), Some(true)));
    assert_eq!((m.rpo_secs, m.rpo_met), (Some(1200), Some(false)));
    assert_eq!(m.breaches(), vec!["RPO 1200s > target 900s".to_owned()]);
}

#[test]
fn a_quiesced_failback_loses_nothing_and_an_unquiesced_one_says_what_it_lost() {
    let p = plan();
    let t0 = t("2026-11-23T03:00:00Z");
    let mut e = DrExecution::new(&p, "fb", Mode::Failback, t0, t0);
    for d in &mut e.databases {
        d.source = Some(Source::DrSide {
            resource: "lbfo-x".into(),
            snapshot: "lbfbs-x".into(),
            taken_at: Some(t("2026-11-23T03:02:00Z")),
        });
    }
    e.begin(Action::Switch, t("2026-11-23T03:20:00Z"));
    e.end(
        Action::Switch,
        t("2026-11-23T03:20:00Z"),
        t("2026-11-23T03:20:05Z"),
        "switched",
    );
    // Not quiesced: the writes of 03:02 .. 03:20:05 stayed on the DR side.
    let w = e.failback_window().unwrap();
    assert_eq!((w.data_loss_window_secs, w.outage_secs), (Some(1085), Some(0)));
    // Quiesced at 03:01, settled by 03:01:30, snapshot at 03:02: nothing lost, and
    // writes were refused from 03:01 until the switch.
    e.quiesced_at = Some(t("2026-11-23T03:01:00Z"));
    e.writes_stopped_at = Some(t("2026-11-23T03:01:30Z"));
    let w = e.failback_window().unwrap();
    assert_eq!((w.data_loss_window_secs, w.outage_secs), (Some(0), Some(1145)));
    assert_eq!(e.report()["failback"]["data_loss_window_secs"], 0);
    assert!(
        DrExecution::new(&p, "d", Mode::Drill, t0, t0)
            .failback_window()
            .is_none()
    );
}

#[test]
fn undo_is_registered_once_and_steps_accumulate() {
    let p = plan();
    let t0 = t("2026-11-23T03:00:00Z");
    let mut e = DrExecution::new(&p, "x", Mode::Drill, t0, t0);
    let u = Undo::DeleteInstance {
        region: p.dr_region.clone(),
        id: "a".into(),
    };
    e.will_undo(Action::Restore, u.clone());
    e.will_undo(Action::Restore, u);
    assert_eq!(e.compensations.len(), 1);
    e.begin(Action::Poll, t0);
    e.end(Action::Poll, t0, t0 + chrono::Duration::milliseconds(20), "waiting");
    e.begin(Action::Poll, t0 + chrono::Duration::seconds(1));
    e.end(
        Action::Poll,
        t0 + chrono::Duration::seconds(1),
        t0 + chrono::Duration::milliseconds(1030),
        "ready",
    );
    assert_eq!((e.steps[0].runs, e.steps[0].busy_ms), (2, 50));
    assert_eq!(e.report()["steps"][0]["elapsed_ms"], 1030);
}
