//! Deterministic names: resource + policy + slot name a snapshot, so a replayed trigger
//! finds the snapshot it already made instead of making a second one.

use super::{PolicyName, ResourceRef, Slot};

/// Prefix of every snapshot Lifeboat creates.
pub const SNAPSHOT_PREFIX: &str = "lb";

/// Tag keys Lifeboat writes on every snapshot it creates or copies.
pub mod tags {
    pub const CREATED_BY: &str = "lifeboat:created-by";
    pub const CREATED_BY_VALUE: &str = "lifeboat";
    pub const POLICY: &str = "lifeboat:policy";
    pub const SLOT: &str = "lifeboat:slot";
    pub const SOURCE: &str = "lifeboat:source";
    pub const COPY_OF: &str = "lifeboat:copy-of";
}

/// `lb-<policy>-<resource id>-<yyyymmdd>-<hhmm>`: valid as an RDS DB snapshot and DB
/// cluster snapshot identifier (letter first, no double hyphen, at most 255 characters),
/// because policy names and RDS identifiers already obey those rules.
pub fn snapshot_name(policy: &PolicyName, resource: &ResourceRef, slot: Slot) -> String {
    let id = resource.id.to_ascii_lowercase();
    format!("{SNAPSHOT_PREFIX}-{policy}-{id}-{}", slot.compact())
}

/// `lb-<policy>-<resource id>-em-<yyyymmdd>-<hhmmss>`: an emergency backup, named by the
/// instant it was requested, so a repeated request does not make a second one.
pub fn emergency_name(
    policy: &PolicyName,
    resource: &ResourceRef,
    requested_at: chrono::DateTime<chrono::Utc>,
) -> String {
    let id = resource.id.to_ascii_lowercase();
    format!(
        "{SNAPSHOT_PREFIX}-{policy}-{id}-em-{}",
        requested_at.format("%Y%m%d-%H%M%S")
    )
}

/// `lb-<policy>-<resource id>-od-<yyyymmdd>-<hhmmss>`: an on-demand (not emergency)
/// backup, named by the instant it was requested.
pub fn on_demand_name(
    policy: &PolicyName,
    resource: &ResourceRef,
    requested_at: chrono::DateTime<chrono::Utc>,
) -> String {
    let id = resource.id.to_ascii_lowercase();
    format!(
        "{SNAPSHOT_PREFIX}-{policy}-{id}-od-{}",
        requested_at.format("%Y%m%d-%H%M%S")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Region, ResourceKind};
    use chrono::{DateTime, Utc};
    use std::time::Duration;

    #[test]
    fn name_is_deterministic_and_rds_valid() {
        let r = ResourceRef {
            kind: ResourceKind::RdsInstance,
            id: "Orders-DB".into(),
            arn: "arn:aws:rds:us-east-1:123456789012:db:orders-db".into(),
            region: Region::parse("us-east-1").unwrap(),
        };
        let at: DateTime<Utc> = "2026-11-23T18:47:00Z".parse().unwrap();
        let slot = Slot::containing(at, Duration::from_hours(1));
        let p = PolicyName::parse("gold").unwrap();
        let name = snapshot_name(&p, &r, slot);
        assert_eq!(name, "lb-gold-orders-db-20261123-1800");
        assert_eq!(name, snapshot_name(&p, &r, slot));
        assert!(!name.contains("--") && name.len() <= 255);
    }
}
