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
    /// On an Aurora cluster snapshot: the DB instance class of the cluster's writer when
    /// it was taken (a restore creates its writer with it).
    pub const WRITER_CLASS: &str = "lifeboat:writer-class";
}

/// `lb-<policy>-<resource id>-<yyyymmdd>-<hhmm>`: valid as an RDS DB snapshot and DB
/// cluster snapshot identifier (letter first, no double hyphen, at most 255 characters),
/// because policy names and RDS identifiers already obey those rules.
pub fn snapshot_name(policy: &PolicyName, resource: &ResourceRef, slot: Slot) -> String {
    let id = id_part(resource);
    format!("{SNAPSHOT_PREFIX}-{policy}-{id}-{}", slot.compact())
}

/// `lb-<policy>-<resource id>-em-<yyyymmdd>-<hhmmss>`: an emergency backup, named by the
/// instant it was requested, so a repeated request does not make a second one.
pub fn emergency_name(
    policy: &PolicyName,
    resource: &ResourceRef,
    requested_at: chrono::DateTime<chrono::Utc>,
) -> String {
    let id = id_part(resource);
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
    let id = id_part(resource);
    format!(
        "{SNAPSHOT_PREFIX}-{policy}-{id}-od-{}",
        requested_at.format("%Y%m%d-%H%M%S")
    )
}

/// The resource's part of a backup name, lowercase letters, digits and hyphens only (what
/// recovery point ids allow). RDS identifiers are already so; a DynamoDB table name may
/// hold `_` and `.`, which become `-`, followed by a short digest of the real name so that
/// `a_b` and `a.b` never share names.
pub fn id_part(resource: &ResourceRef) -> String {
    let id = resource.id.to_ascii_lowercase();
    if id
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return id;
    }
    let cleaned: String = id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let digest = super::manifest::sha256_hex(resource.id.as_bytes());
    format!("{cleaned}-{}", &digest[..8])
}

/// The name a recovery point found in an AWS Backup vault is recorded under:
/// `vault-<the ARN's last part>`, in the characters recovery point ids allow.
pub fn vault_point_name(recovery_point_arn: &str) -> String {
    let last = recovery_point_arn
        .rsplit([':', '/'])
        .find(|part| !part.is_empty())
        .unwrap_or("unnamed");
    let cleaned: String = last
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(200)
        .collect();
    format!("vault-{cleaned}")
}

/// The policy and slot of a scheduled backup of `resource` from its name (for backups that
/// cannot carry tags, such as DynamoDB's): `lb-<policy>-<id part>-<slot>`. `None` for
/// on-demand and emergency names and for names Lifeboat did not make.
pub fn parse_scheduled_name(name: &str, resource: &ResourceRef) -> Option<(PolicyName, Slot)> {
    let rest = name.strip_prefix(SNAPSHOT_PREFIX)?.strip_prefix('-')?;
    let marker = format!("-{}-", id_part(resource));
    let at = rest.rfind(&marker)?;
    let policy = PolicyName::parse(&rest[..at]).ok()?;
    let slot = Slot::parse_compact(&rest[at + marker.len()..])?;
    Some((policy, slot))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Region, ResourceKind};
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

    #[test]
    fn table_names_become_valid_distinct_backup_names_that_parse_back() {
        let table = |id: &str| ResourceRef {
            kind: ResourceKind::DynamoDbTable,
            id: id.into(),
            arn: format!("arn:aws:dynamodb:us-east-1:123456789012:table/{id}"),
            region: Region::parse("us-east-1").unwrap(),
        };
        let slot = Slot::containing("2026-11-23T18:47:00Z".parse().unwrap(), Duration::from_hours(1));
        let p = PolicyName::parse("tables-gold").unwrap();
        let (a, b, c) = (table("Carts_v2"), table("carts.v2"), table("carts-v2"));
        let names = [
            snapshot_name(&p, &a, slot),
            snapshot_name(&p, &b, slot),
            snapshot_name(&p, &c, slot),
        ];
        assert_eq!(names[2], "lb-tables-gold-carts-v2-20261123-1800");
        assert!(names[0].starts_with("lb-tables-gold-carts-v2-") && names[0] != names[1] && names[0] != names[2]);
        for (name, r) in names.iter().zip([&a, &b, &c]) {
            assert!(
                crate::RecoveryPointId::parse(&format!("us-east-1/table/{name}")).is_ok(),
                "{name}"
            );
            assert_eq!(parse_scheduled_name(name, r), Some((p.clone(), slot)), "{name}");
        }
        // Emergency names, other resources' names and foreign names do not parse.
        let at: DateTime<Utc> = "2026-11-23T18:47:00Z".parse().unwrap();
        assert_eq!(parse_scheduled_name(&emergency_name(&p, &c, at), &c), None);
        assert_eq!(parse_scheduled_name(&names[2], &table("orders")), None);
        assert_eq!(parse_scheduled_name("nightly-carts-v2", &c), None);
    }

    #[test]
    fn vault_recovery_points_get_valid_names() {
        for (arn, name) in [
            (
                "arn:aws:backup:us-east-1:123456789012:recovery-point:7C1B4A9E-1d2c",
                "vault-7c1b4a9e-1d2c",
            ),
            (
                "arn:aws:rds:us-east-1:123456789012:snapshot:awsbackup:job-12ab",
                "vault-job-12ab",
            ),
            (
                "arn:aws:dynamodb:us-east-1:123456789012:table/orders/backup/0148_x",
                "vault-0148-x",
            ),
            ("", "vault-unnamed"),
        ] {
            assert_eq!(vault_point_name(arn), name);
            assert!(crate::RecoveryPointId::parse(&format!("us-east-1/db/{name}")).is_ok());
        }
    }
}
