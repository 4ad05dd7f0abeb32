//! Configuration of the S3 data-protection functions, parsed once per cold start from a
//! lookup function (the environment in Lambda, a map in tests).

use chrono::{DateTime, Utc};
use lifeboat_domain::Region;

use crate::config::ConfigError;
use lifeboat_ports::objects::LockMode;
use lifeboat_ports::objects::{CopyTuning, ObjectLock, WriteOptions};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// `BACKUP_BUCKET_NAME`: versioned, Object-Lock-enabled, in the DR region.
    pub backup_bucket: String,
    /// `BACKUP_REGION` (default `AWS_REGION`).
    pub backup_region: Region,
    /// `SOURCE_REGION` (default `AWS_REGION`): where protected buckets live.
    pub source_region: Region,
    /// `S3_FORCE_PATH_STYLE` (default false): path-style addressing (emulators).
    pub path_style: bool,
    /// `OBJECT_LOCK_MODE` (`GOVERNANCE`, `COMPLIANCE` or empty) and how long each copy is
    /// retained: `OBJECT_LOCK_DAYS`, or `OBJECT_LOCK_DURATION` (e.g. `90s`; S3 takes any
    /// retain-until date on an object, which DR rehearsals on a local stack use).
    pub lock: Option<(LockMode, chrono::Duration)>,
    /// `LEGAL_HOLD` (default false): backup copies get a legal hold.
    pub legal_hold: bool,
    /// `BACKUP_STORAGE_CLASS` (default `STANDARD`).
    pub storage_class: String,
    /// `MULTIPART_THRESHOLD_BYTES` / `PART_SIZE_BYTES`.
    pub tuning: CopyTuning,
    /// `LIST_PAGE_SIZE` (default 1000): objects per listing page, and per checkpoint.
    pub page_size: u32,
    /// `COPY_CONCURRENCY` (default 16).
    pub concurrency: usize,
    /// `FULL_LISTING_EVERY_HOURS` (default 168): with a change queue, a run lists the
    /// whole source again when its previous full listing is older than this.
    pub full_listing_every: chrono::Duration,
    /// `MAX_CHANGES_PER_RUN` (default 100000): with more messages than this waiting in
    /// the change queue, a full listing is cheaper and the run makes one.
    pub max_changes: u64,
    /// `CHANGE_WAIT_SECONDS` (default 1, at most 20): the long poll that confirms the
    /// change queue is drained.
    pub change_wait: std::time::Duration,
    /// `MAX_EVENT_SKEW` / `MAX_EVENT_AGE`: how far from the clock a schedule event's time
    /// may be ([`lifeboat_domain::event_time`]).
    pub event_time: lifeboat_domain::event_time::EventTimeBounds,
}

fn flag(v: Option<&str>) -> Result<bool, String> {
    match v.map(str::trim) {
        None | Some("" | "false" | "0" | "no") => Ok(false),
        Some("true" | "1" | "yes") => Ok(true),
        Some(other) => Err(format!("{other:.20?} is not true or false")),
    }
}

/// `OBJECT_LOCK_MODE` with `OBJECT_LOCK_DAYS` (or `OBJECT_LOCK_DURATION`): a mode needs a
/// positive retention.
fn object_lock(
    mode: Option<String>,
    days: u64,
    duration: Option<String>,
    problems: &mut Vec<String>,
) -> Option<(LockMode, chrono::Duration)> {
    let m = mode.filter(|v| !v.trim().is_empty())?;
    let span = match duration.filter(|v| !v.trim().is_empty()) {
        Some(v) => match humantime::parse_duration(v.trim()) {
            Ok(d) => chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX),
            Err(e) => {
                problems.push(format!("OBJECT_LOCK_DURATION: {v:.20?} is not a duration ({e})"));
                return None;
            }
        },
        None => chrono::Duration::days(i64::try_from(days.min(36_500)).unwrap_or(36_500)),
    };
    match LockMode::parse(m.trim()) {
        Some(mode) if span > chrono::Duration::zero() => Some((mode, span)),
        Some(_) => {
            problems.push(
                "OBJECT_LOCK_MODE is set but neither OBJECT_LOCK_DAYS nor OBJECT_LOCK_DURATION is positive".into(),
            );
            None
        }
        None => {
            problems.push(format!("OBJECT_LOCK_MODE: {m:.20?} is not GOVERNANCE or COMPLIANCE"));
            None
        }
    }
}

/// The problem with a number outside its range, as the settings report it.
fn out_of_range(key: &str, value: u64, range: &std::ops::RangeInclusive<u64>) -> String {
    match key {
        "MAX_CHANGES_PER_RUN" => "MAX_CHANGES_PER_RUN: must be at least 1".to_owned(),
        "CHANGE_WAIT_SECONDS" => format!("CHANGE_WAIT_SECONDS: {value} is more than SQS's 20"),
        _ => format!("{key}: {value} is not within {}-{}", range.start(), range.end()),
    }
}

