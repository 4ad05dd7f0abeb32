//! What the DR step tests share: regions, the start time, the keys fake, a recovery
//! point as the catalog records it, confirmation tokens and step requests.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use lifeboat::FunctionError;
use lifeboat_domain::confirm::{Claims, SigningKey};
use lifeboat_domain::{PolicyName, RecoveryPoint, Region, ResourceRef, Slot, Status};
use lifeboat_ports::PortResult;
use lifeboat_ports::dr::DrStore;
use lifeboat_ports::keys::{KmsKeys, SigningKeys};
use lifeboat_ports::lambda::{Invocation, Invoker};
use lifeboat_testkit::dr_store::InMemoryDrStore;
use run_dr_step::{Deps, StepRequest};
use serde_json::{Value, json};

pub fn east() -> Region {
    Region::parse("us-east-1").unwrap()
}

pub fn west() -> Region {
    Region::parse("us-west-2").unwrap()
}

pub fn t0() -> DateTime<Utc> {
    "2026-11-23T03:00:00Z".parse().unwrap()
}

/// The confirmation key every test signs its tokens with.
pub fn signing_key() -> SigningKey {
    SigningKey::new(vec![7; 32]).unwrap()
}

/// Every KMS key usable, the validation Lambda answering `validation_ok`, and the
/// confirmation key [`signing_key`].
#[derive(Debug)]
pub struct Keys {
    pub validation_ok: bool,
}

impl Keys {
    pub const OK: Self = Self { validation_ok: true };
}

#[async_trait]
impl KmsKeys for Keys {
    async fn usable(&self, _: &Region, _: &str) -> PortResult<bool> {
        Ok(true)
    }
}

#[async_trait]
impl Invoker for Keys {
    async fn invoke(&self, _: &str, _: &[u8]) -> PortResult<Invocation> {
        Ok(Invocation {
            function_error: None,
            payload: json!({"ok": self.validation_ok, "reason": "the smoke test failed"})
                .to_string()
                .into_bytes(),
        })
    }

    async fn invoke_async(&self, f: &str, _: &[u8]) -> PortResult<()> {
        Err(lifeboat_ports::PortError::Invalid(format!(
            "{f}: not invoked asynchronously"
        )))
    }
}

#[async_trait]
impl SigningKeys for Keys {
    async fn key(&self) -> PortResult<SigningKey> {
        Ok(signing_key())
    }
}

/// A recovery point of `resource` taken at `taken` by the policy `gold`, held in
/// `location` as `snapshot`, available.
pub fn point(resource: &ResourceRef, location: &Region, snapshot: &str, taken: DateTime<Utc>) -> RecoveryPoint {
    RecoveryPoint::new(
        resource,
        &PolicyName::parse("gold").unwrap(),
        Slot::parse_compact(&taken.format("%Y%m%d-%H%M").to_string()).unwrap(),
        location,
        snapshot,
        Status::Available,
        taken,
    )
}

/// A confirmation token for `mode` of `plan` as stored now, issued at `now` to `who`,
/// valid five minutes.
pub async fn token(
    store: &InMemoryDrStore,
    plan: &str,
    mode: &str,
    who: &str,
    now: DateTime<Utc>,
    nonce: &str,
) -> (String, Claims) {
    let plan = store.get_plan(plan).await.unwrap().unwrap().unwrap();
    let digest = lifeboat_domain::confirm::dr_request_digest(&plan, mode).unwrap();
    lifeboat_domain::confirm::issue(&signing_key(), &digest, who, now, Duration::minutes(5), nonce).unwrap()
}

/// What a Catch puts in `$.error` for `e`.
pub fn caught(e: &FunctionError) -> Value {
    json!({"Error": e.kind.as_str(), "Cause": json!({"errorMessage": e.message}).to_string()})
}

/// The step request `{"action": action, "request": request}`.
pub fn request(action: &str, request: Value) -> StepRequest {
    let mut envelope = json!({"action": action});
    envelope["request"] = request;
    StepRequest::parse(&envelope).unwrap()
}

/// Runs `action` with `request` as the execution's input, as the state machine's Task
/// invokes the function: `{"action": action, "request": input}`.
pub async fn step(deps: &Deps, action: &str, input: Value) -> Result<Value, FunctionError> {
    let mut envelope = json!({"action": action});
    envelope["request"] = input;
    run_dr_step::handle(deps, lifeboat_testkit::event_for(envelope, "run-1")).await
}

/// Inserts `point` (unverified, as the backup path records it) and proves it the way
/// production does: test-restores restores its snapshot into a throwaway database on an
/// isolated network, checks it and tears it down, on a fake RDS of its own (the DR test's
/// databases see none of it), at `at`. Returns the point as recorded, verified.
pub async fn proven(
    catalog: &std::sync::Arc<lifeboat_testkit::InMemoryCatalog>,
    point: &RecoveryPoint,
    at: DateTime<Utc>,
) -> RecoveryPoint {
    use lifeboat_ports::Catalog as _;
    let rds = std::sync::Arc::new(lifeboat_testkit::dr::InMemoryDrDatabases::new());
    let engine = match point.resource.kind {
        lifeboat_domain::ResourceKind::AuroraCluster => "aurora-postgresql",
        _ => "postgres",
    };
    rds.put_snapshot_facts(
        &point.location,
        &point.snapshot_name,
        lifeboat_domain::restore_test::Facts {
            engine: Some(engine.into()),
            ..Default::default()
        },
    );
    let settings = test_restores::Settings::from_lookup(|k| {
        (k == "RESTORE_TEST_NETWORKS").then(|| {
            format!(
                r#"{{"{}": {{"subnet_group": "isolated", "security_groups": ["sg-1"]}}}}"#,
                point.location
            )
        })
    })
    .unwrap();
    let deps = test_restores::Deps {
        catalog: catalog.clone(),
        notifier: std::sync::Arc::new(lifeboat_testkit::RecordingNotifier::new()),
        clock: std::sync::Arc::new(lifeboat_testkit::ManualClock::new(at)),
        databases: rds,
        validator: std::sync::Arc::new(Keys::OK),
        settings,
        alert_window: None,
    };
    catalog.insert(point).await.unwrap();
    let one = json!({"recoveryPoint": point.id});
    test_restores::handle(&deps, lifeboat_testkit::event(one))
        .await
        .unwrap();
    for _ in 0..5 {
        test_restores::handle(&deps, lifeboat_testkit::event(json!({"mode": "advance"})))
            .await
            .unwrap();
    }
    let proven = catalog.get(&point.id).await.unwrap().unwrap();
    assert!(proven.verified_at.is_some(), "{:?}", proven.restore_test());
    proven
}
