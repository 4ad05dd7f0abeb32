use super::*;

#[test]
fn simple_policy_round_trips() {
    let p = Policy::from_json(
        r#"{"name":"gold","every":"1h","rpo":"2h","retain":7,"priority":1,
            "copies":[{"region":"us-west-2","kms_key_id":"arn:aws:kms:us-west-2:123456789012:key/abc"}]}"#,
    )
    .unwrap();
    assert_eq!(p.schedule, Schedule::Every(Duration::from_hours(1)));
    assert_eq!(p.retention, Retention::last(7));
    assert_eq!(p.copies[0].region.as_str(), "us-west-2");
    assert_eq!(Policy::from_document(&p.to_document()).unwrap(), p);
}

#[test]
fn full_policy_with_cron_gfs_and_windows_round_trips() {
    let p = Policy::from_json(
        r#"{"name":"shop","cron":"0 */4 * * *","timezone":"Europe/Berlin","rpo":"5h",
            "retention":{"hourly":24,"daily":7,"weekly":4,"monthly":12,"yearly":3,"min_age":"1h"},
            "windows":[{"name":"black-friday","from":"2026-11-27T00:00:00+01:00","to":"2026-12-01T00:00:00+01:00"},
                       {"name":"weekends","days":["sat","sun"],"from":"00:00","to":"24:00"}],
            "window_rule":{"every":"15m","rpo":"15m"}}"#,
    )
    .unwrap();
    assert_eq!(p.timezone, chrono_tz::Europe::Berlin);
    assert_eq!(Policy::from_document(&p.to_document()).unwrap(), p);
    let friday: DateTime<Utc> = "2026-11-27T10:07:00Z".parse().unwrap();
    let e = p.effective(friday, &[]);
    assert_eq!(e.window, Some("black-friday"));
    assert_eq!(
        e.slot.unwrap().start(),
        "2026-11-27T10:00:00Z".parse::<DateTime<Utc>>().unwrap()
    );
    assert_eq!(e.rpo, Duration::from_mins(15));
    let tuesday: DateTime<Utc> = "2026-11-24T10:07:00Z".parse().unwrap();
    let e = p.effective(tuesday, &[]);
    assert_eq!(e.window, None);
    // 0 */4 in Berlin (UTC+1): 08:00 local = 07:00Z is the latest slot before 10:07Z.
    assert_eq!(
        e.slot.unwrap().start(),
        "2026-11-24T07:00:00Z".parse::<DateTime<Utc>>().unwrap()
    );
}

#[test]
fn every_problem_is_listed() {
    let err = Policy::from_json(
        r#"{"name":"Bad Name","every":"1h","rpo":"10m","retain":0,"priority":12,
            "copies":[{"region":"us-west-2","kms_key_id":"arn:aws:kms:eu-west-1:1:key/x"},
                      {"region":"nowhere"},{"region":"us-west-2"}]}"#,
    )
    .unwrap_err();
    let all = err.problems.join("\n");
    for needle in [
        "policy name",
        "rpo:",
        "keeps nothing",
        "priority:",
        "eu-west-1",
        "nowhere",
        "twice",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in {all}");
    }
}

#[test]
fn bad_cron_zone_and_window_rules_are_listed() {
    let err =
        Policy::from_json(r#"{"name":"x","cron":"0 25 * * *","timezone":"Mars/Olympus","rpo":"1h","retention":{}}"#)
            .unwrap_err();
    let all = err.problems.join("\n");
    for needle in ["timezone", "keeps nothing"] {
        assert!(all.contains(needle), "missing {needle:?} in {all}");
    }
    let err = Policy::from_json(r#"{"name":"x","cron":"0 25 * * *","rpo":"1h","retain":1}"#).unwrap_err();
    assert!(err.problems[0].contains("cron"), "{err}");
    let err = Policy::from_json(r#"{"name":"x","cron":"0 9 * * mon-fri","rpo":"25h","retain":1}"#).unwrap_err();
    assert!(err.problems[0].contains("longest gap (3days)"), "{err}");
    let err = Policy::from_json(
        r#"{"name":"x","every":"1h","rpo":"1h","retain":1,"window_rule":{"every":"30m","rpo":"10m"}}"#,
    )
    .unwrap_err();
    let all = err.problems.join("\n");
    assert!(all.contains("window_rule: rpo"), "{all}");
    let err = Policy::from_json(r#"{"name":"x","every":"1h","cron":"0 * * * *","rpo":"1h"}"#).unwrap_err();
    assert!(err.problems.join(" ").contains("not both") && err.problems.join(" ").contains("retention is required"));
}

#[test]
fn an_aws_backup_target_is_validated_and_round_trips() {
    let p = Policy::from_json(
        r#"{"name":"vaulted","every":"1day","rpo":"26h","retain":7,
            "aws_backup":{"vault":"lifeboat-vault","role_arn":"arn:aws:iam::123456789012:role/backup","require_lock":true}}"#,
    )
    .unwrap();
    assert!(p.aws_backup.as_ref().unwrap().require_lock);
    assert_eq!(Policy::from_document(&p.to_document()).unwrap(), p);
    let err = Policy::from_json(
        r#"{"name":"vaulted","every":"1day","rpo":"26h","retain":7,"copies":[{"region":"us-west-2"}],
            "aws_backup":{"vault":"no spaces","role_arn":"arn:aws:iam::123:user/x"}}"#,
    )
    .unwrap_err();
    let all = err.problems.join("\n");
    for needle in ["aws_backup.vault", "aws_backup.role_arn", "copy rules"] {
        assert!(all.contains(needle), "missing {needle:?} in {all}");
    }
}

#[test]
fn a_verify_rule_is_validated_round_trips_and_says_when_it_is_due() {
    let p = Policy::from_json(
        r#"{"name":"files","every":"1day","rpo":"26h","retain":7,"verify":{"every":"7days","sample":100}}"#,
    )
    .unwrap();
    let rule = p.verify.unwrap();
    assert_eq!((rule.every, rule.sample), (Duration::from_hours(168), Some(100)));
    assert_eq!(Policy::from_document(&p.to_document()).unwrap(), p);
    let now: DateTime<Utc> = "2026-11-24T00:00:00Z".parse().unwrap();
    assert!(rule.due(None, now));
    assert!(rule.due(Some(now - chrono::Duration::days(7)), now));
    assert!(!rule.due(Some(now - chrono::Duration::days(6)), now));
    // A verification stamped in the future (clock skew) is not due.
    assert!(!rule.due(Some(now + chrono::Duration::hours(1)), now));
    let err = Policy::from_json(
        r#"{"name":"files","every":"1day","rpo":"26h","retain":7,"verify":{"every":"5m","sample":0}}"#,
    )
    .unwrap_err();
    assert!(err.problems.join(" ").contains("verify.every"), "{err}");
    let err = Policy::from_json(
        r#"{"name":"files","every":"1day","rpo":"26h","retain":7,"verify":{"every":"1day","sample":0}}"#,
    )
    .unwrap_err();
    assert!(err.problems.join(" ").contains("verify.sample"), "{err}");
}

#[test]
fn a_copy_shared_with_another_account_needs_a_customer_key() {
    let p = Policy::from_json(
        r#"{"name":"gold","every":"1h","rpo":"2h","retain":7,
            "copies":[{"region":"us-west-2","account":"444455556666","kms_key_id":"arn:aws:kms:us-west-2:111122223333:key/k"}]}"#,
    )
    .unwrap();
    assert_eq!(p.copies[0].account.as_deref(), Some("444455556666"));
    assert_eq!(Policy::from_document(&p.to_document()).unwrap(), p);
    let err = Policy::from_json(
        r#"{"name":"gold","every":"1h","rpo":"2h","retain":7,
            "copies":[{"region":"us-west-2","account":"4444"},{"region":"eu-west-1","account":"444455556666","kms_key_id":"alias/aws/rds"}]}"#,
    )
    .unwrap_err();
    let all = err.problems.join("\n");
    for needle in ["copies[0].account", "copies[0]: sharing", "copies[1]: sharing"] {
        assert!(all.contains(needle), "missing {needle:?} in {all}");
    }
}

