//! Every route of the admin API: its method, path pattern, the least role that may call it
//! and its handler; and how a request's path is matched against a pattern.

use crate::{Role, http};

/// The handlers, one per route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    ListResources,
    ListRecoveryPoints,
    GetRecoveryPoint,
    GetPolicy,
    PutPolicy,
    PolicyVersions,
    Plan,
    Backup,
    RestorePreview,
    RestoreGet,
    RestoreConfirm,
    RestoreAdvance,
    RestoreFinish,
    RestoreRollback,
    Audit,
    DrStart,
    DrList,
    DrPlans,
    DrPlanGet,
    DrPlanPut,
    DrGet,
    Compliance,
    Metrics,
    Alerts,
    Approvals,
    ApprovalGet,
    Approve,
    Deny,
    ApprovalToken,
    Confirmation,
    DrReport,
}

/// One row of the route table.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    /// Segments; `{name}` matches one segment, a final `{name+}` the rest of the path.
    pub pattern: &'static str,
    /// The least role allowed. `POST /restores` and its confirm need admin when the
    /// restore overwrites an existing instance (checked by the handler).
    pub min_role: Role,
    pub handler: Handler,
}

pub const ROUTES: &[Route] = &[
    Route {
        method: "GET",
        pattern: "/resources",
        min_role: Role::Viewer,
        handler: Handler::ListResources,
    },
    Route {
        method: "GET",
        pattern: "/recovery-points",
        min_role: Role::Viewer,
        handler: Handler::ListRecoveryPoints,
    },
    Route {
        method: "GET",
        pattern: "/recovery-points/{id+}",
        min_role: Role::Viewer,
        handler: Handler::GetRecoveryPoint,
    },
    Route {
        method: "GET",
        pattern: "/policies/{name}",
        min_role: Role::Viewer,
        handler: Handler::GetPolicy,
    },
    Route {
        method: "PUT",
        pattern: "/policies/{name}",
        min_role: Role::Admin,
        handler: Handler::PutPolicy,
    },
    Route {
        method: "GET",
        pattern: "/policies/{name}/versions",
        min_role: Role::Viewer,
        handler: Handler::PolicyVersions,
    },
    Route {
        method: "POST",
        pattern: "/plans",
        min_role: Role::Viewer,
        handler: Handler::Plan,
    },
    Route {
        method: "POST",
        pattern: "/backups",
        min_role: Role::Operator,
        handler: Handler::Backup,
    },
    Route {
        method: "POST",
        pattern: "/restores",
        min_role: Role::Operator,
        handler: Handler::RestorePreview,
    },
    Route {
        method: "GET",
        pattern: "/restores/{id}",
        min_role: Role::Viewer,
        handler: Handler::RestoreGet,
    },
    Route {
        method: "POST",
        pattern: "/restores/{id}/confirm",
        min_role: Role::Operator,
        handler: Handler::RestoreConfirm,
    },
    // An overwrite needs the admin role (checked by the handler).
    Route {
        method: "POST",
        pattern: "/restores/{id}/advance",
        min_role: Role::Operator,
        handler: Handler::RestoreAdvance,
    },
    Route {
        method: "POST",
        pattern: "/restores/{id}/finish",
        min_role: Role::Admin,
        handler: Handler::RestoreFinish,
    },
    Route {
        method: "POST",
        pattern: "/restores/{id}/rollback",
        min_role: Role::Admin,
        handler: Handler::RestoreRollback,
    },
    Route {
        method: "GET",
        pattern: "/audit",
        min_role: Role::Admin,
        handler: Handler::Audit,
    },
    Route {
        method: "GET",
        pattern: "/compliance",
        min_role: Role::Viewer,
        handler: Handler::Compliance,
    },
    Route {
        method: "GET",
        pattern: "/metrics",
        min_role: Role::Viewer,
        handler: Handler::Metrics,
    },
    Route {
        method: "GET",
        pattern: "/alerts",
        min_role: Role::Viewer,
        handler: Handler::Alerts,
    },
    // A failover or failback needs the admin role (checked by the handler).
    Route {
        method: "POST",
        pattern: "/dr/executions",
        min_role: Role::Operator,
        handler: Handler::DrStart,
    },
    Route {
        method: "GET",
        pattern: "/dr/executions",
        min_role: Role::Viewer,
        handler: Handler::DrList,
    },
    Route {
        method: "GET",
        pattern: "/dr/plans",
        min_role: Role::Viewer,
        handler: Handler::DrPlans,
    },
    Route {
        method: "GET",
        pattern: "/dr/plans/{name}",
        min_role: Role::Viewer,
        handler: Handler::DrPlanGet,
    },
    Route {
        method: "PUT",
        pattern: "/dr/plans/{name}",
        min_role: Role::Admin,
        handler: Handler::DrPlanPut,
    },
    Route {
        method: "GET",
        pattern: "/dr/executions/{plan}/{execution}",
        min_role: Role::Viewer,
        handler: Handler::DrGet,
    },
    Route {
        method: "GET",
        pattern: "/dr/executions/{plan}/{execution}/report",
        min_role: Role::Viewer,
        handler: Handler::DrReport,
    },
    Route {
        method: "GET",
        pattern: "/approvals",
        min_role: Role::Viewer,
        handler: Handler::Approvals,
    },
    Route {
        method: "GET",
        pattern: "/approvals/{id}",
        min_role: Role::Viewer,
        handler: Handler::ApprovalGet,
    },
    // Deciding needs the admin role and a principal the rule names (checked by the handler,
    // which says which was missing).
    Route {
        method: "POST",
        pattern: "/approvals/{id}/approve",
        min_role: Role::Operator,
        handler: Handler::Approve,
    },
    Route {
        method: "POST",
        pattern: "/approvals/{id}/deny",
        min_role: Role::Operator,
        handler: Handler::Deny,
    },
    // Only the principal that asked gets the token (checked by the handler).
    Route {
        method: "POST",
        pattern: "/approvals/{id}/token",
        min_role: Role::Operator,
        handler: Handler::ApprovalToken,
    },
    // A token for a destructive request invoked directly (restore-objects, backup-config).
    Route {
        method: "POST",
        pattern: "/confirmations",
        min_role: Role::Admin,
        handler: Handler::Confirmation,
    },
];

/// Path parameters of a matched route, percent-decoded.
pub type Params = Vec<(&'static str, String)>;

/// Matches `path` against `pattern`; `None` when it does not match.
pub fn match_path(pattern: &'static str, path: &str) -> Option<Params> {
    let pat: Vec<&'static str> = pattern.trim_start_matches('/').split('/').collect();
    let segs: Vec<&str> = path.trim_start_matches('/').trim_end_matches('/').split('/').collect();
    let mut params = Vec::new();
    for (i, p) in pat.iter().enumerate() {
        if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix("+}")) {
            let rest = segs.get(i..).filter(|r| !r.is_empty())?;
            let decoded: Option<Vec<String>> = rest.iter().map(|s| http::percent_decode(s)).collect();
            let value = decoded?.join("/");
            if value.is_empty() {
                return None;
            }
            params.push((name, value));
            return Some(params);
        }
        let seg = segs.get(i)?;
        if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            let value = http::percent_decode(seg)?;
            if value.is_empty() {
                return None;
            }
            params.push((name, value));
        } else if p != seg {
            return None;
        }
    }
    (segs.len() == pat.len()).then_some(params)
}
