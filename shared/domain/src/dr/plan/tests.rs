#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn rds_default_groups_are_left_to_rds() {
    assert_eq!(named_group("default.postgres16"), None);
    assert_eq!(named_group("default:postgres-16"), None);
    assert_eq!(named_group(""), None);
    assert_eq!(named_group("orders-pg16").as_deref(), Some("orders-pg16"));
}

const GOOD: &str = r#"{
    "name": "orders-dr", "source_region": "us-east-1", "dr_region": "us-west-2",
    "databases": [
        {"arn": "arn:aws:rds:us-east-1:123456789012:db:orders", "read_replica": "orders-replica"},
        {"arn": "arn:aws:rds:us-east-1:123456789012:cluster:ledger", "step": 2,
         "global_cluster": "ledger-global", "read_replica": "ledger-west"}
    ],
    "rto": "30m", "rpo": "15m",
    "prechecks": {"kms_key_id": "arn:aws:kms:us-west-2:1:key/k", "subnet_group": "dr-private"},
    "network": {"security_groups": ["sg-0123456789abcdef0"]},
    "validation": {"expect_tags": {"app": "orders"}, "lambda_arn": "arn:aws:lambda:us-west-2:1:function:check"},
    "switch": {"region": "us-east-1", "parameters": {"/orders/db/endpoint": "orders"}}
}"#;