#[test]
fn an_export_rule_is_validated_with_every_problem_and_round_trips() {
    let p = Policy::from_json(
        r#"{"name":"db","every":"1day","rpo":"26h","retain":7,
            "export":{"every":"30d","kms_key_id":"arn:aws:kms:us-west-2:123456789012:key/k",
                      "role_arn":"arn:aws:iam::123456789012:role/rds-export","class":"DEEP_ARCHIVE","keep":"7y"}}"#,
    )
    .unwrap();
    assert_eq!(
        p.export.as_ref().unwrap().class,
        super::super::tiering::S3Class::DeepArchive
    );
    assert_eq!(Policy::from_document(&p.to_document()).unwrap(), p);
    let err = Policy::from_json(
        r#"{"name":"db","every":"1day","rpo":"26h","retain":0,
            "export":{"every":"30d","class":"STANDARD","keep":"30d"}}"#,
    )
    .unwrap_err();
    let all = err.problems.join("\n");
    for needle in ["keeps nothing", "export.kms_key_id", "export.role_arn", "export.class"] {
        assert!(all.contains(needle), "missing {needle:?} in {all}");
    }
    let err = Policy::from_json(r#"{"name":"db","every":"1day","rpo":"26h","retain":1,"export":{"evry":"30d"}}"#)
        .unwrap_err();
    assert!(err.problems[0].contains("evry"), "{err}");
    let err = Policy::from_json(
        r#"{"name":"db","every":"1day","rpo":"26h","retain":7,
            "aws_backup":{"vault":"v1","role_arn":"arn:aws:iam::123456789012:role/backup"},
            "export":{"every":"30d","kms_key_id":"alias/export","role_arn":"arn:aws:iam::123456789012:role/rds-export"}}"#,
    )
    .unwrap_err();
    assert!(
        err.problems
            .join(" ")
            .contains("export: a policy that delegates to AWS Backup"),
        "{err}"
    );
}

#[test]
fn a_document_that_does_not_parse_is_named_by_its_name_or_its_key() {
    let err = Policy::from_json(r#"{"name": "orders-gold", "every": 3}"#).unwrap_err();
    assert_eq!(err.policy, "orders-gold");
    assert!(err.problems[0].contains("not a valid policy document"), "{err}");
    let err = Policy::from_json("not json at all").unwrap_err();
    assert_eq!(err.policy, "(unnamed document)");
    for json in [
        "not json at all",
        r#"{"name": "other", "every": 3}"#,
        r#"{"name":"x","every":"1h","rpo":"5m","retain":0}"#,
    ] {
        let err = Policy::from_stored("ledger", json).unwrap_err();
        assert_eq!(err.policy, "ledger", "{json}");
        assert!(err.to_string().starts_with("policy \"ledger\" is invalid: "), "{err}");
    }
    assert!(Policy::from_stored("x", r#"{"name":"x","every":"1h","rpo":"1h","retain":1}"#).is_ok());
}

#[test]
fn garbage_is_rejected_with_a_message() {
    let err = Policy::from_json("{\"name\": 3}").unwrap_err();
    assert!(err.problems[0].contains("not a valid policy document"));
    let err = Policy::from_json(r#"{"name":"a","every":"soon","rpo":"1h","retain":1}"#).unwrap_err();
    assert!(err.problems[0].contains("every"));
}
