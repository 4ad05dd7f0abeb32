//! The catalog in memory, with the DynamoDB catalog's conditional writes.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lifeboat_domain::{Alert, Policy, PolicyProblems, RecoveryPoint, RecoveryPointId, Region, Status};
use lifeboat_ports::{Catalog, PolicyVersion, PortError, PortResult, RunRecord};

use crate::lock;

#[derive(Debug, Default)]
struct CatalogState {
    points: BTreeMap<RecoveryPointId, RecoveryPoint>,
    policies: BTreeMap<String, String>,
    policy_versions: BTreeMap<String, Vec<PolicyVersion>>,
    leases: BTreeMap<String, (String, DateTime<Utc>)>,
    markers: BTreeMap<String, (bool, DateTime<Utc>)>,
    runs: Vec<RunRecord>,
    alerts: Vec<(DateTime<Utc>, Alert)>,
}

#[derive(Debug, Default)]
pub struct InMemoryCatalog {
    state: Mutex<CatalogState>,
    calls: AtomicUsize,
    failures: Mutex<VecDeque<PortError>>,
    marker_failures: Mutex<VecDeque<PortError>>,
}

impl InMemoryCatalog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores a policy document as given, valid or not.
    pub fn put_policy_json(&self, name: &str, json: &str) {
        lock(&self.state).policies.insert(name.to_owned(), json.to_owned());
    }

    pub fn points(&self) -> Vec<RecoveryPoint> {
        lock(&self.state).points.values().cloned().collect()
    }

    pub fn runs(&self) -> Vec<RunRecord> {
        lock(&self.state).runs.clone()
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// The next catalog call fails with `error`.
    pub fn fail_next(&self, error: PortError) {
        lock(&self.failures).push_back(error);
    }

    /// The next [`Catalog::claim_marker`] call fails with `error` (other calls go through).
    pub fn fail_next_marker_claim(&self, error: PortError) {
        lock(&self.marker_failures).push_back(error);
    }

    fn enter(&self) -> PortResult<MutexGuard<'_, CatalogState>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(e) = lock(&self.failures).pop_front() {
            return Err(e);
        }
        Ok(lock(&self.state))
    }
}

#[async_trait]
impl Catalog for InMemoryCatalog {
    async fn policies(&self) -> PortResult<Vec<Result<Policy, PolicyProblems>>> {
        Ok(self
            .enter()?
            .policies
            .iter()
            .map(|(key, json)| Policy::from_stored(key, json))
            .collect())
    }

    async fn put_policy(&self, policy: &Policy) -> PortResult<()> {
        let json = serde_json::to_string(&policy.to_document()).map_err(|e| PortError::Invalid(e.to_string()))?;
        self.enter()?.policies.insert(policy.name.to_string(), json);
        Ok(())
    }

    async fn policy_document(&self, name: &str) -> PortResult<Option<String>> {
        Ok(self.enter()?.policies.get(name).cloned())
    }

    async fn replace_policy(&self, policy: &Policy, expected: Option<&str>) -> PortResult<()> {
        let json = serde_json::to_string(&policy.to_document()).map_err(|e| PortError::Invalid(e.to_string()))?;
        let mut state = self.enter()?;
        let key = policy.name.to_string();
        if state.policies.get(&key).map(String::as_str) != expected {
            return Err(PortError::Conflict(format!("policy {key} changed meanwhile")));
        }
        state.policies.insert(key, json);
        Ok(())
    }

    async fn keep_policy_version(&self, name: &str, version: &PolicyVersion) -> PortResult<()> {
        self.enter()?
            .policy_versions
            .entry(name.to_owned())
            .or_default()
            .push(version.clone());
        Ok(())
    }

    async fn policy_versions(&self, name: &str, limit: usize) -> PortResult<Vec<PolicyVersion>> {
        let state = self.enter()?;
        let mut all = state.policy_versions.get(name).cloned().unwrap_or_default();
        all.sort_by_key(|v| std::cmp::Reverse(v.replaced_at));
        all.truncate(limit);
        Ok(all)
    }

    async fn get(&self, id: &RecoveryPointId) -> PortResult<Option<RecoveryPoint>> {
        Ok(self.enter()?.points.get(id).cloned())
    }