#[test]
fn a_failback_quiesce_parses_round_trips_and_bad_ones_are_listed() {
    let with = |quiesce: &str| {
        GOOD.replace(
            r#""switch": {"region": "us-east-1", "parameters": {"/orders/db/endpoint": "orders"}}"#,
            &format!(
                r#""switch": {{"region": "us-east-1", "parameters": {{"/orders/db/endpoint": "orders"}},
                              "hosted_zone_id": "Z1", "quiesce": {quiesce}}}"#
            ),
        )
    };
    let plan = DrPlan::from_json(&with(
        r#"{"parameters": {"/orders/db/endpoint": "maintenance.invalid", "/orders/read-only": "true"},
            "records": {"orders-db.example.com": "maintenance.example.com"}, "settle": "90s"}"#,
    ))
    .unwrap();
    let q = plan.switch.as_ref().unwrap().quiesce.clone().unwrap();
    assert_eq!(q.settle, Duration::from_secs(90));
    assert_eq!(q.parameters["/orders/read-only"], "true");
    assert_eq!(q.records["orders-db.example.com."], "maintenance.example.com");
    assert_eq!(DrPlan::from_json(&plan.to_json()).unwrap(), plan);
    // The settle time defaults to the switch's TTL.
    let plan = DrPlan::from_json(&with(r#"{"parameters": {"/orders/read-only": "true"}}"#)).unwrap();
    assert_eq!(
        plan.switch.unwrap().quiesce.unwrap().settle,
        Duration::from_secs(DEFAULT_SWITCH_TTL.unsigned_abs())
    );
    let all = DrPlan::from_json(&with(
        r#"{"parameters": {"orders/x": "", "/ok": "v"}, "records": {"not a name": "also not"}, "settle": "3h"}"#,
    ))
    .unwrap_err()
    .problems
    .join("\n");
    for needle in [
        "switch.quiesce.parameters: \"orders/x\" is not a parameter path",
        "switch.quiesce.parameters[orders/x]: the value must be",
        "switch.quiesce.records: \"not a name\" is not a DNS name",
        "is not a host name to point at",
        "switch.quiesce.settle: at most 1h",
    ] {
        assert!(all.contains(needle), "{needle} not in:\n{all}");
    }
    let all = DrPlan::from_json(&with("{}")).unwrap_err().problems.join("\n");
    assert!(all.contains("switch.quiesce: name at least one"), "{all}");
    let all = DrPlan::from_json(&with(r#"{"parameter": {}}"#))
        .unwrap_err()
        .problems
        .join("\n");
    assert!(all.contains("parameter"), "unknown fields are refused: {all}");
}

#[test]
fn a_good_plan_parses_and_round_trips() {
    let plan = DrPlan::from_json(GOOD).unwrap();
    assert_eq!(plan.rto, Duration::from_mins(30));
    assert_eq!(plan.restore_deadline, plan.rto, "the deadline defaults to the RTO");
    assert_eq!(plan.databases[1].step, 2);
    assert!(plan.prechecks.recovery_point);
    let again = DrPlan::from_json(&plan.to_json()).unwrap();
    assert_eq!(again, plan);
}

#[test]
fn s3_data_sets_parse_with_their_sample_and_bad_ones_are_listed() {
    let only_data = r#"{"name": "media-dr", "source_region": "us-east-1", "dr_region": "us-west-2",
        "data": [{"bucket": "media", "prefix": "photos/"}, {"bucket": "invoices", "sample": 50}],
        "rto": "1h", "rpo": "1h"}"#;
    let plan = DrPlan::from_json(only_data).unwrap();
    assert!(plan.databases.is_empty());
    assert_eq!(plan.data[0].sample, DEFAULT_DATA_SAMPLE);
    assert_eq!(
        (
            plan.data[1].bucket.as_str(),
            plan.data[1].prefix.as_str(),
            plan.data[1].sample
        ),
        ("invoices", "", 50)
    );
    assert_eq!(DrPlan::from_json(&plan.to_json()).unwrap(), plan);

    let bad = r#"{"name": "media-dr", "source_region": "us-east-1", "dr_region": "us-west-2",
        "data": [{"bucket": "Media_Bucket"}, {"bucket": "media", "sample": 0},
                 {"bucket": "media", "sample": 20000}],
        "rto": "1h", "rpo": "1h"}"#;
    let all = DrPlan::from_json(bad).unwrap_err().problems.join("\n");
    for needle in [
        "data[0].bucket",
        "data[1].sample: 0",
        "data[2].sample: 20000",
        "data[2]: media/ is listed twice",
    ] {
        assert!(all.contains(needle), "{needle} not in:\n{all}");
    }
    let empty = r#"{"name": "x", "source_region": "us-east-1", "dr_region": "us-west-2", "rto": "1h", "rpo": "1h"}"#;
    let all = DrPlan::from_json(empty).unwrap_err().problems.join("\n");
    assert!(all.contains("at least one database (or S3 data set"), "{all}");
}

#[test]
fn tables_parse_round_trip_and_bad_ones_are_all_listed() {
    let plan = DrPlan::from_json(
        r#"{"name": "orders-dr", "source_region": "us-east-1", "dr_region": "us-west-2",
            "tables": [{"arn": "arn:aws:dynamodb:us-east-1:123456789012:table/orders.v2_x"}],
            "rto": "1h", "rpo": "1h",
            "switch": {"region": "us-east-1", "parameters": {"/orders/table": "orders.v2_x"}}}"#,
    )
    .unwrap();
    assert_eq!(
        (plan.tables[0].name.as_str(), plan.tables[0].region.as_str()),
        ("orders.v2_x", "us-east-1")
    );
    assert_eq!(DrPlan::from_json(&plan.to_json()).unwrap(), plan);

    let bad = r#"{"name": "orders-dr", "source_region": "us-east-1", "dr_region": "us-west-2",
        "tables": [{"arn": "arn:aws:dynamodb:us-east-1:123456789012:table/orders"},
                   {"arn": "arn:aws:dynamodb:us-east-1:123456789012:table/orders"},
                   {"arn": "arn:aws:dynamodb:mars-1:123456789012:table/x1y"},
                   {"arn": "arn:aws:dynamodb:us-east-1:123456789012:table/no"},
                   {"arn": "arn:aws:rds:us-east-1:123456789012:db:orders"},
                   {"arn": "arn:aws:dynamodb:us-east-1:123456789012:table/a b c"},
                   {"arn": "arn:aws:dynamodb:eu-west-1:123456789012:table/orders"},
                   {"table": "orders"}],
        "rto": "1h", "rpo": "1h",
        "switch": {"region": "us-east-1", "parameters": {"/orders/table": "carts"}}}"#;
    let all = DrPlan::from_json(bad).unwrap_err().problems.join("\n");
    assert!(all.contains("unknown field `table`"), "{all}");
    let bad = bad.replace(
        r#",
                   {"table": "orders"}"#,
        "",
    );
    let all = DrPlan::from_json(&bad).unwrap_err().problems.join("\n");
    for needle in [
        "tables[1].arn: arn:aws:dynamodb:us-east-1:123456789012:table/orders is listed twice",
        "tables[2].arn",
        "tables[3].arn",
        "tables[4].arn",
        "tables[5].arn",
        "tables[6].arn: arn:aws:dynamodb:eu-west-1:123456789012:table/orders is in eu-west-1, neither",
        "switch.parameters[/orders/table]: \"carts\" is not a database or table of this plan",
    ] {
        assert!(all.contains(needle), "{needle} not in:\n{all}");
    }
    assert!(!all.contains("tables[0]"), "{all}");
}

