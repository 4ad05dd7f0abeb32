//! The admin API's own configuration, parsed once per cold start; every problem listed.

use std::collections::BTreeMap;
use std::fmt;

use chrono::Duration;
use lifeboat::config::ConfigError;
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

/// IAM principals → roles.
///
/// - A key without `*` matches exactly that principal ARN.
/// - A key ending in `*` matches on ARN path boundaries only: `…/Ops/*` matches every ARN
///   starting with `…/Ops/`; `…/user/admin*` matches `…/user/admin` itself and ARNs under
///   the path `…/user/admin/`, never `…/user/administrator-x`. A `*` anywhere else is
///   refused.
/// - Assumed roles are mapped by role, never by session: the session name is chosen by
///   whoever assumes the role, so `arn:aws:sts::<account>:assumed-role/<Role>/*` maps the
///   role and a key naming a session (`…/assumed-role/<Role>/<session>`, exact or as a
///   prefix) is refused when the configuration is read.
///
/// The longest matching key wins; an exact key beats any prefix.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoleMap {
    exact: BTreeMap<String, Role>,
    prefixes: Vec<(String, Role)>,
}

/// Why a key of `ADMIN_ROLES` cannot be used, if it cannot.
fn key_problem(key: &str) -> Option<String> {
    if !key.starts_with("arn:aws") {
        return Some(format!(
            "ADMIN_ROLES: {key:.80?} is not an IAM ARN (or ARN prefix ending in *)"
        ));
    }
    let (body, wildcard) = key.strip_suffix('*').map_or((key, false), |b| (b, true));
    if body.contains('*') {
        return Some(format!(
            "ADMIN_ROLES: {key:.80?} has a * before its end; only a trailing * is allowed"
        ));
    }
    // arn:partition:service:region:account:resource
    let mut fields = body.splitn(6, ':');
    let service = fields.nth(2).unwrap_or_default();
    let resource = fields.nth(2).unwrap_or_default();
    if service != "sts" {
        return None;
    }
    let rest = resource.strip_prefix("assumed-role/")?;
    let (role, session) = rest.split_once('/').unwrap_or((rest, ""));
    let role_key = format!(
        "{}assumed-role/{}/*",
        body.strip_suffix(resource).unwrap_or(body),
        if role.is_empty() { "<Role>" } else { role }
    );
    if !session.is_empty() {
        return Some(format!(
            "ADMIN_ROLES: {key:.120?} names an assumed-role session; session names are chosen by              whoever assumes the role and grant nothing: map the role with {role_key:.120?}"
        ));
    }
    if !wildcard && !role.is_empty() {
        return Some(format!(
            "ADMIN_ROLES: {key:.120?} matches no caller (callers are sessions of the role): map the role with {role_key:.120?}"
        ));
    }
    None
}