    async fn get_many(&self, ids: &[RecoveryPointId]) -> PortResult<Vec<RecoveryPoint>> {
        let state = self.enter()?;
        Ok(ids.iter().filter_map(|id| state.points.get(id).cloned()).collect())
    }

    async fn insert(&self, rp: &RecoveryPoint) -> PortResult<()> {
        let mut state = self.enter()?;
        if state.points.contains_key(&rp.id) {
            return Err(PortError::Conflict(format!("{} is already recorded", rp.id)));
        }
        state.points.insert(rp.id.clone(), rp.clone());
        Ok(())
    }

    async fn update(&self, rp: &RecoveryPoint, expected_version: u64) -> PortResult<()> {
        let mut state = self.enter()?;
        match state.points.get(&rp.id) {
            Some(stored) if stored.version == expected_version => {
                state.points.insert(rp.id.clone(), rp.clone());
                Ok(())
            }
            Some(stored) => Err(PortError::Conflict(format!(
                "{} is at version {}, not {expected_version}",
                rp.id, stored.version
            ))),
            None => Err(PortError::Conflict(format!("{} is not recorded", rp.id))),
        }
    }

    async fn by_status(&self, status: Status) -> PortResult<Vec<RecoveryPoint>> {
        Ok(self
            .enter()?
            .points
            .values()
            .filter(|p| p.status == status)
            .cloned()
            .collect())
    }

    async fn by_resource(&self, resource_arn: &str, limit: usize) -> PortResult<Vec<RecoveryPoint>> {
        let mut points: Vec<_> = self
            .enter()?
            .points
            .values()
            .filter(|p| p.resource.arn == resource_arn)
            .cloned()
            .collect();
        points.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        points.truncate(limit);
        Ok(points)
    }

    async fn created_since(&self, location: &Region, since: DateTime<Utc>) -> PortResult<Vec<RecoveryPoint>> {
        let mut points: Vec<_> = self
            .enter()?
            .points
            .values()
            .filter(|p| &p.location == location && p.created_at >= since)
            .cloned()
            .collect();
        points.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(points)
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> PortResult<bool> {
        let mut state = self.enter()?;
        match state.leases.get(name) {
            Some((h, exp)) if h != holder && *exp > now => Ok(false),
            _ => {
                state.leases.insert(name.to_owned(), (holder.to_owned(), until));
                Ok(true)
            }
        }
    }

    async fn release_lease(&self, name: &str, holder: &str) -> PortResult<()> {
        let mut state = self.enter()?;
        if state.leases.get(name).is_some_and(|(h, _)| h == holder) {
            state.leases.remove(name);
        }
        Ok(())
    }

    async fn claim_marker(&self, key: &str, now: DateTime<Utc>, stale_before: DateTime<Utc>) -> PortResult<bool> {
        let mut state = self.enter()?;
        if let Some(e) = lock(&self.marker_failures).pop_front() {
            return Err(e);
        }
        match state.markers.get(key) {
            Some((true, _)) => Ok(false),
            Some((false, claimed)) if *claimed >= stale_before => Ok(false),
            _ => {
                state.markers.insert(key.to_owned(), (false, now));
                Ok(true)
            }
        }
    }

    async fn confirm_marker(&self, key: &str) -> PortResult<()> {
        if let Some(m) = self.enter()?.markers.get_mut(key) {
            m.0 = true;
        }
        Ok(())
    }

    async fn release_marker(&self, key: &str) -> PortResult<()> {
        let mut state = self.enter()?;
        if state.markers.get(key).is_some_and(|m| !m.0) {
            state.markers.remove(key);
        }
        Ok(())
    }

    async fn record_run(&self, run: &RunRecord) -> PortResult<()> {
        self.enter()?.runs.push(run.clone());
        Ok(())
    }

    async fn log_alert(&self, alert: &Alert, sent_at: DateTime<Utc>) -> PortResult<()> {
        self.enter()?.alerts.push((sent_at, alert.clone()));
        Ok(())
    }

    async fn recent_alerts(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> PortResult<Vec<(DateTime<Utc>, Alert)>> {
        let mut out: Vec<_> = self
            .enter()?
            .alerts
            .iter()
            .filter(|(at, _)| *at >= since && *at <= until)
            .cloned()
            .collect();
        out.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.dedupe_key.cmp(&b.1.dedupe_key)));
        out.truncate(limit);
        Ok(out)
    }
}
