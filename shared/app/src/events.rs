//! Parsing of the events that trigger Lifeboat's functions. Everything is checked here,
//! before any AWS call; a rejection names what was wrong.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::error::FunctionError;
use lifeboat_domain::PolicyName;
use lifeboat_domain::event_time::{EventTimeBounds, check_event_time};

/// Refuses an event whose `field` claims a time outside `bounds` around `now` (see
/// [`lifeboat_domain::event_time`]): `Invalid`, naming the time and the bound. Every
/// schedule-driven function checks its event's time through this, before it reads or
/// writes anything.
pub fn check_time(
    field: &str,
    time: DateTime<Utc>,
    now: DateTime<Utc>,
    bounds: EventTimeBounds,
) -> Result<(), FunctionError> {
    check_event_time(time, now, bounds)
        .map_err(|problem| FunctionError::invalid(format!("refused: the event's {field} {problem}")))
}

/// One tick of a schedule: the instant it was *scheduled* for, and optionally the one
/// policy it concerns (all policies otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleTick {
    pub scheduled_time: DateTime<Utc>,
    pub policy: Option<PolicyName>,
}

/// EventBridge Scheduler target input (see template.yaml):
/// `{"scheduledTime": "<aws.scheduler.scheduled-time>", "scheduleArn": "...", "policy": "gold"}`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SchedulerInput {
    scheduled_time: String,
    #[serde(default)]
    schedule_arn: Option<String>,
    #[serde(default)]
    policy: Option<String>,
}

/// Classic EventBridge scheduled rule event (`detail-type: Scheduled Event`).
#[derive(Deserialize)]
struct RuleEvent {
    #[serde(rename = "detail-type")]
    detail_type: String,
    source: String,
    time: String,
    #[serde(default)]
    detail: Option<Value>,
}

impl ScheduleTick {
    /// Accepts an EventBridge Scheduler input or a classic scheduled rule event whose time
    /// lies within `bounds` of `now` (the clock's reading, never the event's).
    pub fn parse(event: &Value, now: DateTime<Utc>, bounds: EventTimeBounds) -> Result<Self, FunctionError> {
        let tick = Self::parse_shape(event)?;
        check_time("scheduled time", tick.scheduled_time, now, bounds)?;
        Ok(tick)
    }

    /// The shape alone, the time not judged.
    fn parse_shape(event: &Value) -> Result<Self, FunctionError> {
        let Some(obj) = event.as_object() else {
            return Err(FunctionError::invalid(format!(
                "expected a schedule event object, got {}",
                kind_of(event)
            )));
        };
        if obj.contains_key("detail-type") {
            let rule: RuleEvent = serde_json::from_value(event.clone())
                .map_err(|e| FunctionError::invalid(format!("malformed EventBridge event: {e}")))?;
            if rule.detail_type != "Scheduled Event" || rule.source != "aws.events" {
                return Err(FunctionError::invalid(format!(
                    "unsupported event: detail-type {:.60?} from source {:.60?} (expected a Scheduled Event from aws.events)",
                    rule.detail_type, rule.source
                )));
            }
            let policy = rule
                .detail
                .as_ref()
                .and_then(|d| d.get("policy"))
                .map(|p| {
                    p.as_str()
                        .ok_or_else(|| FunctionError::invalid("detail.policy must be a string"))
                })
                .transpose()?;
            return Self::build(&rule.time, policy);
        }
        if !obj.contains_key("scheduledTime") {
            let keys: Vec<&str> = obj.keys().map(String::as_str).take(8).collect();
            return Err(FunctionError::invalid(format!(
                "unknown event: expected a schedule event with \"scheduledTime\" or an EventBridge \"detail-type\", found keys {keys:?}"
            )));
        }
        let input: SchedulerInput = serde_json::from_value(event.clone())
            .map_err(|e| FunctionError::invalid(format!("malformed schedule event: {e}")))?;
        let _ = input.schedule_arn;
        Self::build(&input.scheduled_time, input.policy.as_deref())
    }

    fn build(time: &str, policy: Option<&str>) -> Result<Self, FunctionError> {
        let scheduled_time = DateTime::parse_from_rfc3339(time)
            .map_err(|e| FunctionError::invalid(format!("scheduledTime {time:.40?} is not an RFC 3339 time: {e}")))?
            .with_timezone(&Utc);
        let policy = policy
            .map(PolicyName::parse)
            .transpose()
            .map_err(|e| FunctionError::invalid(e.to_string()))?;
        Ok(Self { scheduled_time, policy })
    }
}