/// Does the prefix key `prefix*` match `principal`? Only on a path boundary: the prefix
/// ends with `/`, or the principal is the prefix itself or continues it with `/`.
fn prefix_matches(prefix: &str, principal: &str) -> bool {
    principal
        .strip_prefix(prefix)
        .is_some_and(|rest| prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'))
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
            if let Some(problem) = key_problem(&key) {
                problems.push(problem);
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
                .find(|(p, _)| prefix_matches(p, principal))
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
    /// `DR_STEP_FUNCTION`: name or ARN of run-dr-step, which previews a failover or failback
    /// (the pre-check's checks and the chosen sources) before any token is issued. Required
    /// with `DR_STATE_MACHINE_ARN`.
    pub dr_step_function: Option<String>,
    /// `STORAGE_PRICES` over the built-in list prices: `GET /metrics`' cost estimate.
    pub prices: lifeboat_domain::cost::PriceBook,
    /// `DASHBOARD_ORIGIN`: the dashboard's origin (`https://<host>`), allowed to read the
    /// API from the browser (CORS); absent: no cross-origin reads.
    pub dashboard_origin: Option<String>,
}

impl AdminConfig {
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
        let prices = lifeboat_domain::cost::PriceBook::from_lookup(&get).unwrap_or_else(|p| {
            problems.extend(p);
            lifeboat_domain::cost::PriceBook::default()
        });
        let dashboard_origin = get("DASHBOARD_ORIGIN").filter(|v| !v.trim().is_empty());
        let dr_state_machine_arn = get("DR_STATE_MACHINE_ARN").filter(|v| !v.trim().is_empty());
        let dr_step_function = get("DR_STEP_FUNCTION").filter(|v| !v.trim().is_empty());
        if dr_state_machine_arn.is_some() && dr_step_function.is_none() {
            problems.push(
                "DR_STEP_FUNCTION is not set: with DR_STATE_MACHINE_ARN, failover and failback previews run run-dr-step's pre-check".into(),
            );
        }
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
                dr_state_machine_arn,
                dr_step_function,
                prices,
                dashboard_origin,
            })
        } else {
            Err(ConfigError::new("admin API", problems))
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
                "arn:aws:iam::1:user/ops/*": "operator",
                "arn:aws:iam::1:user/ops/alice": "admin"}"#,
        )
        .unwrap();
        assert_eq!(m.role_of("arn:aws:iam::1:user/ops/alice"), Some(Role::Admin));
        assert_eq!(m.role_of("arn:aws:iam::1:user/ops/bob"), Some(Role::Operator));
        assert_eq!(m.role_of("arn:aws:sts::1:assumed-role/Ops/bob"), Some(Role::Operator));
        assert_eq!(m.role_of("arn:aws:sts::1:assumed-role/Dev/x"), Some(Role::Viewer));
        assert_eq!(m.role_of("arn:aws:iam::1:user/mallory"), None);
    }

    #[test]
    fn prefixes_match_only_on_arn_path_boundaries() {
        let m = RoleMap::parse(
            r#"{"arn:aws:iam::1:user/admin*": "admin",
                "arn:aws:iam::1:user/ops/*": "operator",
                "arn:aws:sts::1:assumed-role/Ops*": "viewer"}"#,
        )
        .unwrap();
        // (principal, role) — the table of the rule.
        let table = [
            ("arn:aws:iam::1:user/admin", Some(Role::Admin)),
            ("arn:aws:iam::1:user/admin/alice", Some(Role::Admin)),
            ("arn:aws:iam::1:user/administrator-x", None),
            ("arn:aws:iam::1:user/admin-x", None),
            ("arn:aws:iam::1:user/adminalice", None),
            ("arn:aws:iam::1:user/ops/bob", Some(Role::Operator)),
            ("arn:aws:iam::1:user/ops", None),
            ("arn:aws:iam::1:user/ops-bob", None),
            ("arn:aws:sts::1:assumed-role/Ops/alice", Some(Role::Viewer)),
            ("arn:aws:sts::1:assumed-role/OpsAdmin/alice", None),
            ("arn:aws:sts::1:assumed-role/Ops-x/alice", None),
        ];
        for (principal, want) in table {
            assert_eq!(m.role_of(principal), want, "{principal}");
        }
    }

    #[test]
    fn a_mapping_that_names_an_assumed_role_session_is_refused_with_the_role_mapping_to_use() {
        for key in [
            "arn:aws:sts::1:assumed-role/Ops/alice",
            "arn:aws:sts::1:assumed-role/Ops/alice*",
            "arn:aws:sts::1:assumed-role/Ops/alice/*",
        ] {
            let err = RoleMap::parse(&format!(r#"{{"{key}": "admin"}}"#))
                .unwrap_err()
                .join("; ");
            assert!(
                err.contains("session") && err.contains("arn:aws:sts::1:assumed-role/Ops/*"),
                "{key}: {err}"
            );
        }
        let err = RoleMap::parse(r#"{"arn:aws:sts::1:assumed-role/Ops": "admin"}"#)
            .unwrap_err()
            .join("; ");
        assert!(
            err.contains("matches no caller") && err.contains("assumed-role/Ops/*"),
            "{err}"
        );
        let err = RoleMap::parse(r#"{"arn:aws:iam::1:user/*/x": "admin"}"#)
            .unwrap_err()
            .join("; ");
        assert!(err.contains("only a trailing *"), "{err}");
        // Roles are mapped, whoever names the session.
        let m = RoleMap::parse(r#"{"arn:aws:sts::1:assumed-role/Ops/*": "admin"}"#).unwrap();
        assert_eq!(m.role_of("arn:aws:sts::1:assumed-role/Ops/anything"), Some(Role::Admin));
    }

    #[test]
    fn the_deployed_and_local_role_maps_parse() {
        let local = include_str!("../../../infra/local/functions.env")
            .lines()
            .find_map(|l| l.strip_prefix("ADMIN_ROLES="))
            .unwrap()
            .trim_matches('\'');
        RoleMap::parse(local).unwrap();
        // The template's default and the example in its description.
        RoleMap::parse("{}").unwrap();
        RoleMap::parse(r#"{"arn:aws:sts::111122223333:assumed-role/Ops/*": "operator"}"#).unwrap();
    }

    proptest::proptest! {
        #[test]
        fn a_prefix_never_matches_across_a_path_segment(
            path in "[a-z]{1,8}(/[a-z]{1,8}){0,2}",
            tail in "[a-zA-Z0-9_+=,.@-]{1,12}(/[a-z]{1,8})?",
        ) {
            let m = RoleMap::parse(&format!(r#"{{"arn:aws:iam::1:user/{path}*": "admin"}}"#)).unwrap();
            // The same segment continued is another principal.
            let other = format!("arn:aws:iam::1:user/{path}{tail}");
            proptest::prop_assert_eq!(m.role_of(&other), None, "{}", other);
            // The path itself and what lies under it are matched.
            proptest::prop_assert_eq!(m.role_of(&format!("arn:aws:iam::1:user/{path}")), Some(Role::Admin));
            let under = format!("arn:aws:iam::1:user/{path}/{tail}");
            proptest::prop_assert_eq!(m.role_of(&under), Some(Role::Admin));
        }
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
