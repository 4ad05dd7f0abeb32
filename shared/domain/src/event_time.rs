//! Whether the time an event claims is believable. A schedule tells a function which
//! instant a run is for; the function names snapshots by it and judges retention at it.
//! A tick dated far in the past (a replay, a forged event) or in the future would make a
//! run act for the wrong day, so a time outside the bounds is refused before anything
//! is read or written.
//!
//! The bounds: no more than `max_skew` ahead of the clock (clocks drift a little), and no
//! older than `max_age` (EventBridge Scheduler retries a delivery for up to 24 hours).
//! Pure: the caller passes the clock's reading.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Default `MAX_EVENT_SKEW`: how far ahead of the clock an event's time may be.
pub const DEFAULT_MAX_SKEW: Duration = Duration::from_mins(5);
/// Default `MAX_EVENT_AGE`: how old an event's time may be (EventBridge Scheduler's
/// longest retry window).
pub const DEFAULT_MAX_AGE: Duration = Duration::from_hours(24);

/// How far an event's time may be from the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTimeBounds {
    /// `MAX_EVENT_SKEW`: at most this far in the future.
    pub max_skew: Duration,
    /// `MAX_EVENT_AGE`: at most this old.
    pub max_age: Duration,
}

impl Default for EventTimeBounds {
    fn default() -> Self {
        Self {
            max_skew: DEFAULT_MAX_SKEW,
            max_age: DEFAULT_MAX_AGE,
        }
    }
}

impl EventTimeBounds {
    /// Reads `MAX_EVENT_SKEW` and `MAX_EVENT_AGE` (humantime durations, e.g. `5m`, `24h`)
    /// through `get`; absent means the default. Every problem is listed.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let mut read = |key: &str, default: Duration, at_least: Duration| match get(key) {
            None => default,
            Some(v) if v.trim().is_empty() => default,
            Some(v) => match humantime::parse_duration(v.trim()) {
                Ok(d) if d >= at_least => d,
                Ok(_) => {
                    problems.push(format!(
                        "{key}: {v:.20?} is less than {}",
                        humantime::format_duration(at_least)
                    ));
                    default
                }
                Err(e) => {
                    problems.push(format!("{key}: {v:.20?} is not a duration ({e})"));
                    default
                }
            },
        };
        let max_skew = read("MAX_EVENT_SKEW", DEFAULT_MAX_SKEW, Duration::ZERO);
        // A schedule's own tick is a few seconds old when it arrives: an age bound below a
        // minute would refuse punctual deliveries.
        let max_age = read("MAX_EVENT_AGE", DEFAULT_MAX_AGE, Duration::from_mins(1));
        if problems.is_empty() {
            Ok(Self { max_skew, max_age })
        } else {
            Err(problems)
        }
    }
}

/// Why an event's time was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventTimeProblem {
    /// More than `max_skew` ahead of `now`.
    InTheFuture {
        time: DateTime<Utc>,
        now: DateTime<Utc>,
        max_skew: Duration,
    },
    /// Older than `max_age`.
    TooOld {
        time: DateTime<Utc>,
        now: DateTime<Utc>,
        max_age: Duration,
    },
}

impl fmt::Display for EventTimeProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rfc = |t: &DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        match self {
            Self::InTheFuture { time, now, max_skew } => write!(
                f,
                "{} is {} ahead of the clock ({}); at most MAX_EVENT_SKEW={} ahead is accepted",
                rfc(time),
                span(*time - *now),
                rfc(now),
                humantime::format_duration(*max_skew)
            ),
            Self::TooOld { time, now, max_age } => write!(
                f,
                "{} is {} old (clock {}); events older than MAX_EVENT_AGE={} are refused",
                rfc(time),
                span(*now - *time),
                rfc(now),
                humantime::format_duration(*max_age)
            ),
        }
    }
}

