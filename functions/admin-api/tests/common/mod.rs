//! Crafted API Gateway REST requests for each role, over in-memory fakes.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::sync::{Arc, Mutex};

use admin_api::{AdminConfig, Deps};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use lifeboat_domain::confirm::SigningKey;
use lifeboat_domain::{PolicyName, RecoveryPoint, Region, ResourceKind, Slot, Status};
use lifeboat_ports::lambda::{ExecutionStarter, Invocation, Invoker};
use lifeboat_ports::{PortError, PortResult};
use lifeboat_testkit::Fakes;
use lifeboat_testkit::admin::{InMemoryAuditLog, InMemoryDbRestorer, InMemoryRestoreStore};
use lifeboat_testkit::keys::StaticKey;
use serde_json::{Value, json};

pub const VIEWER: &str = "arn:aws:iam::123456789012:user/lifeboat-viewer";
pub const OPERATOR: &str = "arn:aws:sts::123456789012:assumed-role/LifeboatOperator/bob";
pub const ADMIN: &str = "arn:aws:sts::123456789012:assumed-role/LifeboatAdmin/alice";
pub const ADMIN2: &str = "arn:aws:sts::123456789012:assumed-role/LifeboatAdmin/carol";
/// A second admin in a role of its own (a session of the same role is the same person).
pub const APPROVER: &str = "arn:aws:iam::123456789012:user/approver-dave";
pub const STRANGER: &str = "arn:aws:iam::123456789012:user/mallory";

pub fn roles_json() -> String {
    json!({
        VIEWER: "viewer",
        "arn:aws:sts::123456789012:assumed-role/LifeboatOperator/*": "operator",
        "arn:aws:sts::123456789012:assumed-role/LifeboatAdmin/*": "admin",
        APPROVER: "admin",
    })
    .to_string()
}

/// Records every invocation; answers with the scripted reply.
#[derive(Debug, Default)]
pub struct FakeInvoker {
    pub calls: Mutex<Vec<(String, Value)>>,
    pub reply: Mutex<Option<PortResult<Invocation>>>,
}

#[async_trait]
impl Invoker for FakeInvoker {
    async fn invoke(&self, function: &str, payload: &[u8]) -> PortResult<Invocation> {
        self.calls
            .lock()
            .unwrap()
            .push((function.to_owned(), serde_json::from_slice(payload).unwrap()));
        self.reply.lock().unwrap().take().unwrap_or_else(|| {
            // run-dr-step previews a failover: its checks pass, each database from its copy.
            let payload = if function == DR_STEP_FUNCTION {
                json!({"checks": ["orders: verified recovery point in us-west-2"], "problems": [],
                       "sources": [{"database": "orders", "source": {"dr-snapshot": {}}, "reason": "newest verified copy"}]})
                .to_string()
                .into_bytes()
            } else {
                br#"{"created": 1}"#.to_vec()
            };
            Ok(Invocation {
                function_error: None,
                payload,
            })
        })
    }

    async fn invoke_async(&self, function: &str, _: &[u8]) -> PortResult<()> {
        panic!("the admin API waits for {function}; it queues nothing")
    }
}

/// Records every started execution: (state machine, name, input).
#[derive(Debug, Default)]
pub struct FakeStarter {
    pub started: Mutex<Vec<(String, String, Value)>>,
}

#[async_trait]
impl ExecutionStarter for FakeStarter {
    async fn start(&self, state_machine_arn: &str, name: &str, input: &str) -> PortResult<String> {
        self.started.lock().unwrap().push((
            state_machine_arn.to_owned(),
            name.to_owned(),
            serde_json::from_str(input).unwrap(),
        ));
        Ok(format!(
            "arn:aws:states:us-east-1:123456789012:execution:lifeboat-dr:{name}"
        ))
    }
}

pub const DR_STEP_FUNCTION: &str = "run-dr-step";
pub const DR_STATE_MACHINE: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:lifeboat-dr";

pub struct World {
    pub fakes: Fakes,
    pub dr: Arc<lifeboat_testkit::dr_store::InMemoryDrStore>,
    pub starter: Arc<FakeStarter>,
    pub audit: Arc<InMemoryAuditLog>,
    pub restores: Arc<InMemoryRestoreStore>,
    pub approvals: Arc<lifeboat_testkit::admin::InMemoryApprovalStore>,
    pub rds: Arc<InMemoryDbRestorer>,
    pub invoker: Arc<FakeInvoker>,
    pub deps: Deps,
}

pub fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

pub fn us_east_1() -> Region {
    Region::parse("us-east-1").unwrap()
}

impl World {
    pub fn new() -> Self {
        let fakes = Fakes::new(t("2026-11-23T03:00:00Z"));
        let audit = Arc::new(InMemoryAuditLog::default());
        let restores = Arc::new(InMemoryRestoreStore::default());
        let approvals = Arc::new(lifeboat_testkit::admin::InMemoryApprovalStore::default());
        let rds = Arc::new(InMemoryDbRestorer::default());
        let invoker = Arc::new(FakeInvoker::default());
        let dr = Arc::new(lifeboat_testkit::dr_store::InMemoryDrStore::default());
        let starter = Arc::new(FakeStarter::default());
        let roles = roles_json();
        let admin = AdminConfig::from_lookup(|k| match k {
            "ADMIN_ROLES" => Some(roles.clone()),
            "CREATE_SNAPSHOTS_FUNCTION" => Some("create-snapshots".into()),
            "SIGNING_KEY_SECRET_ID" => Some("lifeboat/confirm-key".into()),
            "DR_STATE_MACHINE_ARN" => Some(DR_STATE_MACHINE.into()),
            "DR_STEP_FUNCTION" => Some(DR_STEP_FUNCTION.into()),
            _ => None,
        })
        .unwrap();
        let deps = Deps {
            plan: lifeboat::planning::Planner {
                ports: fakes.ports(),
                config: Fakes::config(),
                tier_base: lifeboat_domain::tiering::S3Class::Standard,
            },
            admin,
            audit: audit.clone(),
            restores: restores.clone(),
            approvals: approvals.clone(),
            rds: rds.clone(),
            invoker: invoker.clone(),
            key: Arc::new(StaticKey(SigningKey::new(vec![42; 32]).unwrap())),
            dr: dr.clone(),
            executions: starter.clone(),
        };
        Self {
            fakes,
            dr,
            starter,
            audit,
            restores,
            approvals,
            rds,
            invoker,
            deps,
        }
    }

