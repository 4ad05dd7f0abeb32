//! The names a DR execution gives what it creates: deterministic, valid RDS and DynamoDB
//! identifiers that carry the execution and mark what Lifeboat owns.

use super::{Digest, Sha256, is_rds_identifier, is_table_name};

/// Step Functions execution names: 1–80 of letters, digits, `-` and `_`.
pub fn is_execution_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 80 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A short stable digest of the execution name, used in resource names.
pub fn short_id(execution: &str) -> String {
    Sha256::digest(execution.as_bytes())
        .iter()
        .take(4)
        .fold(String::new(), |mut s, b| {
            use std::fmt::Write as _;
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A deterministic RDS identifier: `<prefix>-<8 hex of the execution>-<db>`, cut to 63
/// characters. The same execution and database always get the same name, which is what
/// makes a retried restore find its earlier work instead of creating a second resource.
pub fn resource_name(prefix: &str, execution: &str, db: &str) -> String {
    let mut name = format!("{prefix}-{}-{db}", short_id(execution));
    name.truncate(63);
    while name.ends_with('-') {
        name.pop();
    }
    debug_assert!(is_rds_identifier(&name));
    name
}

/// The writer instance of a restored Aurora cluster: `<cluster>-w1`, the cluster's name
/// cut to leave room (so it starts like the cluster's, and is found with it).
pub fn writer_instance_name(cluster: &str) -> String {
    let mut base: String = cluster.chars().take(60).collect();
    while base.ends_with('-') {
        base.pop();
    }
    format!("{base}-w1")
}

/// The prefixes of the databases a drill, a failover and a failback restore into:
/// deleting a database is only ever considered for names with one of these.
pub const DB_PREFIXES: [&str; 3] = ["lbdr-", "lbfo-", "lbfb-"];

/// The final snapshot RDS takes when Lifeboat deletes the database `id`: `<id>-final`, a
/// valid snapshot identifier for every identifier Lifeboat restores into (at most 69
/// characters; snapshot identifiers may have 255).
pub fn final_snapshot_name(id: &str) -> String {
    format!("{id}-final")
}

/// The prefixes of the tables a drill and a failover restore into: deleting a table is
/// only ever considered for names with one of these.
pub const TABLE_PREFIXES: [&str; 2] = ["lbdr-", "lbfo-"];

/// A deterministic DynamoDB table name: `<prefix>-<8 hex of the execution>-<table>`, cut
/// to 255 characters. A retried restore finds the table its earlier run started.
pub fn table_name(prefix: &str, execution: &str, table: &str) -> String {
    let mut name = format!("{prefix}-{}-{table}", short_id(execution));
    name.truncate(255);
    debug_assert!(is_table_name(&name));
    name
}
