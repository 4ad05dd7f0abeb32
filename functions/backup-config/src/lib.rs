//! `backup-config`: SSM parameters and Secrets Manager secrets backed up as one sealed
//! bundle (AES-256-GCM under a KMS data key, see [`lifeboat_domain::config_bundle`]) in
//! the backup bucket, cataloged, verified and restorable.
//!
//! Three actions, one event each:
//! - `{"action": "backup", "bundle": "orders-config", "policy": "gold",
//!   "parameters": ["/orders/"], "secrets": ["orders/"]}`: gathers the items (parameters by
//!   path, or one by name; secrets by name prefix), seals them, writes the envelope
//!   (`lifeboat/config/<bundle>/<run>.json`, Object Lock as configured), reads it back,
//!   opens it again through KMS and records the run in the catalog as verified. A replay of
//!   the same run (same minute) finds the record and does nothing.
//! - `{"action": "verify", "bundle": "orders-config"}` (newest run, or `"run"`): reads the
//!   envelope, checks its SHA-256 against the catalog, opens it through KMS and checks its
//!   item list; records the verification.
//! - `{"action": "restore", "bundle": "orders-config", "run"?, "names"?, "rename"?:
//!   {"from", "to"}, "overwrite"?, "dryRun"?}`: writes the items back (a new parameter or
//!   secret version, so the overwritten value stays in the item's history); writing over an
//!   item's own name needs `"overwrite": true`.
//!
//! Values never leave the function: reports, logs and errors name items only.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lambda_runtime::LambdaEvent;
use lifeboat::FunctionError;
use lifeboat::invocation::{Function, Invocation, invoke};
use lifeboat::metrics::StdoutSink;
use lifeboat::object_store::read_all;
use lifeboat::object_store::settings::S3Settings;
use lifeboat_domain::config_bundle::{Bundle, ConfigItem, Envelope, ItemKind, encryption_context, random_nonce};
use lifeboat_domain::manifest::{ManifestRef, sha256_hex};
use lifeboat_domain::{PolicyName, RecoveryPoint, RecoveryPointId, ResourceKind, Slot, Status};
use lifeboat_ports::config::{ConfigStore, DataKeys};
use lifeboat_ports::objects::ObjectStore;
use lifeboat_ports::{Catalog, Clock, PortError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const FUNCTION: &str = "backup-config";
/// The largest envelope read back (Parameter Store and Secrets Manager values are small).
const MAX_ENVELOPE_BYTES: u64 = 64 * 1024 * 1024;
/// Recovery points of one bundle looked at to find the newest run.
const RUN_WINDOW: usize = 200;

#[derive(Clone)]
pub struct Deps {
    pub catalog: Arc<dyn Catalog>,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<dyn ConfigStore>,
    pub keys: Arc<dyn DataKeys>,
    /// S3 in the backup region.
    pub backup: Arc<dyn ObjectStore>,
    pub settings: S3Settings,
    /// `CONFIG_KMS_KEY_ID`: the KMS key the data keys are generated under.
    pub kms_key_id: String,
    /// Writing items back over themselves needs a token the admin API issued; it is spent
    /// and put on the audit trail here.
    pub confirmations: lifeboat::confirm::Confirmations,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps")
            .field("kms_key_id", &self.kms_key_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rename {
    pub from: String,
    pub to: String,
}

/// The three actions.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    #[serde(rename_all = "camelCase")]
    Backup {
        bundle: String,
        policy: String,
        #[serde(default)]
        parameters: Vec<String>,
        #[serde(default)]
        secrets: Vec<String>,
        #[serde(default)]
        scheduled_time: Option<DateTime<Utc>>,
    },
    #[serde(rename_all = "camelCase")]
    Verify {
        bundle: String,
        #[serde(default)]
        run: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    Restore {
        bundle: String,
        #[serde(default)]
        run: Option<String>,
        #[serde(default)]
        names: Vec<String>,
        #[serde(default)]
        rename: Option<Rename>,
        #[serde(default)]
        overwrite: bool,
        #[serde(default)]
        dry_run: bool,
        /// Writing over the items themselves: the token the admin API issued for this
        /// exact request (`POST /confirmations`), single use.
        #[serde(default)]
        confirmation: Option<String>,
        /// The request as it came, which the confirmation token is bound to.
        #[serde(skip)]
        payload: Value,
    },
}

impl Request {
    /// A scheduled backup's `scheduledTime` names its slot: believed only within `bounds`
    /// of `now` (the clock), else refused before anything is read or written.
    pub fn check_time(
        &self,
        now: DateTime<Utc>,
        bounds: lifeboat_domain::event_time::EventTimeBounds,
    ) -> Result<(), FunctionError> {
        match self {
            Self::Backup {
                scheduled_time: Some(at),
                ..
            } => lifeboat::events::check_time("scheduledTime", *at, now, bounds),
            _ => Ok(()),
        }
    }

    pub fn parse(event: &Value) -> Result<Self, FunctionError> {
        let mut req: Self = serde_json::from_value(event.clone()).map_err(|e| {
            FunctionError::invalid(format!(
                "expected {{\"action\": \"backup\" | \"verify\" | \"restore\", \"bundle\", …}}: {e}"
            ))
        })?;
        if let Self::Restore { payload, .. } = &mut req {
            payload.clone_from(event);
        }
        let mut problems = Vec::new();
        let bundle = match &req {
            Self::Backup { bundle, .. } | Self::Verify { bundle, .. } | Self::Restore { bundle, .. } => bundle,
        };
        if let Err(e) = PolicyName::parse(bundle) {
            problems.push(format!("bundle: {e}"));
        }
        match &req {
            Self::Backup {
                policy,
                parameters,
                secrets,
                ..
            } => {
                if let Err(e) = PolicyName::parse(policy) {
                    problems.push(format!("policy: {e}"));
                }
                if parameters.is_empty() && secrets.is_empty() {
                    problems.push("name at least one parameter path or secret prefix".into());
                }
                for (i, p) in parameters.iter().enumerate() {
                    if !p.starts_with('/') || p.len() > 2048 {
                        problems.push(format!("parameters[{i}]: {p:.80?} is not a parameter path (/…)"));
                    }
                }
                for (i, s) in secrets.iter().enumerate() {
                    if s.is_empty() || s.len() > 512 {
                        problems.push(format!("secrets[{i}]: a name prefix of 1 to 512 characters"));
                    }
                }
            }
            Self::Restore { rename: Some(r), .. } if r.from.is_empty() || r.to.is_empty() || r.from == r.to => {
                problems.push("rename: from and to must be different, non-empty prefixes".into());
            }
            _ => {}
        }
        if problems.is_empty() {
            Ok(req)
        } else {
            Err(FunctionError::invalid(problems.join("; ")))
        }
    }
}

/// An item as reports show it: never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemView {
    pub kind: &'static str,
    pub name: String,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

impl ItemView {
    fn of(item: &ConfigItem, target: Option<String>) -> Self {
        Self {
            kind: item.kind.as_str(),
            name: item.name.clone(),
            version: item.version.clone(),
            target,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub action: &'static str,
    pub bundle: String,
    pub run: String,
    pub recovery_point: RecoveryPointId,
    pub items: Vec<ItemView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_key: Option<String>,
    pub verified: bool,
    /// A backup replayed: the run was already recorded and nothing was done.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub replay: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

/// backup-config as one invocation: a backup, verify or restore request in, a report out.
/// It records no metrics.
#[derive(Debug)]
pub struct BackupConfig;

impl Function for BackupConfig {
    const NAME: &'static str = FUNCTION;
    type Deps = Deps;
    type Request = Request;
    type Output = Report;

    fn now(deps: &Deps) -> DateTime<Utc> {
        deps.clock.now()
    }

    fn parse(deps: &Deps, payload: &Value) -> Result<Request, FunctionError> {
        let req = Request::parse(payload)?;
        req.check_time(deps.clock.now(), deps.settings.event_time)?;
        Ok(req)
    }

    async fn run(deps: &Deps, req: Request, invocation: &mut Invocation) -> Result<Report, FunctionError> {
        run_as(deps, &req, invocation.run_id()).await
    }
}

pub async fn handle(deps: &Deps, event: LambdaEvent<Value>) -> Result<Report, FunctionError> {
    invoke::<BackupConfig>(deps, event, &StdoutSink).await
}

pub async fn run(deps: &Deps, req: &Request) -> Result<Report, FunctionError> {
    run_as(deps, req, &uuid::Uuid::new_v4().to_string()).await
}

/// [`run`] as the invocation `run_id` (the audit trail names it).
pub async fn run_as(deps: &Deps, req: &Request, run_id: &str) -> Result<Report, FunctionError> {
    match req {
        Request::Backup {
            bundle,
            policy,
            parameters,
            secrets,
            scheduled_time,
        } => backup(deps, bundle, policy, parameters, secrets, *scheduled_time).await,
        Request::Verify { bundle, run } => verify(deps, bundle, run.as_deref()).await,
        Request::Restore {
            bundle,
            run,
            names,
            rename,
            overwrite,
            dry_run,
            payload,
            ..
        } => {
            let asked = RestoreAsk {
                bundle,
                run: run.as_deref(),
                names,
                rename: rename.as_ref(),
                overwrite: *overwrite,
                dry_run: *dry_run,
                payload,
                run_id,
            };
            restore(deps, &asked).await
        }
    }
}

pub use lifeboat_domain::data_set::config_resource;

fn internal(e: impl std::fmt::Display) -> FunctionError {
    FunctionError::new(lifeboat::ErrorType::Internal, e.to_string())
}

async fn backup(
    deps: &Deps,
    bundle: &str,
    policy: &str,
    parameters: &[String],
    secrets: &[String],
    scheduled_time: Option<DateTime<Utc>>,
) -> Result<Report, FunctionError> {
    let s = &deps.settings;
    let now = deps.clock.now();
    let policy = PolicyName::parse(policy).map_err(|e| FunctionError::invalid(e.to_string()))?;
    let slot = Slot::containing(scheduled_time.unwrap_or(now), Duration::from_mins(1));
    let run = format!("lb-{bundle}-{}", slot.compact());
    let rp_id = RecoveryPointId::new(&s.backup_region, ResourceKind::ConfigBundle, &run);
    if let Some(done) = deps.catalog.get(&rp_id).await? {
        return Ok(Report {
            action: "backup",
            bundle: bundle.to_owned(),
            run,
            recovery_point: rp_id,
            items: Vec::new(),
            object_key: done.manifest().map(|m| m.key.clone()),
            verified: done.verified_at.is_some(),
            replay: true,
            dry_run: false,
        });
    }

    let mut items: Vec<ConfigItem> = Vec::new();
    for p in parameters {
        items.extend(deps.config.parameters(p).await?);
    }
    for prefix in secrets {
        items.extend(deps.config.secrets(prefix).await?);
    }
    items.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    items.dedup_by(|a, b| a.kind == b.kind && a.name == b.name);
    if items.is_empty() {
        return Err(FunctionError::not_found(format!(
            "bundle {bundle}: no parameter or secret matched; nothing was backed up"
        )));
    }

    let key_context = encryption_context(bundle, &run);
    let (data_key, sealed_key) = deps.keys.generate(&deps.kms_key_id, &key_context).await?;
    let content = Bundle { items };
    let envelope = Envelope::seal(
        bundle,
        &run,
        now,
        &deps.kms_key_id,
        &data_key,
        &sealed_key,
        &random_nonce(),
        &content,
    )
    .map_err(internal)?;
    drop(data_key);
    let body = envelope.to_json();
    let sha256 = sha256_hex(&body);
    let key = format!("lifeboat/config/{bundle}/{run}.json");
    let options = s.write_options(now, vec![("lifeboat-sha256".into(), sha256.clone())]);
    let size = body.len() as u64;
    deps.backup.put(&s.backup_bucket, &key, body, &options).await?;
    let mref = ManifestRef {
        source_bucket: String::new(),
        prefix: bundle.to_owned(),
        backup_bucket: s.backup_bucket.clone(),
        key: key.clone(),
        sha256,
        objects: content.items.len() as u64,
        bytes: size,
        copied: content.items.len() as u64,
        deleted: 0,
    };
    // Read back and opened through KMS before the run counts as verified.
    check(deps, bundle, &run, &mref).await?;

    let resource = config_resource(&s.source_region, bundle);
    let mut rp = RecoveryPoint::new(&resource, &policy, slot, &s.backup_region, &run, Status::Available, now)
        .with_manifest(mref);
    rp.size_bytes = Some(size);
    rp.verified_at = Some(deps.clock.now());
    match deps.catalog.insert(&rp).await {
        Ok(()) | Err(PortError::Conflict(_)) => {}
        Err(e) => return Err(e.into()),
    }
    tracing::info!(bundle, run = %run, items = content.items.len(), "config bundle backed up");
    Ok(Report {
        action: "backup",
        bundle: bundle.to_owned(),
        run,
        recovery_point: rp_id,
        items: content.items.iter().map(|i| ItemView::of(i, None)).collect(),
        object_key: Some(key),
        verified: true,
        replay: false,
        dry_run: false,
    })
}

/// Reads the envelope back, checks its SHA-256 and opens it through KMS.
async fn check(deps: &Deps, bundle: &str, run: &str, mref: &ManifestRef) -> Result<Bundle, FunctionError> {
    let conflict = |m: String| FunctionError::new(lifeboat::ErrorType::Conflict, m);
    let bytes = match read_all(deps.backup.as_ref(), &mref.backup_bucket, &mref.key, MAX_ENVELOPE_BYTES).await {
        Ok(b) => b,
        Err(PortError::NotFound(_)) => {
            return Err(conflict(format!("{run}: the stored bundle {} is missing", mref.key)));
        }
        Err(e) => return Err(e.into()),
    };
    if sha256_hex(&bytes) != mref.sha256 {
        return Err(conflict(format!(
            "{run}: the stored bundle does not match its recorded SHA-256"
        )));
    }
    let envelope = Envelope::from_json(&bytes).map_err(|e| conflict(format!("{run}: {e}")))?;
    if envelope.bundle != bundle || envelope.run != run {
        return Err(conflict(format!(
            "{run}: the stored bundle names another bundle or run"
        )));
    }
    let sealed = envelope
        .encrypted_data_key()
        .map_err(|e| conflict(format!("{run}: {e}")))?;
    let data_key = deps.keys.decrypt(&sealed, &encryption_context(bundle, run)).await?;
    let content = envelope.open(&data_key).map_err(|e| conflict(format!("{run}: {e}")))?;
    if content.items.len() as u64 != mref.objects {
        return Err(conflict(format!(
            "{run}: {} items, the catalog recorded {}",
            content.items.len(),
            mref.objects
        )));
    }
    Ok(content)
}

/// The run's catalog record: `run` or the newest.
async fn find_run(deps: &Deps, bundle: &str, run: Option<&str>) -> Result<RecoveryPoint, FunctionError> {
    let s = &deps.settings;
    let rp = if let Some(r) = run {
        let id = RecoveryPointId::new(&s.backup_region, ResourceKind::ConfigBundle, r);
        deps.catalog.get(&id).await?
    } else {
        let resource = config_resource(&s.source_region, bundle);
        deps.catalog
            .by_resource(&resource.arn, RUN_WINDOW)
            .await?
            .into_iter()
            .filter(|p| p.status == Status::Available && p.manifest().is_some())
            .max_by_key(|p| p.created_at)
    };
    rp.filter(|p| p.resource.kind == ResourceKind::ConfigBundle && p.resource.id == bundle)
        .ok_or_else(|| {
            FunctionError::not_found(format!(
                "no backup of bundle {bundle}{}",
                run.map(|r| format!(" named {r:.80}")).unwrap_or_default()
            ))
        })
}

async fn verify(deps: &Deps, bundle: &str, run: Option<&str>) -> Result<Report, FunctionError> {
    let mut rp = find_run(deps, bundle, run).await?;
    let run = rp.snapshot_name.clone();
    let Some(mref) = rp.manifest().cloned() else {
        return Err(FunctionError::not_found(format!("{run} has no stored bundle")));
    };
    let content = check(deps, bundle, &run, &mref).await?;
    let expected = rp.version;
    rp.verified_at = Some(deps.clock.now());
    rp.version += 1;
    match deps.catalog.update(&rp, expected).await {
        Ok(()) | Err(PortError::Conflict(_)) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Report {
        action: "verify",
        bundle: bundle.to_owned(),
        run,
        recovery_point: rp.id.clone(),
        items: content.items.iter().map(|i| ItemView::of(i, None)).collect(),
        object_key: Some(mref.key),
        verified: true,
        replay: false,
        dry_run: false,
    })
}

/// A restore as asked: what to restore, and the request its confirmation is bound to.
struct RestoreAsk<'a> {
    bundle: &'a str,
    run: Option<&'a str>,
    names: &'a [String],
    rename: Option<&'a Rename>,
    overwrite: bool,
    dry_run: bool,
    payload: &'a Value,
    run_id: &'a str,
}

async fn restore(deps: &Deps, ask: &RestoreAsk<'_>) -> Result<Report, FunctionError> {
    let RestoreAsk {
        bundle,
        run,
        names,
        rename,
        overwrite,
        dry_run,
        ..
    } = *ask;
    let rp = find_run(deps, bundle, run).await?;
    let run = rp.snapshot_name.clone();
    let Some(mref) = rp.manifest().cloned() else {
        return Err(FunctionError::not_found(format!("{run} has no stored bundle")));
    };
    let content = check(deps, bundle, &run, &mref).await?;
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !content.items.iter().any(|i| &i.name == *n))
        .collect();
    if !missing.is_empty() {
        return Err(FunctionError::not_found(format!(
            "{run} holds no item named {}",
            missing
                .iter()
                .map(|n| format!("{n:.120}"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let chosen: Vec<(&ConfigItem, String)> = content
        .items
        .iter()
        .filter(|i| names.is_empty() || names.contains(&i.name))
        .map(|i| {
            let target = match rename {
                Some(r) if i.name.starts_with(&r.from) => format!("{}{}", r.to, &i.name[r.from.len()..]),
                _ => i.name.clone(),
            };
            (i, target)
        })
        .collect();
    let over: Vec<&str> = chosen
        .iter()
        .filter(|(i, t)| &i.name == t)
        .map(|(i, _)| i.name.as_str())
        .collect();
    if !over.is_empty() && !overwrite {
        return Err(FunctionError::invalid(format!(
            "restoring {} over the item itself needs \"overwrite\": true (a new version is written; the current one stays in its history); or give \"rename\"",
            over.iter().take(5).copied().collect::<Vec<_>>().join(", ")
        )));
    }
    for (item, target) in &chosen {
        if item.kind == ItemKind::SsmParameter && !target.starts_with('/') {
            return Err(FunctionError::invalid(format!(
                "rename: parameter {} would become {target:.120}, not a path",
                item.name
            )));
        }
    }
    if !dry_run {
        if !over.is_empty() {
            // Before the first write over an item: the admin API's token for this exact
            // request, spent and audited.
            let what = format!("restoring config bundle {bundle} ({run}) over {} item(s)", over.len());
            deps.confirmations
                .spend(FUNCTION, ask.payload, &what, ask.run_id, deps.clock.now())
                .await?;
        }
        for (item, target) in &chosen {
            deps.config.put(item, target).await?;
        }
        tracing::info!(bundle, run = %run, items = chosen.len(), "config bundle restored");
    }
    Ok(Report {
        action: "restore",
        bundle: bundle.to_owned(),
        run,
        recovery_point: rp.id.clone(),
        items: chosen.iter().map(|(i, t)| ItemView::of(i, Some(t.clone()))).collect(),
        object_key: Some(mref.key),
        verified: true,
        replay: false,
        dry_run,
    })
}