#[test]
fn every_problem_is_listed_at_once() {
    let bad = r#"{
        "name": "Orders DR", "source_region": "us-east-1", "dr_region": "us-east-1",
        "databases": [
            {"arn": "arn:aws:dynamodb:us-east-1:123456789012:table/orders"},
            {"arn": "arn:aws:rds:us-east-1:123456789012:db:ok", "step": 3, "global_cluster": "g"},
            {"arn": "arn:aws:rds:us-east-1:123456789012:cluster:c", "read_replica": "r", "global_move": "planned"},
            {"arn": "arn:aws:rds:eu-west-1:123456789012:db:elsewhere"},
            {"arn": "arn:aws:rds:us-east-1:123456789012:cluster:g", "global_cluster": "gg",
             "read_replica": "g-west", "global_move": "whenever"}
        ],
        "rto": "soon", "rpo": "0s",
        "validation": {"lambda_arn": "arn:aws:s3:::bucket"},
        "switch": {"region": "mars", "parameters": {"x": "nope"}},
        "rehearsal_fault": "precheck"
    }"#;
    let err = DrPlan::from_json(bad).unwrap_err();
    let all = err.problems.join("\n");
    for needle in [
        "name:",
        "dr_region: must differ",
        "rto:",
        "rpo: must be more than zero",
        "databases[0].arn",
        "databases[1].global_cluster: only for aurora-cluster",
        "databases[1].global_cluster: name the DR-region secondary",
        "databases[2].read_replica: for a cluster, only with global_cluster",
        "databases[3].arn: arn:aws:rds:eu-west-1:123456789012:db:elsewhere is not in source_region",
        "databases[2].global_move: only with global_cluster",
        "databases[4].global_move: \"whenever\" is not outage or planned",
        "steps must run",
        "validation.lambda_arn",
        "switch.region",
        "is not a parameter path",
        "is not a database or table of this plan",
        "rehearsal_fault",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
}

#[test]
fn a_global_database_moves_by_outage_failover_unless_the_plan_says_planned() {
    let p = DrPlan::from_json(GOOD).unwrap();
    assert_eq!(p.databases[1].global_move, GlobalMove::Outage);
    let planned = GOOD.replace(
        r#""global_cluster": "ledger-global","#,
        r#""global_cluster": "ledger-global", "global_move": "planned","#,
    );
    let p = DrPlan::from_json(&planned).unwrap();
    assert_eq!(p.databases[1].global_move, GlobalMove::Planned);
    // The document round-trips, and names the move only where there is a global cluster.
    let doc = p.to_document();
    assert_eq!(doc.databases[1].global_move.as_deref(), Some("planned"));
    assert_eq!(doc.databases[0].global_move, None);
    assert_eq!(DrPlan::from_json(&p.to_json()).unwrap(), p);
}

