//! The admin API's own configuration, parsed once per cold start; every problem listed.

use std::collections::BTreeMap;
use std::fmt;

use chrono::Duration;
use serde::{Deserialize, Serialize};

/// What a caller may do. Ordered: each role can do everything the ones below it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads the catalog, policies, plans and restores.
    Viewer,
    /// Also backs up on demand and restores to a new instance.
    Operator,
    /// Also changes policies, restores over data, rolls back, reads the audit trail.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// IAM principals → roles. A key ending in `*` matches every ARN starting with the rest
/// (e.g. `arn:aws:sts::123456789012:assumed-role/Ops/*`); the longest matching key wins,
/// an exact key beats any prefix.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoleMap {
    exact: BTreeMap<String, Role>,
    prefixes: Vec<(String, Role)>,
}

impl RoleMap {
    /// Parses `{"<arn or arn prefix*>": "viewer|operator|admin", ...}`.
    pub fn parse(json: &str) -> Result<Self, Vec<String>> {
        let raw: BTreeMap<String, String> = serde_json::from_str(json)
            .map_err(|e| vec![format!("ADMIN_ROLES is not a JSON object of strings: {e}")])?;
        let mut problems = Vec::new();
        let mut map = Self::default();
        for (key, role) in raw {
            let role = match role.as_str() {
                "viewer" => Role::Viewer,
                "operator" => Role::Operator,
                "admin" => Role::Admin,
                other => {
                    problems.push(format!(
                        "ADMIN_ROLES[{key:.80}]: {other:.20?} is not viewer, operator or admin"
                    ));
                    continue;
                }
            };
            if !key.starts_with("arn:aws") {
                problems.push(format!(
                    "ADMIN_ROLES: {key:.80?} is not an IAM ARN (or ARN prefix ending in *)"
                ));
                continue;
            }
            match key.strip_suffix('*') {
                Some(prefix) => map.prefixes.push((prefix.to_owned(), role)),
                None => {
                    map.exact.insert(key, role);
                }
            }
        }
        map.prefixes.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        if problems.is_empty() { Ok(map) } else { Err(problems) }
    }

