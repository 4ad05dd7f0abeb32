//! S3 change events, as they reach a change queue: which objects of which bucket changed.
//!
//! A change event is only a hint that a key is dirty: a run reads the key's current state
//! from S3 (one HEAD) before backing it up, so events that arrive late, twice or out of
//! order change nothing. Three envelopes are understood, whichever way the queue is fed:
//! S3 event notifications sent straight to SQS (`Records`, keys URL-encoded), the same
//! wrapped by SNS (`Type: Notification`, the records as a string in `Message`), and S3
//! events through EventBridge (`source: aws.s3`, `detail.object.key` not encoded).

use serde_json::Value;

/// One changed (created, overwritten or deleted) object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectChange {
    pub bucket: String,
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeParseError {
    #[error("change event is not JSON: {0}")]
    NotJson(String),
    #[error(
        "change event has an unknown shape (expected S3 Records, an SNS notification or an EventBridge aws.s3 event)"
    )]
    UnknownShape,
    #[error("change event record {index}: {reason}")]
    Record { index: usize, reason: String },
}

/// The objects one queue message says changed. A test event (sent by S3 when a
/// notification is configured) names none.
pub fn parse_message(body: &str) -> Result<Vec<ObjectChange>, ChangeParseError> {
    let v: Value = serde_json::from_str(body).map_err(|e| ChangeParseError::NotJson(e.to_string()))?;
    parse_value(&v, 0)
}

fn parse_value(v: &Value, depth: u8) -> Result<Vec<ObjectChange>, ChangeParseError> {
    if let Some(records) = v.get("Records").and_then(Value::as_array) {
        return records.iter().enumerate().map(|(i, r)| record(i, r)).collect();
    }
    if v.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Vec::new());
    }
    // SNS → SQS without raw delivery: the S3 event is the notification's message.
    if depth == 0
        && v.get("Type").and_then(Value::as_str) == Some("Notification")
        && let Some(inner) = v.get("Message").and_then(Value::as_str)
    {
        let inner: Value = serde_json::from_str(inner).map_err(|e| ChangeParseError::NotJson(e.to_string()))?;
        return parse_value(&inner, depth + 1);
    }
    if v.get("source").and_then(Value::as_str) == Some("aws.s3")
        && let Some(detail) = v.get("detail")
    {
        let bucket = detail.pointer("/bucket/name").and_then(Value::as_str);
        let key = detail.pointer("/object/key").and_then(Value::as_str);
        return match (bucket, key) {
            (Some(b), Some(k)) => Ok(vec![ObjectChange {
                bucket: b.to_owned(),
                key: k.to_owned(),
            }]),
            // Bucket-level events (e.g. a lifecycle configuration change) name no object.
            (Some(_), None) => Ok(Vec::new()),
            _ => Err(ChangeParseError::Record {
                index: 0,
                reason: "EventBridge event without detail.bucket.name".into(),
            }),
        };
    }
    Err(ChangeParseError::UnknownShape)
}

fn record(index: usize, r: &Value) -> Result<ObjectChange, ChangeParseError> {
    let problem = |reason: &str| ChangeParseError::Record {
        index,
        reason: reason.to_owned(),
    };
    let bucket = r
        .pointer("/s3/bucket/name")
        .and_then(Value::as_str)
        .ok_or_else(|| problem("no s3.bucket.name"))?;
    let raw = r
        .pointer("/s3/object/key")
        .and_then(Value::as_str)
        .ok_or_else(|| problem("no s3.object.key"))?;
    let key = url_decode_key(raw).ok_or_else(|| problem("s3.object.key is not valid URL-encoded UTF-8"))?;
    Ok(ObjectChange {
        bucket: bucket.to_owned(),
        key,
    })
}

/// Keys in S3 event notifications are URL-encoded form values: `+` for a space, `%XX` for
/// other bytes.
pub fn url_decode_key(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn change(bucket: &str, key: &str) -> ObjectChange {
        ObjectChange {
            bucket: bucket.into(),
            key: key.into(),
        }
    }

    #[test]
    fn s3_notification_keys_are_decoded() {
        let body = r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"photos"},
            "object":{"key":"2026/my+cat%C3%A9+%2B1.jpg","size":5,"eTag":"abc"}}},
            {"eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"photos"},"object":{"key":"a%2Fb"}}}]}"#;
        assert_eq!(
            parse_message(body).unwrap(),
            vec![change("photos", "2026/my caté +1.jpg"), change("photos", "a/b")]
        );
    }

    #[test]
    fn sns_wrapped_eventbridge_and_test_events() {
        let inner = r#"{"Records":[{"s3":{"bucket":{"name":"b"},"object":{"key":"k+1"}}}]}"#;
        let sns = serde_json::json!({"Type": "Notification", "Message": inner}).to_string();
        assert_eq!(parse_message(&sns).unwrap(), vec![change("b", "k 1")]);
        let eb = r#"{"source":"aws.s3","detail-type":"Object Deleted","detail":{"bucket":{"name":"b"},
            "object":{"key":"k+1 x"}}}"#;
        assert_eq!(parse_message(eb).unwrap(), vec![change("b", "k+1 x")]);
        let test = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"b"}"#;
        assert_eq!(parse_message(test).unwrap(), vec![]);
    }

    #[test]
    fn malformed_events_are_named() {
        assert!(matches!(parse_message("nope"), Err(ChangeParseError::NotJson(_))));
        assert_eq!(parse_message(r#"{"hello":1}"#), Err(ChangeParseError::UnknownShape));
        let bad = r#"{"Records":[{"s3":{"bucket":{"name":"b"},"object":{"key":"%ZZ"}}}]}"#;
        assert!(matches!(
            parse_message(bad),
            Err(ChangeParseError::Record { index: 0, .. })
        ));
        assert_eq!(url_decode_key("%"), None);
        assert_eq!(url_decode_key("%C3"), None, "not UTF-8");
    }
}