impl S3Settings {
    /// How Lifeboat writes into the backup bucket at `now`: the bucket's default class,
    /// the configured Object Lock (retained for its days from `now`) and legal hold, and
    /// `metadata`.
    pub fn write_options(&self, now: DateTime<Utc>, metadata: Vec<(String, String)>) -> WriteOptions {
        WriteOptions {
            storage_class: None,
            lock: self.lock.map(|(mode, span)| ObjectLock {
                mode,
                retain_until: now + span,
            }),
            legal_hold: self.legal_hold,
            metadata,
        }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let backup_bucket = get("BACKUP_BUCKET_NAME")
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| {
                problems.push("BACKUP_BUCKET_NAME is not set".to_owned());
                String::new()
            });
        let mut region = |key: &str| {
            let raw = get(key)
                .filter(|v| !v.is_empty())
                .or_else(|| get("AWS_REGION"))
                .unwrap_or_default();
            Region::parse(&raw)
                .map_err(|e| problems.push(format!("{key} (or AWS_REGION): {e}")))
                .ok()
        };
        let backup_region = region("BACKUP_REGION");
        let source_region = region("SOURCE_REGION");
        let mut number = |key: &str, default: u64| -> u64 {
            match get(key).filter(|v| !v.trim().is_empty()) {
                None => default,
                Some(v) => v.trim().parse().unwrap_or_else(|_| {
                    problems.push(format!("{key}: {v:.20?} is not a whole number"));
                    default
                }),
            }
        };
        let lock_days = number("OBJECT_LOCK_DAYS", 0);
        let threshold = number("MULTIPART_THRESHOLD_BYTES", lifeboat_ports::objects::MAX_SINGLE_COPY);
        let part = number("PART_SIZE_BYTES", 512 * 1024 * 1024);
        let page_size = number("LIST_PAGE_SIZE", 1000);
        let concurrency = number("COPY_CONCURRENCY", 16);
        let full_every_hours = number("FULL_LISTING_EVERY_HOURS", 168);
        let max_changes = number("MAX_CHANGES_PER_RUN", 100_000);
        let change_wait = number("CHANGE_WAIT_SECONDS", 1);
        let lock = object_lock(
            get("OBJECT_LOCK_MODE"),
            lock_days,
            get("OBJECT_LOCK_DURATION"),
            &mut problems,
        );
        let path_style = flag(get("S3_FORCE_PATH_STYLE").as_deref()).unwrap_or_else(|e| {
            problems.push(format!("S3_FORCE_PATH_STYLE: {e}"));
            false
        });
        let legal_hold = flag(get("LEGAL_HOLD").as_deref()).unwrap_or_else(|e| {
            problems.push(format!("LEGAL_HOLD: {e}"));
            false
        });
        for (key, value, range) in [
            ("LIST_PAGE_SIZE", page_size, 1..=1000),
            ("COPY_CONCURRENCY", concurrency, 1..=256),
            ("FULL_LISTING_EVERY_HOURS", full_every_hours, 1..=24 * 366),
            ("MAX_CHANGES_PER_RUN", max_changes, 1..=u64::MAX),
            ("CHANGE_WAIT_SECONDS", change_wait, 0..=20),
        ] {
            if !range.contains(&value) {
                problems.push(out_of_range(key, value, &range));
            }
        }
        let storage_class = get("BACKUP_STORAGE_CLASS")
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| "STANDARD".to_owned());
        let event_time = lifeboat_domain::event_time::EventTimeBounds::from_lookup(&get)
            .map_err(|p| problems.extend(p))
            .unwrap_or_default();
        match (backup_region, source_region) {
            (Some(backup_region), Some(source_region)) if problems.is_empty() => Ok(Self {
                backup_bucket,
                backup_region,
                source_region,
                path_style,
                lock,
                legal_hold,
                storage_class,
                tuning: CopyTuning {
                    multipart_threshold: threshold,
                    part_size: part,
                },
                page_size: u32::try_from(page_size).unwrap_or(1000),
                concurrency: usize::try_from(concurrency).unwrap_or(16),
                full_listing_every: chrono::Duration::hours(i64::try_from(full_every_hours).unwrap_or(168)),
                max_changes,
                change_wait: std::time::Duration::from_secs(change_wait),
                event_time,
            }),
            _ => Err(ConfigError::new("S3", problems)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<S3Settings, ConfigError> {
        let map: std::collections::HashMap<String, String> =
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        S3Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_and_every_problem_at_once() {
        let s = parse(&[("BACKUP_BUCKET_NAME", "b"), ("AWS_REGION", "us-west-2")]).unwrap();
        assert_eq!(s.backup_region.as_str(), "us-west-2");
        assert_eq!((s.page_size, s.lock, s.path_style), (1000, None, false));
        let e = parse(&[
            ("OBJECT_LOCK_MODE", "forever"),
            ("S3_FORCE_PATH_STYLE", "maybe"),
            ("LIST_PAGE_SIZE", "x"),
        ])
        .unwrap_err();
        assert_eq!(e.problems.len(), 6, "{e}");
        let s = parse(&[
            ("BACKUP_BUCKET_NAME", "b"),
            ("AWS_REGION", "us-west-2"),
            ("OBJECT_LOCK_MODE", "compliance"),
            ("OBJECT_LOCK_DAYS", "30"),
            ("S3_FORCE_PATH_STYLE", "true"),
        ])
        .unwrap();
        assert_eq!(s.lock, Some((LockMode::Compliance, chrono::Duration::days(30))));
        assert!(s.path_style);
        let s = parse(&[
            ("BACKUP_BUCKET_NAME", "b"),
            ("AWS_REGION", "us-west-2"),
            ("OBJECT_LOCK_MODE", "GOVERNANCE"),
            ("OBJECT_LOCK_DAYS", "30"),
            ("OBJECT_LOCK_DURATION", "90s"),
        ])
        .unwrap();
        assert_eq!(s.lock, Some((LockMode::Governance, chrono::Duration::seconds(90))));
    }
}
