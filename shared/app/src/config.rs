//! Typed configuration, parsed once per cold start from a lookup function (the process
//! environment in Lambda, a map in tests). Every problem is reported at once.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use lifeboat_domain::Region;
use lifeboat_domain::event_time::EventTimeBounds;
use lifeboat_domain::policy::check_kms_key;

pub const DEFAULT_COPY_BUDGET: usize = 5;
pub const DEFAULT_POLICY_TAG_KEY: &str = "lifeboat:policy";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `CATALOG_TABLE_NAME`
    pub catalog_table: String,
    /// `ALERTS_TOPIC_ARN`
    pub alerts_topic_arn: String,
    /// `PRIMARY_REGION` (default: `AWS_REGION`): where protected resources live.
    pub primary_region: Region,
    /// `DR_KMS_KEYS`: `region=key,region=key`; the KMS key for copies into each region
    /// when a policy's copy target names none.
    pub dr_kms_keys: BTreeMap<Region, String>,
    /// `COPY_BUDGET_PER_REGION` (default 5): copies in flight per destination region.
    pub copy_budget_per_region: usize,
    /// `POLICY_TAG_KEY` (default `lifeboat:policy`).
    pub policy_tag_key: String,
    /// `SNAPSHOT_DEADLINE` (default `2h`): a snapshot still pending after this is stuck.
    pub snapshot_deadline: Duration,
    /// `COPY_DEADLINE` (default `6h`): a copy still pending after this is stuck.
    pub copy_deadline: Duration,
    /// `ALERT_DEDUPE_WINDOW` (e.g. `1h`; absent or `0`: off): the same kind of alert about
    /// the same resource and location is sent at most once per window.
    pub alert_dedupe_window: Option<chrono::Duration>,
    /// `MAX_EVENT_SKEW` (default `5m`) and `MAX_EVENT_AGE` (default `24h`): how far ahead
    /// of the clock, and how old, a schedule event's time may be.
    pub event_time: EventTimeBounds,
    /// `TABLE_EXPORT_BUCKET` (optional): the bucket in each region that holds DynamoDB
    /// tables' copies (exports), `{region}` standing for the region. Without it, tables
    /// are not copied to other regions.
    pub table_export_bucket: Option<lifeboat_domain::s3::ExportBuckets>,
    /// `S3_FORCE_PATH_STYLE` (`true` for the emulator): path-style S3 addressing.
    pub s3_path_style: bool,
    /// `BACKUP_REGION` (default: the primary region): where the S3 backup bucket is, and so
    /// where the runs of the data sets policies name (S3 prefixes, config bundles) are kept.
    pub backup_region: Region,
}

/// Configuration a function cannot start with: every problem at once, each naming its
/// variable. The one error of every configuration Lifeboat reads (the shared
/// [`Config`], the S3 settings, each function's own), so a cold start reports them alike.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// What the configuration is for: `function`, `S3`, `admin API`, `DR`, ...
    pub of: &'static str,
    pub problems: Vec<String>,
}

impl ConfigError {
    pub fn new(of: &'static str, problems: Vec<String>) -> Self {
        Self { of, problems }
    }