/// Most resources one on-demand request may name.
pub const MAX_REQUEST_RESOURCES: usize = 50;

/// An on-demand backup asked for outside any schedule (admin API `POST /backups`):
/// `{"source": "lifeboat.admin", "detail-type": "Backup requested", "time"?: RFC 3339,
///   "detail": {"resources": [ARN, ...], "emergency": bool, "reason": "...",
///              "requestedBy"?: ARN, "requestId": "...", "requestedAt"?: RFC 3339}}`.
///
/// The request id makes a replay harmless: the snapshots are named by the request's time
/// (`requestedAt`, else the envelope's `time`), and a request id already carried out is
/// not carried out again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupRequest {
    pub resources: Vec<String>,
    pub emergency: bool,
    pub reason: String,
    pub requested_by: Option<String>,
    pub request_id: String,
    pub requested_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestEnvelope {
    source: String,
    #[serde(rename = "detail-type")]
    detail_type: String,
    #[serde(default)]
    time: Option<String>,
    detail: RequestDetail,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RequestDetail {
    resources: Vec<String>,
    #[serde(default)]
    emergency: bool,
    reason: String,
    #[serde(default)]
    requested_by: Option<String>,
    request_id: String,
    #[serde(default)]
    requested_at: Option<String>,
}

impl BackupRequest {
    pub const SOURCE: &'static str = "lifeboat.admin";
    pub const DETAIL_TYPE: &'static str = "Backup requested";

    /// True when `event` claims to be a backup request (then [`Self::parse`] judges it).
    pub fn is_one(event: &Value) -> bool {
        event.get("detail-type").and_then(Value::as_str) == Some(Self::DETAIL_TYPE)
    }

    /// Parses and validates a request; every problem is listed in the error.
    pub fn parse(event: &Value) -> Result<Self, FunctionError> {
        let env: RequestEnvelope = serde_json::from_value(event.clone())
            .map_err(|e| FunctionError::invalid(format!("malformed backup request: {e}")))?;
        let mut problems = Vec::new();
        if env.source != Self::SOURCE {
            problems.push(format!("source must be {:?}, got {:.60?}", Self::SOURCE, env.source));
        }
        if env.detail_type != Self::DETAIL_TYPE {
            problems.push(format!("detail-type must be {:?}", Self::DETAIL_TYPE));
        }
        let d = env.detail;
        if d.resources.is_empty() {
            problems.push("detail.resources: name at least one resource ARN".into());
        }
        if d.resources.len() > MAX_REQUEST_RESOURCES {
            problems.push(format!(
                "detail.resources: at most {MAX_REQUEST_RESOURCES} per request, got {}",
                d.resources.len()
            ));
        }
        for (i, arn) in d.resources.iter().enumerate() {
            if !arn.starts_with("arn:") || arn.len() > 2048 || arn.chars().any(char::is_whitespace) {
                problems.push(format!("detail.resources[{i}]: {arn:.80?} is not an ARN"));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for arn in &d.resources {
            if !seen.insert(arn) {
                problems.push(format!("detail.resources: {arn:.80?} is named twice"));
            }
        }
        if d.reason.trim().is_empty() || d.reason.len() > 512 {
            problems.push("detail.reason: say why, in 1 to 512 characters".into());
        }
        let id_ok = |s: &str| {
            !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        };
        if !id_ok(&d.request_id) {
            problems.push("detail.requestId: 1 to 128 characters of letters, digits, - _ . :".into());
        }
        let time = |field: &str, s: &str, problems: &mut Vec<String>| match DateTime::parse_from_rfc3339(s) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(e) => {
                problems.push(format!("{field}: {s:.40?} is not an RFC 3339 time ({e})"));
                None
            }
        };
        let requested_at = match (&d.requested_at, &env.time) {
            (Some(s), _) => time("detail.requestedAt", s, &mut problems),
            (None, Some(s)) => time("time", s, &mut problems),
            (None, None) => None,
        };
        if !problems.is_empty() {
            return Err(FunctionError::invalid(format!(
                "invalid backup request: {}",
                problems.join("; ")
            )));
        }
        Ok(Self {
            resources: d.resources,
            emergency: d.emergency,
            reason: d.reason,
            requested_by: d.requested_by,
            request_id: d.request_id,
            requested_at,
        })
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorType;
    use proptest::prelude::*;
    use serde_json::json;

    const B: EventTimeBounds = EventTimeBounds {
        max_skew: lifeboat_domain::event_time::DEFAULT_MAX_SKEW,
        max_age: lifeboat_domain::event_time::DEFAULT_MAX_AGE,
    };

    fn now() -> DateTime<Utc> {
        "2026-11-23T18:15:03Z".parse().unwrap()
    }

    #[test]
    fn a_tick_outside_the_bounds_is_refused_naming_its_time() {
        for (time, needle) in [
            ("1996-11-23T18:15:00Z", "MAX_EVENT_AGE"),
            ("2026-11-22T18:00:00Z", "MAX_EVENT_AGE"),
            ("2026-11-23T18:30:00Z", "MAX_EVENT_SKEW"),
        ] {
            for event in [
                json!({"scheduledTime": time}),
                json!({"detail-type": "Scheduled Event", "source": "aws.events", "time": time}),
            ] {
                let err = ScheduleTick::parse(&event, now(), B).unwrap_err();
                assert_eq!(err.kind, ErrorType::Invalid);
                assert!(
                    err.message.contains(time) && err.message.contains(needle),
                    "{}",
                    err.message
                );
            }
        }
        // A retry delivered hours late is still within the day.
        assert!(ScheduleTick::parse(&json!({"scheduledTime": "2026-11-23T02:00:00Z"}), now(), B).is_ok());
    }

    #[test]
    fn scheduler_input_and_rule_event_parse() {
        let t = ScheduleTick::parse(
            &json!({"scheduledTime": "2026-11-23T18:15:00Z", "scheduleArn": "arn:x"}),
            now(),
            B,
        )
        .unwrap();
        assert_eq!(t.scheduled_time.to_rfc3339(), "2026-11-23T18:15:00+00:00");
        assert_eq!(t.policy, None);
        let t = ScheduleTick::parse(&json!({"version":"0","id":"1","detail-type":"Scheduled Event","source":"aws.events",
            "account":"1","time":"2026-11-23T18:15:00Z","region":"us-east-1","resources":[],"detail":{"policy":"gold"}}), now(), B).unwrap();
        assert_eq!(t.policy.unwrap().as_str(), "gold");
    }

    #[test]
    fn backup_requests_parse_and_every_problem_is_listed() {
        let ok = json!({"source": "lifeboat.admin", "detail-type": "Backup requested", "time": "2026-11-23T18:05:00Z",
            "detail": {"resources": ["arn:aws:rds:us-east-1:1:db:orders"], "emergency": true,
                       "reason": "before the migration", "requestId": "req-1"}});
        assert!(BackupRequest::is_one(&ok));
        let r = BackupRequest::parse(&ok).unwrap();
        assert!(r.emergency);
        assert_eq!(r.requested_at.unwrap().to_rfc3339(), "2026-11-23T18:05:00+00:00");

        let bad = json!({"source": "someone", "detail-type": "Backup requested",
            "detail": {"resources": ["orders", "orders"], "reason": " ", "requestId": "a b"}});
        let msg = BackupRequest::parse(&bad).unwrap_err().message;
        for needle in [
            "source must be",
            "is not an ARN",
            "named twice",
            "detail.reason",
            "detail.requestId",
        ] {
            assert!(msg.contains(needle), "{needle} missing from {msg}");
        }
        let none = json!({"source": "lifeboat.admin", "detail-type": "Backup requested",
            "detail": {"resources": [], "reason": "x", "requestId": "r"}});
        assert!(
            BackupRequest::parse(&none)
                .unwrap_err()
                .message
                .contains("at least one")
        );
        let extra = json!({"source": "lifeboat.admin", "detail-type": "Backup requested",
            "detail": {"resources": ["arn:x"], "reason": "x", "requestId": "r", "force": true}});
        assert!(
            BackupRequest::parse(&extra)
                .unwrap_err()
                .message
                .contains("unknown field")
        );
    }

    #[test]
    fn rejections_name_the_problem() {
        let cases = [
            (json!([1]), "an array"),
            (json!({"foo": 1}), "unknown event"),
            (json!({"scheduledTime": "yesterday"}), "RFC 3339"),
            (
                json!({"scheduledTime": "2026-11-23T18:15:00Z", "policy": "Bad!"}),
                "policy name",
            ),
            (
                json!({"detail-type": "Object Created", "source": "aws.s3", "time": "2026-11-23T18:15:00Z"}),
                "unsupported event",
            ),
            (
                json!({"scheduledTime": "2026-11-23T18:15:00Z", "extra": 1}),
                "unknown field",
            ),
        ];
        for (event, needle) in cases {
            let err = ScheduleTick::parse(&event, now(), B).unwrap_err();
            assert_eq!(err.kind, ErrorType::Invalid);
            assert!(err.message.contains(needle), "{} lacks {needle}", err.message);
        }
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            ".{0,30}".prop_map(Value::String),
            Just(json!("2026-11-23T18:15:00Z")),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("scheduledTime".to_owned()),
                        Just("detail-type".to_owned()),
                        Just("policy".to_owned()),
                        "[a-z]{1,8}"
                    ],
                    inner,
                    0..4
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn arbitrary_json_never_panics_and_rejections_are_invalid(v in arb_json()) {
            if let Err(e) = ScheduleTick::parse(&v, now(), B) {
                prop_assert_eq!(e.kind, ErrorType::Invalid);
                prop_assert!(!e.message.is_empty());
            }
        }
    }
}

/// What a state change AWS reports is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeSubject {
    /// An RDS DB snapshot or DB cluster snapshot, by name.
    Snapshot {
        kind: lifeboat_domain::ResourceKind,
        name: String,
    },
    /// An AWS Backup backup job, by id.
    BackupJob { job_id: String },
}

/// A state change AWS reports through EventBridge (`aws.rds` "RDS DB Snapshot Event" and
/// "RDS DB Cluster Snapshot Event", `aws.backup` "Backup Job State Change"). Only a hint of
/// which recovery point to look at: its state is read from AWS, so an event arriving late,
/// twice or out of order changes nothing wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceChange {
    pub region: lifeboat_domain::Region,
    pub subject: ChangeSubject,
    /// AWS's words (`Message`, or the job's `state`), for the log.
    pub what: String,
}