#[test]
fn unknown_fields_and_garbage_are_refused_without_panicking() {
    assert!(DrPlan::from_json(r#"{"name":"a","surprise":1}"#).is_err());
    for junk in ["", "null", "[]", "{", "\"plan\""] {
        assert!(DrPlan::from_json(junk).is_err());
    }
}

#[test]
fn rds_identifiers() {
    for ok in ["a", "orders-db", "a1"] {
        assert!(is_rds_identifier(ok), "{ok}");
    }
    for bad in ["", "1a", "a-", "a--b", "a_b", &"a".repeat(64)] {
        assert!(!is_rds_identifier(bad), "{bad}");
    }
}

#[test]
fn dns_records_in_a_switch_are_validated_and_round_trip() {
    let plan = DrPlan::from_json(
        r#"{"name": "orders-dr", "source_region": "us-east-1", "dr_region": "us-west-2",
            "databases": [{"arn": "arn:aws:rds:us-east-1:123456789012:db:orders"}],
            "rto": "30m", "rpo": "15m", "network": {"allow_default_network": true},
            "switch": {"region": "us-east-1", "hosted_zone_id": "Z0123456789ABC",
                       "records": {"Orders-DB.internal.example.com": "orders"}}}"#,
    )
    .unwrap();
    let sw = plan.switch.as_ref().unwrap();
    assert_eq!(
        sw.records.keys().collect::<Vec<_>>(),
        ["orders-db.internal.example.com."]
    );
    assert_eq!(sw.ttl, DEFAULT_SWITCH_TTL);
    assert_eq!(DrPlan::from_json(&plan.to_json()).unwrap(), plan);
    let err = DrPlan::from_json(
        r#"{"name": "orders-dr", "source_region": "us-east-1", "dr_region": "us-west-2",
            "databases": [{"arn": "arn:aws:rds:us-east-1:123456789012:db:orders"}],
            "rto": "30m", "rpo": "15m",
            "switch": {"region": "us-east-1", "ttl": 0,
                       "records": {"not a name": "orders", "ledger.example.com.": "ledger"}}}"#,
    )
    .unwrap_err();
    let all = err.problems.join("\n");
    for needle in [
        "switch.hosted_zone_id",
        "is not a DNS name",
        "ledger\" is not a database",
        "switch.ttl",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in {all}");
    }
}

const PLACED: &str = r#"{
    "name": "orders-dr", "source_region": "us-east-1", "dr_region": "us-west-2",
    "databases": [
        {"arn": "arn:aws:rds:us-east-1:123456789012:db:orders", "parameter_group": "orders-pg16",
         "option_group": "orders-og"},
        {"arn": "arn:aws:rds:us-east-1:123456789012:cluster:ledger", "instance_class": "db.r6g.large",
         "cluster_parameter_group": "ledger-cpg", "parameter_group": "ledger-pg"}
    ],
    "rto": "30m", "rpo": "15m",
    "prechecks": {"subnet_group": "dr-private"},
    "network": {"security_groups": ["sg-0123456789abcdef0"], "source_subnet_group": "east-private",
                "source_security_groups": ["sg-11111111"]}
}"#;

