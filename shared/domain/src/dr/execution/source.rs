//! Choosing what a database is restored from: a read replica or global secondary, a
//! point-in-time restore, or the newest verified snapshot copy, by what the DR region has.

use super::{DateTime, Deserialize, GlobalMove, Mode, ProtectedDb, ResourceKind, Serialize, Utc};

/// Where a database is recovered from, and the facts behind the choice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Source {
    /// RDS point-in-time restore of the source instance (in the source region).
    PointInTime { restore_time: DateTime<Utc> },
    /// A verified snapshot copy held in the DR region.
    DrSnapshot {
        recovery_point: String,
        snapshot: String,
        taken_at: DateTime<Utc>,
    },
    /// Promote the cross-region read replica.
    PromoteReplica { replica: String, as_of: DateTime<Utc> },
    /// Move the Aurora global database to its DR-region cluster: an outage failover
    /// (`AllowDataLoss`) or a planned switchover, as the plan says.
    GlobalCluster {
        global_cluster: String,
        as_of: DateTime<Utc>,
        #[serde(default)]
        method: GlobalMove,
    },
    /// Failback: a fresh snapshot of the DR-side database, copied to the source region.
    DrSide {
        resource: String,
        snapshot: String,
        taken_at: Option<DateTime<Utc>>,
    },
}

impl Source {
    /// The instant whose data the recovered database holds (for the RPO).
    pub fn data_as_of(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::PointInTime { restore_time } => Some(*restore_time),
            Self::DrSnapshot { taken_at, .. } => Some(*taken_at),
            Self::PromoteReplica { as_of, .. } | Self::GlobalCluster { as_of, .. } => Some(*as_of),
            Self::DrSide { taken_at, .. } => *taken_at,
        }
    }
}

/// What is known about a database when its source is chosen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceFacts {
    /// The source database answered and is available.
    pub source_healthy: bool,
    /// The PITR window of the source: (earliest, latest restorable time).
    pub pitr_window: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// The read replica named by the plan exists in the DR region.
    pub replica_available: bool,
    /// The newest verified restorable recovery point in the DR region: (id, snapshot, taken at).
    pub newest_dr_copy: Option<(String, String, DateTime<Utc>)>,
}

/// Chooses where to recover `db` from, with the reason. `None` when nothing usable exists
/// (the reason says what is missing). Drills never promote replicas or fail a global
/// database over: both would change production.
pub fn choose_source(
    mode: Mode,
    db: &ProtectedDb,
    facts: &SourceFacts,
    target_time: DateTime<Utc>,
    now: DateTime<Utc>,
) -> (Option<Source>, String) {
    if mode == Mode::Failover {
        // A global database's secondary is its `read_replica`: it moves by the global
        // database's own failover or switchover, never by detaching and promoting it.
        if let (Some(global), Some(secondary), true) = (&db.global_cluster, &db.read_replica, facts.replica_available) {
            return match db.global_move {
                GlobalMove::Outage => (
                    Some(Source::GlobalCluster {
                        global_cluster: global.clone(),
                        as_of: now,
                        method: GlobalMove::Outage,
                    }),
                    format!(
                        "member of global database {global}, plan move \"outage\": failover to {secondary} with \
                         AllowDataLoss (writes not yet replicated to it are lost)"
                    ),
                ),
                GlobalMove::Planned if facts.source_healthy => (
                    Some(Source::GlobalCluster {
                        global_cluster: global.clone(),
                        as_of: now,
                        method: GlobalMove::Planned,
                    }),
                    format!(
                        "member of global database {global}, plan move \"planned\": switchover to {secondary} \
                         (no data loss)"
                    ),
                ),
                GlobalMove::Planned => (
                    None,
                    format!(
                        "member of global database {global}, plan move \"planned\": a switchover needs the primary \
                         cluster available and it is not; set global_move to \"outage\" to fail over with data loss"
                    ),
                ),
            };
        }
        if let (Some(replica), true, None) = (&db.read_replica, facts.replica_available, &db.global_cluster) {
            return (
                Some(Source::PromoteReplica {
                    replica: replica.clone(),
                    as_of: now,
                }),
                format!("cross-region read replica {replica} exists: promoting it loses the least data"),
            );
        }
    }
    if mode == Mode::Drill
        && db.kind == ResourceKind::RdsInstance
        && facts.source_healthy
        && let Some((earliest, latest)) = facts.pitr_window
        && earliest <= latest
    {
        if (earliest..=latest).contains(&target_time) {
            return (
                Some(Source::PointInTime {
                    restore_time: target_time,
                }),
                format!("source region healthy and {target_time} is inside the PITR window ({earliest} .. {latest})"),
            );
        }
        if target_time > latest && latest >= target_time - chrono::Duration::minutes(5) {
            return (
                Some(Source::PointInTime { restore_time: latest }),
                format!("source region healthy; latest restorable time {latest} is within 5 minutes of {target_time}"),
            );
        }
    }
    let why_not_pitr = if mode != Mode::Drill {
        "not a drill, so the source region is not relied on"
    } else if db.kind == ResourceKind::AuroraCluster {
        "Aurora clusters are restored from snapshots"
    } else if !facts.source_healthy {
        "source region unhealthy"
    } else {
        "target time outside the PITR window"
    };
    match &facts.newest_dr_copy {
        Some((id, snapshot, taken_at)) => (
            Some(Source::DrSnapshot {
                recovery_point: id.clone(),
                snapshot: snapshot.clone(),
                taken_at: *taken_at,
            }),
            format!("{why_not_pitr}: newest verified copy in the DR region, {id} taken at {taken_at}"),
        ),
        None => (
            None,
            format!("{why_not_pitr}, and no verified recovery point exists in the DR region"),
        ),
    }
}