/// The EventBridge envelope of a service event.
#[derive(Deserialize)]
struct ServiceEvent {
    #[serde(rename = "detail-type")]
    detail_type: String,
    source: String,
    region: String,
    detail: Value,
}

impl ServiceChange {
    /// Sources whose events [`ServiceChange::parse`] reads.
    pub const SOURCES: [&'static str; 2] = ["aws.rds", "aws.backup"];

    /// True when `event` claims to come from one of [`ServiceChange::SOURCES`].
    pub fn is_one(event: &Value) -> bool {
        event
            .get("source")
            .and_then(Value::as_str)
            .is_some_and(|s| Self::SOURCES.contains(&s))
    }

    pub fn parse(event: &Value) -> Result<Self, FunctionError> {
        use lifeboat_domain::{Region, ResourceKind};
        let e: ServiceEvent = serde_json::from_value(event.clone())
            .map_err(|e| FunctionError::invalid(format!("malformed EventBridge event: {e}")))?;
        let region = Region::parse(&e.region)
            .map_err(|err| FunctionError::invalid(format!("region {:.40?}: {err}", e.region)))?;
        let field = |name: &str| {
            e.detail
                .get(name)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    FunctionError::invalid(format!(
                        "{} event without detail.{name} (a non-empty string)",
                        e.detail_type
                    ))
                })
        };
        let subject = match (e.source.as_str(), e.detail_type.as_str()) {
            ("aws.rds", "RDS DB Snapshot Event") => ChangeSubject::Snapshot {
                kind: ResourceKind::RdsInstance,
                name: field("SourceIdentifier")?.to_owned(),
            },
            ("aws.rds", "RDS DB Cluster Snapshot Event") => ChangeSubject::Snapshot {
                kind: ResourceKind::AuroraCluster,
                name: field("SourceIdentifier")?.to_owned(),
            },
            ("aws.backup", "Backup Job State Change") => ChangeSubject::BackupJob {
                job_id: field("backupJobId")?.to_owned(),
            },
            (source, detail_type) => {
                return Err(FunctionError::invalid(format!(
                    "unsupported event: detail-type {detail_type:.60?} from source {source:.60?} (expected an RDS snapshot event or an AWS Backup job state change)"
                )));
            }
        };
        let what = match &subject {
            ChangeSubject::Snapshot { .. } => field("Message").unwrap_or("snapshot event"),
            ChangeSubject::BackupJob { .. } => field("state").unwrap_or("backup job event"),
        };
        Ok(Self {
            region,
            subject,
            what: what.chars().take(200).collect(),
        })
    }
}