fn span(d: chrono::Duration) -> String {
    d.to_std().map_or_else(
        |_| "an unrepresentable span".into(),
        |s| humantime::format_duration(Duration::from_secs(s.as_secs())).to_string(),
    )
}

/// Accepts `time` when it lies within `[now - max_age, now + max_skew]` (both ends
/// included).
pub fn check_event_time(
    time: DateTime<Utc>,
    now: DateTime<Utc>,
    bounds: EventTimeBounds,
) -> Result<(), EventTimeProblem> {
    let ahead = chrono::Duration::from_std(bounds.max_skew).unwrap_or(chrono::Duration::MAX);
    let behind = chrono::Duration::from_std(bounds.max_age).unwrap_or(chrono::Duration::MAX);
    if now.checked_add_signed(ahead).is_some_and(|limit| time > limit) {
        return Err(EventTimeProblem::InTheFuture {
            time,
            now,
            max_skew: bounds.max_skew,
        });
    }
    if now.checked_sub_signed(behind).is_some_and(|limit| time < limit) {
        return Err(EventTimeProblem::TooOld {
            time,
            now,
            max_age: bounds.max_age,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap_or_default()
    }

    #[test]
    fn the_bounds_are_inclusive_and_the_message_names_time_and_bound() {
        let now = at("2026-11-23T18:15:00Z");
        let b = EventTimeBounds::default();
        assert!(check_event_time(now, now, b).is_ok());
        assert!(check_event_time(at("2026-11-23T18:20:00Z"), now, b).is_ok());
        assert!(check_event_time(at("2026-11-22T18:15:00Z"), now, b).is_ok());
        let future = check_event_time(at("2026-11-23T18:20:01Z"), now, b).map_err(|e| e.to_string());
        let msg = future.err().unwrap_or_default();
        assert!(
            msg.contains("2026-11-23T18:20:01Z") && msg.contains("MAX_EVENT_SKEW=5m"),
            "{msg}"
        );
        let old = check_event_time(at("1996-11-23T18:15:00Z"), now, b).map_err(|e| e.to_string());
        let msg = old.err().unwrap_or_default();
        assert!(
            msg.contains("1996-11-23T18:15:00Z") && msg.contains("MAX_EVENT_AGE=1day"),
            "{msg}"
        );
    }

    #[test]
    fn bounds_are_read_from_configuration() {
        let none = |_: &str| None;
        assert_eq!(EventTimeBounds::from_lookup(none), Ok(EventTimeBounds::default()));
        let set = |k: &str| match k {
            "MAX_EVENT_SKEW" => Some("2m".to_owned()),
            "MAX_EVENT_AGE" => Some("90m".to_owned()),
            _ => None,
        };
        assert_eq!(
            EventTimeBounds::from_lookup(set),
            Ok(EventTimeBounds {
                max_skew: Duration::from_mins(2),
                max_age: Duration::from_mins(90)
            })
        );
        let bad = |k: &str| match k {
            "MAX_EVENT_SKEW" => Some("soon".to_owned()),
            "MAX_EVENT_AGE" => Some("5s".to_owned()),
            _ => None,
        };
        let problems = EventTimeBounds::from_lookup(bad).err().unwrap_or_default();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("MAX_EVENT_SKEW") && problems[1].contains("MAX_EVENT_AGE"));
    }

    proptest! {
        #[test]
        fn accepted_exactly_within_the_bounds(offset in -200_000i64..200_000, skew in 0u64..3600, age in 60u64..100_000) {
            let now = at("2026-11-23T18:15:00Z");
            let time = now + chrono::Duration::seconds(offset);
            let b = EventTimeBounds { max_skew: Duration::from_secs(skew), max_age: Duration::from_secs(age) };
            let within = offset <= i64::try_from(skew).unwrap_or(i64::MAX) && -offset <= i64::try_from(age).unwrap_or(i64::MAX);
            prop_assert_eq!(check_event_time(time, now, b).is_ok(), within);
        }
    }
}
