//! The function's configuration: its bounds and the deployment's isolated networks.

use std::collections::BTreeMap;
use std::time::Duration;

use lifeboat_domain::Region;
use lifeboat_domain::dr::plan::RestoreSettings;

/// How many tests, how much instance time, and where test databases go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Restore tests in flight at once (`RESTORE_TEST_MAX_CONCURRENT`, default 2).
    pub max_concurrent: usize,
    /// Instance time restore tests may use per 24 hours (`RESTORE_TEST_DAILY_INSTANCE_HOURS`,
    /// default 8): no test starts once it is reached.
    pub daily_budget: Duration,
    /// A test database not available by then fails its test (`RESTORE_TEST_TIMEOUT`,
    /// default `6h`).
    pub timeout: Duration,
    /// Per region, the isolated subnet group and no-ingress security groups test databases
    /// go in when the policy names none (`RESTORE_TEST_NETWORKS`, JSON:
    /// `{"us-east-1": {"subnet_group": "...", "security_groups": ["sg-..."]}}`).
    pub networks: BTreeMap<Region, RestoreSettings>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_concurrent: 2,
            daily_budget: Duration::from_hours(8),
            timeout: Duration::from_hours(6),
            networks: BTreeMap::new(),
        }
    }
}

impl Settings {
    /// From the process environment.
    pub fn from_env() -> Result<Self, lifeboat::config::ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// From `get` (the environment); every problem in one message.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, lifeboat::config::ConfigError> {
        let mut s = Self::default();
        let mut problems = Vec::new();
        if let Some(v) = get("RESTORE_TEST_MAX_CONCURRENT") {
            match v.trim().parse::<usize>() {
                Ok(n) if (1..=20).contains(&n) => s.max_concurrent = n,
                _ => problems.push(format!(
                    "RESTORE_TEST_MAX_CONCURRENT: {v:.20?} is not a number from 1 to 20"
                )),
            }
        }
        if let Some(v) = get("RESTORE_TEST_DAILY_INSTANCE_HOURS") {
            match v.trim().parse::<u64>() {
                Ok(n) if (1..=1000).contains(&n) => s.daily_budget = Duration::from_hours(n),
                _ => problems.push(format!(
                    "RESTORE_TEST_DAILY_INSTANCE_HOURS: {v:.20?} is not a number of hours from 1 to 1000"
                )),
            }
        }
        if let Some(v) = get("RESTORE_TEST_TIMEOUT") {
            match humantime::parse_duration(v.trim()) {
                Ok(d) if d >= Duration::from_mins(30) && d <= Duration::from_hours(48) => s.timeout = d,
                _ => problems.push(format!(
                    "RESTORE_TEST_TIMEOUT: {v:.20?} is not a duration from 30m to 48h"
                )),
            }
        }
        if let Some(v) = get("RESTORE_TEST_NETWORKS").filter(|v| !v.trim().is_empty()) {
            match serde_json::from_str::<BTreeMap<String, RestoreSettings>>(&v) {
                Ok(map) => {
                    for (region, settings) in map {
                        match Region::parse(&region) {
                            Ok(r) if settings.subnet_group.is_some() && !settings.security_groups.is_empty() => {
                                s.networks.insert(r, settings);
                            }
                            Ok(r) => problems.push(format!(
                                "RESTORE_TEST_NETWORKS.{r}: name a subnet_group and at least one security group"
                            )),
                            Err(e) => problems.push(format!("RESTORE_TEST_NETWORKS: {e}")),
                        }
                    }
                }
                Err(e) => problems.push(format!(
                    "RESTORE_TEST_NETWORKS: not a JSON object of region to {{\"subnet_group\", \"security_groups\"}} ({e})"
                )),
            }
        }
        if problems.is_empty() {
            Ok(s)
        } else {
            Err(lifeboat::config::ConfigError::new("restore test", problems))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_every_problem_named() {
        assert_eq!(Settings::from_lookup(|_| None), Ok(Settings::default()));
        let bad = Settings::from_lookup(|k| {
            Some(
                match k {
                    "RESTORE_TEST_MAX_CONCURRENT" => "0",
                    "RESTORE_TEST_DAILY_INSTANCE_HOURS" => "lots",
                    "RESTORE_TEST_TIMEOUT" => "1s",
                    _ => r#"{"us-east-1": {"subnet_group": "iso"}}"#,
                }
                .to_owned(),
            )
        })
        .unwrap_err();
        for name in [
            "MAX_CONCURRENT",
            "DAILY_INSTANCE_HOURS",
            "TIMEOUT",
            "NETWORKS.us-east-1",
        ] {
            assert!(bad.problems.iter().any(|p| p.contains(name)), "{name} in {bad}");
        }
        let good = Settings::from_lookup(|k| {
            (k == "RESTORE_TEST_NETWORKS")
                .then(|| r#"{"us-west-2": {"subnet_group": "iso", "security_groups": ["sg-1"]}}"#.to_owned())
        })
        .unwrap();
        assert_eq!(good.networks.len(), 1);
    }
}