#[test]
fn a_plan_that_would_restore_into_the_default_network_is_refused_naming_what_is_missing() {
    let bare = r#"{"name": "orders-dr", "source_region": "us-east-1", "dr_region": "us-west-2",
        "databases": [{"arn": "arn:aws:rds:us-east-1:123456789012:db:orders"}], "rto": "30m", "rpo": "15m"}"#;
    let all = DrPlan::from_json(bare).unwrap_err().problems.join("\n");
    assert!(all.contains("default VPC"), "{all}");
    assert!(
        all.contains("prechecks.subnet_group") && all.contains("network.security_groups"),
        "{all}"
    );
    let no_groups = bare.replace(
        r#""rpo": "15m""#,
        r#""rpo": "15m", "prechecks": {"subnet_group": "dr"}"#,
    );
    let all = DrPlan::from_json(&no_groups).unwrap_err().problems.join("\n");
    assert!(
        all.contains("network.security_groups") && !all.contains("prechecks.subnet_group ("),
        "{all}"
    );
    let bad_sg = bare.replace(
        r#""rpo": "15m""#,
        r#""rpo": "15m", "prechecks": {"subnet_group": "dr"}, "network": {"security_groups": ["default"]}"#,
    );
    let all = DrPlan::from_json(&bad_sg).unwrap_err().problems.join("\n");
    assert!(all.contains("is not a VPC security group id"), "{all}");
    // Said explicitly, it is allowed; a plan of tables only places no database.
    let allowed = bare.replace(
        r#""rpo": "15m""#,
        r#""rpo": "15m", "network": {"allow_default_network": true}"#,
    );
    assert!(DrPlan::from_json(&allowed).unwrap().network.allow_default_network);
    let placed = DrPlan::from_json(PLACED).unwrap();
    assert_eq!(DrPlan::from_json(&placed.to_json()).unwrap(), placed);
    let misplaced = PLACED.replace(
        r#""parameter_group": "orders-pg16""#,
        r#""cluster_parameter_group": "x""#,
    );
    let all = DrPlan::from_json(&misplaced).unwrap_err().problems.join("\n");
    assert!(
        all.contains("databases[0].cluster_parameter_group: only for aurora-cluster"),
        "{all}"
    );
}

#[test]
fn restores_carry_the_plans_placement_or_the_sources_own_in_its_region() {
    let plan = DrPlan::from_json(PLACED).unwrap();
    let (orders, ledger) = (&plan.databases[0], &plan.databases[1]);
    let dr = plan.restore_settings(orders, true, None).unwrap();
    assert_eq!(
        dr,
        RestoreSettings {
            subnet_group: Some("dr-private".into()),
            security_groups: vec!["sg-0123456789abcdef0".into()],
            parameter_group: Some("orders-pg16".into()),
            cluster_parameter_group: None,
            option_group: Some("orders-og".into()),
        }
    );
    let dr = plan.restore_settings(ledger, true, None).unwrap();
    assert_eq!(dr.cluster_parameter_group.as_deref(), Some("ledger-cpg"));
    // In the source region: the plan's source placement wins over the source's.
    let source = DbPlacement {
        subnet_group: Some("east-default-ish".into()),
        security_groups: vec!["sg-22222222".into()],
        parameter_group: Some("source-pg".into()),
        cluster_parameter_group: None,
        option_group: Some("source-og".into()),
    };
    let east = plan.restore_settings(orders, false, Some(&source)).unwrap();
    assert_eq!(east.subnet_group.as_deref(), Some("east-private"));
    assert_eq!(east.security_groups, ["sg-11111111"]);
    assert_eq!(east.parameter_group.as_deref(), Some("orders-pg16"));

    // No source placement in the plan: the source database's own.
    let mut doc = plan.to_document();
    doc.network = Some(NetworkDocument {
        security_groups: vec!["sg-0123456789abcdef0".into()],
        ..NetworkDocument::default()
    });
    doc.databases[0].parameter_group = None;
    doc.databases[0].option_group = None;
    let plan = DrPlan::from_document(&doc).unwrap();
    let east = plan.restore_settings(&plan.databases[0], false, Some(&source)).unwrap();
    assert_eq!(
        east,
        RestoreSettings {
            subnet_group: Some("east-default-ish".into()),
            security_groups: vec!["sg-22222222".into()],
            parameter_group: Some("source-pg".into()),
            cluster_parameter_group: None,
            option_group: Some("source-og".into()),
        }
    );
    // Neither the plan nor a readable source: refused, naming what is missing.
    let err = plan.restore_settings(&plan.databases[0], false, None).unwrap_err();
    assert!(
        err.contains("orders") && err.contains("network.source_subnet_group") && err.contains("security groups"),
        "{err}"
    );
}