    pub fn role_of(&self, principal: &str) -> Option<Role> {
        self.exact.get(principal).copied().or_else(|| {
            self.prefixes
                .iter()
                .find(|(p, _)| principal.starts_with(p.as_str()))
                .map(|(_, r)| *r)
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    /// `ADMIN_ROLES`: JSON, principal ARN (or prefix ending in `*`) → role.
    pub roles: RoleMap,
    /// `CREATE_SNAPSHOTS_FUNCTION`: name or ARN of the create-snapshots function.
    pub create_snapshots_function: String,
    /// `SIGNING_KEY_SECRET_ID`: the Secrets Manager secret holding the token signing key.
    pub signing_key_secret_id: String,
    /// `CONFIRM_TOKEN_MINUTES` (default 10, 1 to 30): how long a confirmation token is valid.
    pub token_validity: Duration,
    /// `DR_STATE_MACHINE_ARN`: the DR state machine `POST /dr/executions` starts (absent:
    /// that route answers 503).
    pub dr_state_machine_arn: Option<String>,
    /// `STORAGE_PRICES` over the built-in list prices: `GET /metrics`' cost estimate.
    pub prices: lifeboat::domain::cost::PriceBook,
    /// `DASHBOARD_ORIGIN`: the dashboard's origin (`https://<host>`), allowed to read the
    /// API from the browser (CORS); absent: no cross-origin reads.
    pub dashboard_origin: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct AdminConfigError(pub Vec<String>);

impl fmt::Display for AdminConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid admin API configuration: {}", self.0.join("; "))
    }
}

impl AdminConfig {
    pub fn from_env() -> Result<Self, AdminConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, AdminConfigError> {
        let mut problems = Vec::new();
        let mut required = |key: &str| {
            get(key).filter(|v| !v.trim().is_empty()).unwrap_or_else(|| {
                problems.push(format!("{key} is not set"));
                String::new()
            })
        };
        let roles_raw = required("ADMIN_ROLES");
        let create_snapshots_function = required("CREATE_SNAPSHOTS_FUNCTION");
        let signing_key_secret_id = required("SIGNING_KEY_SECRET_ID");
        let roles = if roles_raw.is_empty() {
            RoleMap::default()
        } else {
            RoleMap::parse(&roles_raw).unwrap_or_else(|p| {
                problems.extend(p);
                RoleMap::default()
            })
        };
        let minutes = match get("CONFIRM_TOKEN_MINUTES") {
            None => 10,
            Some(v) => match v.trim().parse::<i64>() {
                Ok(m) if (1..=30).contains(&m) => m,
                _ => {
                    problems.push(format!("CONFIRM_TOKEN_MINUTES: {v:.20?} is not a number from 1 to 30"));
                    10
                }
            },
        };
        let prices = lifeboat::domain::cost::PriceBook::from_lookup(&get).unwrap_or_else(|p| {
            problems.extend(p);
            lifeboat::domain::cost::PriceBook::default()
        });
        let dashboard_origin = get("DASHBOARD_ORIGIN").filter(|v| !v.trim().is_empty());
        if let Some(o) = &dashboard_origin
            && !is_origin(o)
        {
            problems.push(format!(
                "DASHBOARD_ORIGIN: {o:.80?} is not an origin (https://host[:port], nothing after it)"
            ));
        }
        if problems.is_empty() {
            Ok(Self {
                roles,
                create_snapshots_function,
                signing_key_secret_id,
                token_validity: Duration::minutes(minutes),
                dr_state_machine_arn: get("DR_STATE_MACHINE_ARN").filter(|v| !v.trim().is_empty()),
                prices,
                dashboard_origin,
            })
        } else {
            Err(AdminConfigError(problems))
        }
    }
}

/// `https://host[:port]` (or `http://` for a loopback host), nothing after it.
fn is_origin(s: &str) -> bool {
    let rest = s.strip_prefix("https://").or_else(|| {
        s.strip_prefix("http://")
            .filter(|r| r.starts_with("127.0.0.1") || r.starts_with("localhost"))
    });
    rest.is_some_and(|r| {
        !r.is_empty()
            && r.len() <= 253
            && r.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn exact_beats_prefix_and_longest_prefix_wins() {
        let m = RoleMap::parse(
            r#"{"arn:aws:sts::1:assumed-role/*": "viewer",
                "arn:aws:sts::1:assumed-role/Ops/*": "operator",
                "arn:aws:sts::1:assumed-role/Ops/alice": "admin"}"#,
        )
        .unwrap();
        assert_eq!(m.role_of("arn:aws:sts::1:assumed-role/Ops/alice"), Some(Role::Admin));
        assert_eq!(m.role_of("arn:aws:sts::1:assumed-role/Ops/bob"), Some(Role::Operator));
        assert_eq!(m.role_of("arn:aws:sts::1:assumed-role/Dev/x"), Some(Role::Viewer));
        assert_eq!(m.role_of("arn:aws:iam::1:user/mallory"), None);
    }

    #[test]
    fn the_dashboard_origin_is_an_origin() {
        let with = |origin: &str| {
            AdminConfig::from_lookup(|k| match k {
                "ADMIN_ROLES" => Some(r#"{"arn:aws:iam::1:user/v": "viewer"}"#.into()),
                "CREATE_SNAPSHOTS_FUNCTION" => Some("create-snapshots".into()),
                "SIGNING_KEY_SECRET_ID" => Some("key".into()),
                "DASHBOARD_ORIGIN" => Some(origin.into()),
                _ => None,
            })
        };
        assert_eq!(
            with("https://d111111abcdef8.cloudfront.net")
                .unwrap()
                .dashboard_origin
                .as_deref(),
            Some("https://d111111abcdef8.cloudfront.net")
        );
        assert!(with("").unwrap().dashboard_origin.is_none());
        for bad in [
            "*",
            "http://example.com",
            "https://x.net/path",
            "https://",
            "d1.cloudfront.net",
        ] {
            let err = with(bad).unwrap_err();
            assert!(err.to_string().contains("DASHBOARD_ORIGIN"), "{bad}: {err}");
        }
    }

    #[test]
    fn lists_every_problem() {
        let err = AdminConfig::from_lookup(|k| match k {
            "ADMIN_ROLES" => Some(r#"{"arn:aws:iam::1:user/a": "root", "bob": "admin"}"#.into()),
            "CONFIRM_TOKEN_MINUTES" => Some("90".into()),
            _ => None,
        })
        .unwrap_err()
        .to_string();
        for needle in [
            "root",
            "bob",
            "CREATE_SNAPSHOTS_FUNCTION",
            "SIGNING_KEY_SECRET_ID",
            "CONFIRM_TOKEN_MINUTES",
        ] {
            assert!(err.contains(needle), "{needle} missing from {err}");
        }
    }
}
