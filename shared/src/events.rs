//! Parsing of the events that trigger Lifeboat's functions. Everything is checked here,
//! before any AWS call; a rejection names what was wrong.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::domain::PolicyName;
use crate::error::FunctionError;

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
    /// Accepts an EventBridge Scheduler input or a classic scheduled rule event.
    pub fn parse(event: &Value) -> Result<Self, FunctionError> {
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

    #[test]
    fn scheduler_input_and_rule_event_parse() {
        let t = ScheduleTick::parse(&json!({"scheduledTime": "2026-11-23T18:15:00Z", "scheduleArn": "arn:x"})).unwrap();
        assert_eq!(t.scheduled_time.to_rfc3339(), "2026-11-23T18:15:00+00:00");
        assert_eq!(t.policy, None);
        let t = ScheduleTick::parse(&json!({"version":"0","id":"1","detail-type":"Scheduled Event","source":"aws.events",
            "account":"1","time":"2026-11-23T18:15:00Z","region":"us-east-1","resources":[],"detail":{"policy":"gold"}})).unwrap();
        assert_eq!(t.policy.unwrap().as_str(), "gold");
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
            let err = ScheduleTick::parse(&event).unwrap_err();
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
            if let Err(e) = ScheduleTick::parse(&v) {
                prop_assert_eq!(e.kind, ErrorType::Invalid);
                prop_assert!(!e.message.is_empty());
            }
        }
    }
}