    /// `Ok(value)` when there is no problem.
    pub fn check<T>(of: &'static str, problems: Vec<String>, value: T) -> Result<T, Self> {
        if problems.is_empty() {
            Ok(value)
        } else {
            Err(Self::new(of, problems))
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {} configuration: {}", self.of, self.problems.join("; "))
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let mut required = |key: &str| {
            get(key).filter(|v| !v.trim().is_empty()).unwrap_or_else(|| {
                problems.push(format!("{key} is not set"));
                String::new()
            })
        };
        let catalog_table = required("CATALOG_TABLE_NAME");
        let alerts_topic_arn = required("ALERTS_TOPIC_ARN");
        let primary_raw = get("PRIMARY_REGION")
            .filter(|v| !v.is_empty())
            .or_else(|| get("AWS_REGION"))
            .unwrap_or_default();
        let primary_region = match Region::parse(&primary_raw) {
            Ok(r) => Some(r),
            Err(e) => {
                problems.push(format!("PRIMARY_REGION (or AWS_REGION): {e}"));
                None
            }
        };
        let mut dr_kms_keys = BTreeMap::new();
        for pair in get("DR_KMS_KEYS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let Some((region, key)) = pair.split_once('=') else {
                problems.push(format!("DR_KMS_KEYS: {pair:.80?} is not region=key"));
                continue;
            };
            match Region::parse(region.trim()) {
                Ok(r) => {
                    if let Err(p) = check_kms_key(key.trim(), &r) {
                        problems.push(format!("DR_KMS_KEYS[{r}]: {p}"));
                    }
                    dr_kms_keys.insert(r, key.trim().to_owned());
                }
                Err(e) => problems.push(format!("DR_KMS_KEYS: {e}")),
            }
        }
        let copy_budget_per_region = match get("COPY_BUDGET_PER_REGION") {
            None => DEFAULT_COPY_BUDGET,
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if (1..=100).contains(&n) => n,
                _ => {
                    problems.push(format!(
                        "COPY_BUDGET_PER_REGION: {v:.20?} is not a number from 1 to 100"
                    ));
                    DEFAULT_COPY_BUDGET
                }
            },
        };
        let policy_tag_key = get("POLICY_TAG_KEY")
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| DEFAULT_POLICY_TAG_KEY.to_owned());
        let mut duration = |key: &str, default: Duration| match get(key) {
            None => default,
            Some(v) => humantime::parse_duration(v.trim()).unwrap_or_else(|e| {
                problems.push(format!("{key}: {v:.20?} is not a duration ({e})"));
                default
            }),
        };
        let snapshot_deadline = duration("SNAPSHOT_DEADLINE", Duration::from_hours(2));
        let copy_deadline = duration("COPY_DEADLINE", Duration::from_hours(6));
        let alert_dedupe_window = crate::alerting::DedupeConfig::from_lookup(&get)
            .map_err(|p| problems.push(p))
            .ok()
            .and_then(|d| d.window);
        let event_time = EventTimeBounds::from_lookup(&get)
            .map_err(|p| problems.extend(p))
            .unwrap_or_default();
        let table_export_bucket = match get("TABLE_EXPORT_BUCKET").filter(|v| !v.trim().is_empty()) {
            None => None,
            Some(v) => lifeboat_domain::s3::ExportBuckets::parse(&v)
                .map_err(|p| problems.push(format!("TABLE_EXPORT_BUCKET: {p}")))
                .ok(),
        };
        let s3_path_style = get("S3_FORCE_PATH_STYLE").is_some_and(|v| matches!(v.trim(), "true" | "1" | "yes"));
        let backup_region = optional_region("BACKUP_REGION", get("BACKUP_REGION"), &mut problems);
        match primary_region {
            Some(primary_region) if problems.is_empty() => Ok(Self {
                backup_region: backup_region.unwrap_or_else(|| primary_region.clone()),
                catalog_table,
                alerts_topic_arn,
                primary_region,
                dr_kms_keys,
                copy_budget_per_region,
                policy_tag_key,
                snapshot_deadline,
                copy_deadline,
                alert_dedupe_window,
                event_time,
                table_export_bucket,
                s3_path_style,
            }),
            _ => Err(ConfigError::new("function", problems)),
        }
    }
}

/// A region that may be left unset (`None`), or a problem naming `key`.
fn optional_region(key: &str, value: Option<String>, problems: &mut Vec<String>) -> Option<Region> {
    let v = value.filter(|v| !v.trim().is_empty())?;
    Region::parse(v.trim())
        .map_err(|e| problems.push(format!("{key}: {e}")))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn parses_with_defaults() {
        let c = Config::from_lookup(lookup(&[
            ("CATALOG_TABLE_NAME", "cat"),
            ("ALERTS_TOPIC_ARN", "arn:aws:sns:us-east-1:1:t"),
            ("AWS_REGION", "us-east-1"),
            (
                "DR_KMS_KEYS",
                "us-west-2=arn:aws:kms:us-west-2:1:key/a, eu-west-1=alias/dr",
            ),
        ]))
        .unwrap();
        assert_eq!(c.primary_region.as_str(), "us-east-1");
        assert_eq!(c.copy_budget_per_region, 5);
        assert_eq!(c.dr_kms_keys.len(), 2);
        assert_eq!(c.policy_tag_key, "lifeboat:policy");
    }

    #[test]
    fn lists_every_problem() {
        let err = Config::from_lookup(lookup(&[
            ("DR_KMS_KEYS", "us-west-2=arn:aws:kms:eu-west-1:1:key/a,garbage"),
            ("COPY_BUDGET_PER_REGION", "lots"),
            ("SNAPSHOT_DEADLINE", "never"),
        ]))
        .unwrap_err();
        let all = err.to_string();
        for needle in [
            "CATALOG_TABLE_NAME",
            "ALERTS_TOPIC_ARN",
            "PRIMARY_REGION",
            "eu-west-1",
            "garbage",
            "COPY_BUDGET",
            "SNAPSHOT_DEADLINE",
        ] {
            assert!(all.contains(needle), "{needle} missing from {all}");
        }
    }

    #[test]
    fn the_alert_window_is_read_and_checked() {
        let base = [
            ("CATALOG_TABLE_NAME", "t"),
            ("ALERTS_TOPIC_ARN", "arn:aws:sns:us-east-1:1:a"),
            ("PRIMARY_REGION", "us-east-1"),
        ];
        assert_eq!(Config::from_lookup(lookup(&base)).unwrap().alert_dedupe_window, None);
        let mut with = base.to_vec();
        with.push(("ALERT_DEDUPE_WINDOW", "90m"));
        assert_eq!(
            Config::from_lookup(lookup(&with)).unwrap().alert_dedupe_window,
            Some(chrono::Duration::minutes(90))
        );
        let mut bad = base.to_vec();
        bad.push(("ALERT_DEDUPE_WINDOW", "soon"));
        let err = Config::from_lookup(lookup(&bad)).unwrap_err();
        assert!(err.problems.iter().any(|p| p.contains("ALERT_DEDUPE_WINDOW")), "{err}");
    }
}