    /// The recovery point `id` as the catalog holds it now.
    pub async fn catalog_point(&self, id: &lifeboat_domain::RecoveryPointId) -> RecoveryPoint {
        lifeboat_ports::Catalog::get(self.fakes.catalog.as_ref(), id)
            .await
            .unwrap()
            .unwrap()
    }

    /// A recovery point of DB instance `db` taken at `at`, with its snapshot in RDS.
    pub async fn add_point(&self, db: &str, at: &str, status: Status) -> RecoveryPoint {
        let resource = self.fakes.add_db(ResourceKind::RdsInstance, db, "gold");
        let created = t(at);
        let name = format!("lb-{db}-{}", created.format("%Y%m%d%H%M"));
        let rp = RecoveryPoint::new(
            &resource,
            &PolicyName::parse("gold").unwrap(),
            Slot::containing(created, std::time::Duration::from_mins(1)),
            &us_east_1(),
            &name,
            status,
            created,
        );
        lifeboat_ports::Catalog::insert(self.fakes.catalog.as_ref(), &rp)
            .await
            .unwrap();
        self.rds.add_snapshot(&us_east_1(), &name);
        // The source database, as RDS has it (placed in a private subnet group).
        if self.rds.settings_of(&us_east_1(), db).is_none() {
            self.rds.add_instance(&us_east_1(), db);
        }
        rp
    }

    /// An available Aurora cluster snapshot of `cluster` recorded as taken at `at`, whose
    /// writer class was `writer_class` then; the cluster itself stays as the test sets it.
    pub async fn add_cluster_point(&self, cluster: &str, at: &str, writer_class: Option<&str>) -> RecoveryPoint {
        let resource = self.fakes.add_db(ResourceKind::AuroraCluster, cluster, "gold");
        let created = t(at);
        let name = format!("lb-{cluster}-{}", created.format("%Y%m%d%H%M"));
        let rp = RecoveryPoint::new(
            &resource,
            &PolicyName::parse("gold").unwrap(),
            Slot::containing(created, std::time::Duration::from_mins(1)),
            &us_east_1(),
            &name,
            Status::Available,
            created,
        )
        .with_writer_class(writer_class.map(str::to_owned));
        lifeboat_ports::Catalog::insert(self.fakes.catalog.as_ref(), &rp)
            .await
            .unwrap();
        self.rds.add_snapshot(&us_east_1(), &name);
        rp
    }

    pub async fn call(&self, who: Option<&str>, method: &str, path: &str, body: Option<&str>) -> Reply {
        self.call_q(who, method, path, &[], body).await
    }

    pub async fn call_q(
        &self,
        who: Option<&str>,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&str>,
    ) -> Reply {
        let event = rest_event(who, method, path, query, body);
        self.send(&event).await
    }

    pub async fn send(&self, event: &Value) -> Reply {
        let req = lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway event");
        let resp = admin_api::handle(&self.deps, req).await;
        Reply::from(resp)
    }
}

static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// An API Gateway REST (v1) proxy event with AWS_IAM identity `who`.
pub fn rest_event(who: Option<&str>, method: &str, path: &str, query: &[(&str, &str)], body: Option<&str>) -> Value {
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let q: serde_json::Map<String, Value> = query.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect();
    let mq: serde_json::Map<String, Value> = query.iter().map(|(k, v)| ((*k).to_owned(), json!([v]))).collect();
    json!({
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": {"content-type": "application/json"},
        "multiValueHeaders": {},
        "queryStringParameters": if q.is_empty() { Value::Null } else { Value::Object(q) },
        "multiValueQueryStringParameters": if mq.is_empty() { Value::Null } else { Value::Object(mq) },
        "pathParameters": null,
        "stageVariables": null,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "resourcePath": path,
            "httpMethod": method,
            "stage": "prod",
            "requestId": format!("req-{n:06}-{}", uuid::Uuid::new_v4()),
            "identity": match who {
                Some(arn) => json!({"userArn": arn, "caller": "AIDAEXAMPLE", "accountId": "123456789012", "sourceIp": "203.0.113.1"}),
                None => json!({"sourceIp": "203.0.113.1"}),
            }
        },
        "body": body,
        "isBase64Encoded": false
    })
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl From<lambda_http::Response<lambda_http::Body>> for Reply {
    fn from(r: lambda_http::Response<lambda_http::Body>) -> Self {
        let headers = r
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect::<Vec<_>>();
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = serde_json::from_slice(r.body().as_ref()).unwrap_or(Value::Null);
        Self {
            status: r.status().as_u16(),
            content_type,
            headers,
            body,
        }
    }
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn is_problem(&self) -> bool {
        self.content_type == "application/problem+json"
            && self.body["title"].is_string()
            && self.body["status"].as_u64() == Some(u64::from(self.status))
    }
}

pub fn port_err() -> PortError {
    PortError::Unavailable("dynamodb said no at table lifeboat-catalog-secret".into())
}
