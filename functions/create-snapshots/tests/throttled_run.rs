//! Whole `create-snapshots` runs over Lifeboat's real AWS adapters (`RdsSnapshotStore`,
//! `DynamoDbCatalog`, `SnsNotifier`), with every SDK call answered by an `aws-smithy-mocks`
//! rule: no network. The local stack (moto) cannot inject throttling or 5xx, so this is
//! where a run is shown to get through them: retried with backoff, the run completes, and
//! no record is lost or made twice.
//!
//! RDS and the catalog table are small stateful mocks shared by the clients of one test:
//! RDS counts the snapshot requests it accepted per snapshot identifier, and the table
//! stores what `PutItem` and `BatchWriteItem` write, refuses an `attribute_not_exists(pk)`
//! write whose key exists (`ConditionalCheckFailedException`, as DynamoDB does), and
//! answers `Query` and `BatchGetItem` from what it holds.
//!
//! Clients use Lifeboat's retry policy (`lifeboat_aws::retry_config()`) and each has a
//! retry partition of its own. Tests run with tokio's clock paused, so backoffs take no
//! wall-clock time. A request no rule matches panics (the mocks' default), so an
//! unexpected call (a describe, an alert) fails the test.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemOutput;
use aws_sdk_dynamodb::operation::batch_write_item::{BatchWriteItemInput, BatchWriteItemOutput};
use aws_sdk_dynamodb::operation::put_item::{PutItemInput, PutItemOutput};
use aws_sdk_dynamodb::operation::query::{QueryInput, QueryOutput};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_rds::operation::create_db_cluster_snapshot::{CreateDbClusterSnapshotInput, CreateDbClusterSnapshotOutput};
use aws_sdk_rds::operation::create_db_snapshot::{CreateDbSnapshotInput, CreateDbSnapshotOutput};
use aws_sdk_rds::operation::describe_db_clusters::DescribeDbClustersOutput;
use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
use aws_sdk_rds::types::{DbCluster, DbClusterSnapshot, DbInstance, DbSnapshot, Tag as RdsTag};
use aws_smithy_mocks::{MockResponse, Rule, RuleMode, mock, mock_client};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use chrono::{DateTime, Utc};
use create_snapshots::{Deps, FUNCTION, Report, handle};
use lifeboat::app::Ports;
use lifeboat::{ErrorType, FunctionError};
use lifeboat_aws::{DynamoDbCatalog, MAX_ATTEMPTS, RdsSnapshotStore, SnsNotifier, retry_config};
use lifeboat_domain::naming::tags;
use lifeboat_domain::{RecoveryPointId, Region, ResourceKind, Status};
use lifeboat_ports::Catalog;
use lifeboat_testkit::{Fakes, ManualClock, event_for, sample};

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

/// `Fakes::config()`'s catalog table and alerts topic.
const TABLE: &str = "catalog";
const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:alerts";
const ACCOUNT: &str = "123456789012";
const GOLD: &str = r#"{"name":"gold","every":"1h","rpo":"2h","retain":24}"#;

/// The protected databases: two standalone instances and one Aurora cluster, all tagged
/// `lifeboat:policy=gold`.
const INSTANCES: [&str; 2] = ["orders", "billing"];
const CLUSTER: &str = "ledger";

fn now() -> DateTime<Utc> {
    "2026-11-23T18:15:02Z".parse().unwrap()
}

/// The snapshot each resource gets in the tick's slot.
fn snapshot_of(resource: &str) -> String {
    format!("lb-gold-{resource}-20261123-1800")
}

fn point_of(resource: &str) -> RecoveryPointId {
    let kind = if resource == CLUSTER {
        ResourceKind::AuroraCluster
    } else {
        ResourceKind::RdsInstance
    };
    RecoveryPointId::new(&Region::parse("us-east-1").unwrap(), kind, &snapshot_of(resource))
}

fn rp_key(resource: &str) -> Key {
    (format!("RP#{}", point_of(resource)), "RP".to_owned())
}

fn all_resources() -> [&'static str; 3] {
    [INSTANCES[0], INSTANCES[1], CLUSTER]
}

// ---------------------------------------------------------------------------------------
// Mocked clients
// ---------------------------------------------------------------------------------------

/// A retry partition of its own for each client: the SDK's retry token bucket is global
/// per partition, and tests running in parallel must not drain each other's.
fn own_partition() -> aws_sdk_rds::config::retry::RetryPartition {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    aws_sdk_rds::config::retry::RetryPartition::new(format!(
        "lifeboat-throttled-run-{}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// `mock_client!` configured like production (Lifeboat's retry policy, the SDK's tokio
/// sleep), with a private retry partition. `MatchAny`: the handler runs resources
/// concurrently, so the order of requests varies; scripted rules come first and the
/// healthy ones take over once they are exhausted.
macro_rules! client {
    ($sdk:ident, $rules:expr) => {{
        let partition = own_partition();
        mock_client!($sdk, RuleMode::MatchAny, $rules, move |c: $sdk::config::Builder| {
            c.retry_config(retry_config()).retry_partition(partition.clone())
        })
    }};
}

fn http(status: u16, body: String) -> HttpResponse {
    HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::from(body))
}

/// Throttling exactly as RDS (awsQuery protocol) sends it on the wire.
fn rds_throttled() -> HttpResponse {
    http(
        400,
        "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>\
         <Message>Rate exceeded</Message></Error><RequestId>x</RequestId></ErrorResponse>"
            .to_owned(),
    )
}

/// An error exactly as DynamoDB (awsJson 1.0 protocol) sends it on the wire.
fn ddb_wire_error(status: u16, code: &str, message: &str) -> HttpResponse {
    http(
        status,
        format!(r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{code}","message":"{message}"}}"#),
    )
}

fn ddb_internal_error() -> HttpResponse {
    ddb_wire_error(500, "InternalServerError", "Internal server error")
}

fn ddb_throughput_exceeded() -> HttpResponse {
    ddb_wire_error(
        400,
        "ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded.",
    )
}

/// The request a scripted rule matched. aws-smithy-mocks gives the later responses of a
/// sequence (the ones the SDK's retries get) no request, so the rule's matcher keeps it
/// here and the final, successful response acts on it.
type Kept<I> = Arc<Mutex<Option<I>>>;

fn keep<I>(
    kept: &Kept<I>,
    wanted: impl Fn(&I) -> bool + Send + Sync + 'static,
) -> impl Fn(&I) -> bool + Send + Sync + 'static
where
    I: Clone + Send + 'static,
{
    let kept = kept.clone();
    move |r| {
        let matched = wanted(r);
        if matched {
            *kept.lock().unwrap() = Some(r.clone());
        }
        matched
    }
}

fn kept<I: Clone>(kept: &Kept<I>) -> I {
    kept.lock()
        .unwrap()
        .clone()
        .expect("the scripted rule's matcher kept its request")
}

// ---------------------------------------------------------------------------------------
// RDS
// ---------------------------------------------------------------------------------------

/// RDS in us-east-1: the tagged databases, and how many times it accepted a request to
/// create each snapshot (by snapshot identifier).
#[derive(Clone, Default)]
struct MockRds {
    accepted: Arc<Mutex<BTreeMap<String, usize>>>,
}

fn policy_tag() -> RdsTag {
    RdsTag::builder().key(tags::POLICY).value("gold").build()
}

impl MockRds {
    fn accepted(&self) -> BTreeMap<String, usize> {
        self.accepted.lock().unwrap().clone()
    }

    fn accept(&self, name: &str) {
        *self.accepted.lock().unwrap().entry(name.to_owned()).or_default() += 1;
    }

    fn instance_snapshot_accepted(&self, r: &CreateDbSnapshotInput) -> CreateDbSnapshotOutput {
        let name = r.db_snapshot_identifier().unwrap();
        self.accept(name);
        CreateDbSnapshotOutput::builder()
            .db_snapshot(
                DbSnapshot::builder()
                    .db_snapshot_identifier(name)
                    .db_snapshot_arn(format!("arn:aws:rds:us-east-1:{ACCOUNT}:snapshot:{name}"))
                    .db_instance_identifier(r.db_instance_identifier().unwrap())
                    .status("creating")
                    .set_tag_list(Some(r.tags().to_vec()))
                    .build(),
            )
            .build()
    }

    fn cluster_snapshot_accepted(&self, r: &CreateDbClusterSnapshotInput) -> CreateDbClusterSnapshotOutput {
        let name = r.db_cluster_snapshot_identifier().unwrap();
        self.accept(name);
        CreateDbClusterSnapshotOutput::builder()
            .db_cluster_snapshot(
                DbClusterSnapshot::builder()
                    .db_cluster_snapshot_identifier(name)
                    .db_cluster_snapshot_arn(format!("arn:aws:rds:us-east-1:{ACCOUNT}:cluster-snapshot:{name}"))
                    .db_cluster_identifier(r.db_cluster_identifier().unwrap())
                    .status("creating")
                    .set_tag_list(Some(r.tags().to_vec()))
                    .build(),
            )
            .build()
    }

    /// `DescribeDBInstances` and `DescribeDBClusters`: the three tagged databases.
    fn discovery() -> [Rule; 2] {
        let instances = mock!(aws_sdk_rds::Client::describe_db_instances).then_output(|| {
            let mut out = DescribeDbInstancesOutput::builder();
            for id in INSTANCES {
                out = out.db_instances(
                    DbInstance::builder()
                        .db_instance_identifier(id)
                        .db_instance_arn(format!("arn:aws:rds:us-east-1:{ACCOUNT}:db:{id}"))
                        .tag_list(policy_tag())
                        .build(),
                );
            }
            out.build()
        });
        let clusters = mock!(aws_sdk_rds::Client::describe_db_clusters).then_output(|| {
            DescribeDbClustersOutput::builder()
                .db_clusters(
                    DbCluster::builder()
                        .db_cluster_identifier(CLUSTER)
                        .db_cluster_arn(format!("arn:aws:rds:us-east-1:{ACCOUNT}:cluster:{CLUSTER}"))
                        .tag_list(policy_tag())
                        .build(),
                )
                .build()
        });
        [instances, clusters]
    }

    /// `CreateDBSnapshot` and `CreateDBClusterSnapshot`, accepted at once.
    fn creates(&self) -> [Rule; 2] {
        let instance = {
            let rds = self.clone();
            mock!(aws_sdk_rds::Client::create_db_snapshot)
                .then_compute_output(move |r| rds.instance_snapshot_accepted(r))
        };
        let cluster = {
            let rds = self.clone();
            mock!(aws_sdk_rds::Client::create_db_cluster_snapshot)
                .then_compute_output(move |r| rds.cluster_snapshot_accepted(r))
        };
        [instance, cluster]
    }
}

fn creates_snapshot_of(instance: &'static str) -> impl Fn(&CreateDbSnapshotInput) -> bool + Send + Sync + 'static {
    move |r| r.db_instance_identifier() == Some(instance)
}

// ---------------------------------------------------------------------------------------
// DynamoDB
// ---------------------------------------------------------------------------------------

type Item = HashMap<String, AttributeValue>;
/// An item's primary key: (`pk`, `sk`).
type Key = (String, String);

fn text<'a>(item: &'a Item, attr: &str) -> &'a str {
    item.get(attr).and_then(|v| v.as_s().ok()).map_or("", String::as_str)
}

fn key_of(item: &Item) -> Key {
    (text(item, "pk").to_owned(), text(item, "sk").to_owned())
}

#[derive(Default)]
struct TableState {
    items: HashMap<Key, Item>,
    /// The key of every write the table applied, in order.
    writes: Vec<Key>,
    /// Keys of `attribute_not_exists(pk)` writes refused because the item existed.
    refused: Vec<Key>,
}

/// The catalog table, shared by every DynamoDB client of a test.
#[derive(Clone, Default)]
struct MockTable(Arc<Mutex<TableState>>);

impl MockTable {
    fn with_policy(name: &str, document: &str) -> Self {
        let table = Self::default();
        table.put(HashMap::from([
            ("pk".to_owned(), AttributeValue::S("POLICY".into())),
            ("sk".to_owned(), AttributeValue::S(name.into())),
            ("document".to_owned(), AttributeValue::S(document.into())),
        ]));
        table.0.lock().unwrap().writes.clear();
        table
    }

    fn put(&self, item: Item) {
        let mut state = self.0.lock().unwrap();
        state.writes.push(key_of(&item));
        state.items.insert(key_of(&item), item);
    }

    /// A write under `attribute_not_exists(pk)`: refused (and false) if the key exists.
    fn insert_new(&self, item: Item) -> bool {
        let key = key_of(&item);
        if self.0.lock().unwrap().items.contains_key(&key) {
            self.0.lock().unwrap().refused.push(key);
            return false;
        }
        self.put(item);
        true
    }

    fn write_batch(&self, r: &BatchWriteItemInput) -> BatchWriteItemOutput {
        for w in &r.request_items().unwrap()[TABLE] {
            self.put(w.put_request().expect("run records are only put").item.clone());
        }
        BatchWriteItemOutput::builder().build()
    }

    fn policies(&self) -> QueryOutput {
        let items: Vec<Item> = self
            .0
            .lock()
            .unwrap()
            .items
            .values()
            .filter(|i| text(i, "pk") == "POLICY")
            .cloned()
            .collect();
        QueryOutput::builder()
            .count(i32::try_from(items.len()).unwrap())
            .set_items(Some(items))
            .build()
    }

    fn keys(&self, pk_prefix: &str) -> HashSet<Key> {
        self.0
            .lock()
            .unwrap()
            .items
            .keys()
            .filter(|k| k.0.starts_with(pk_prefix))
            .cloned()
            .collect()
    }

    fn writes(&self, pk_prefix: &str) -> Vec<Key> {
        let state = self.0.lock().unwrap();
        state
            .writes
            .iter()
            .filter(|k| k.0.starts_with(pk_prefix))
            .cloned()
            .collect()
    }

    fn refused(&self) -> Vec<Key> {
        self.0.lock().unwrap().refused.clone()
    }

    /// The `Query` that loads the policies.
    fn is_policy_query(r: &QueryInput) -> bool {
        r.table_name() == Some(TABLE)
            && r.key_condition_expression() == Some("pk = :pk")
            && r.expression_attribute_values()
                .and_then(|v| v.get(":pk"))
                .is_some_and(|v| v.as_s().is_ok_and(|s| s == "POLICY"))
    }

    /// The `PutItem` that records a new recovery point.
    fn is_insert(r: &PutItemInput) -> bool {
        r.table_name() == Some(TABLE)
            && r.condition_expression() == Some("attribute_not_exists(pk)")
            && r.item().is_some_and(|i| text(i, "pk").starts_with("RP#"))
    }

    /// `Query`, `BatchGetItem`, `PutItem` (insert) and `BatchWriteItem`, answered from and
    /// applied to the table without failure.
    fn healthy(&self) -> [Rule; 4] {
        let query = {
            let table = self.clone();
            mock!(aws_sdk_dynamodb::Client::query)
                .match_requests(Self::is_policy_query)
                .then_output(move || table.policies())
        };
        let get = {
            let table = self.clone();
            mock!(aws_sdk_dynamodb::Client::batch_get_item).then_compute_output(move |r| {
                let request = &r.request_items().unwrap()[TABLE];
                assert_eq!(request.consistent_read(), Some(true));
                let state = table.0.lock().unwrap();
                let found: Vec<Item> = request
                    .keys()
                    .iter()
                    .filter_map(|k| state.items.get(&key_of(k)).cloned())
                    .collect();
                BatchGetItemOutput::builder().responses(TABLE, found).build()
            })
        };
        let insert = {
            let table = self.clone();
            mock!(aws_sdk_dynamodb::Client::put_item)
                .match_requests(Self::is_insert)
                .then_compute_response(move |r| {
                    if table.insert_new(r.item().unwrap().clone()) {
                        MockResponse::Output(PutItemOutput::builder().build())
                    } else {
                        MockResponse::Http(ddb_wire_error(
                            400,
                            "ConditionalCheckFailedException",
                            "The conditional request failed",
                        ))
                    }
                })
        };
        let write = {
            let table = self.clone();
            mock!(aws_sdk_dynamodb::Client::batch_write_item).then_compute_output(move |r| table.write_batch(r))
        };
        [query, get, insert, write]
    }
}

// ---------------------------------------------------------------------------------------
// Wiring
// ---------------------------------------------------------------------------------------

/// The production adapters over mocked clients: `rds` and `ddb` hold the scripted rules
/// first, then the healthy ones. SNS has no rule: no alert is expected.
fn deps(rds: &[&Rule], ddb: &[&Rule]) -> Deps {
    let nothing: [&Rule; 0] = [];
    let region = Region::parse("us-east-1").unwrap();
    Deps {
        ports: Ports {
            snapshots: Arc::new(RdsSnapshotStore::with_clients(HashMap::from([(
                region,
                client!(aws_sdk_rds, rds),
            )]))),
            catalog: Arc::new(DynamoDbCatalog::new(client!(aws_sdk_dynamodb, ddb), TABLE)),
            notifier: Arc::new(SnsNotifier::new(client!(aws_sdk_sns, nothing), TOPIC)),
            clock: Arc::new(ManualClock::new(now())),
            backup: Arc::new(lifeboat_testkit::InMemoryBackupService::new()),
            alert_window: None,
        },
        config: Fakes::config(),
        runs: create_snapshots::DataRuns::default(),
    }
}

/// Reads the recorded recovery points back through the real adapter, so they are shown
/// to decode, and checks each is the pending snapshot of its resource.
async fn assert_recorded(table: &MockTable, resources: &[&str]) {
    let healthy = table.healthy();
    let catalog = DynamoDbCatalog::new(client!(aws_sdk_dynamodb, healthy.iter()), TABLE);
    let ids: Vec<_> = resources.iter().map(|r| point_of(r)).collect();
    let mut points = catalog.get_many(&ids).await.unwrap();
    points.sort_by(|a, b| a.id.cmp(&b.id));
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(points.iter().map(|p| p.id.clone()).collect::<Vec<_>>(), expected);
    for p in &points {
        assert_eq!(p.status, Status::Pending, "{}", p.id);
        assert_eq!(p.version, 1);
        assert!(!p.adopted);
        assert_eq!(p.snapshot_name, snapshot_of(&p.resource.id));
        assert!(
            p.snapshot_arn
                .as_deref()
                .is_some_and(|arn| arn.ends_with(&format!(":{}", p.snapshot_name))),
            "{p:?}"
        );
    }
}

fn created(report: &Report) -> Vec<String> {
    report.created.iter().map(ToString::to_string).collect()
}

fn sorted_ids(resources: &[&str]) -> Vec<String> {
    let mut ids: Vec<String> = resources.iter().map(|r| point_of(r).to_string()).collect();
    ids.sort();
    ids
}

/// The run record's items: the run (`RUN#create-snapshots`) and its actions.
fn run_record_keys(run_id: &str, actions: usize) -> HashSet<Key> {
    let mut keys = HashSet::from([(
        format!("RUN#{FUNCTION}"),
        format!("{}#{run_id}", now().format("%Y-%m-%dT%H:%M:%S%.3fZ")),
    )]);
    keys.extend((0..actions).map(|i| (format!("RUN#{run_id}"), format!("ACTION#{i:05}"))));
    keys
}

fn assert_written_once(writes: &[Key]) {
    let distinct: HashSet<_> = writes.iter().collect();
    assert_eq!(distinct.len(), writes.len(), "an item was written twice: {writes:?}");
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

/// Uses aws-smithy-mocks (no network), because moto cannot inject throttling or 5xx.
/// One run over the real adapters meets, in turn: a 500 on the `Query` for policies; on
/// the first `CreateDBSnapshot` of `orders`, RDS `Throttling` (HTTP 400, awsQuery body)
/// then a 503; `ProvisionedThroughputExceededException` twice on the `PutItem` recording
/// `ledger`; a 500 on the `BatchWriteItem` of the run record. Each is retried by the SDK
/// with Lifeboat's backoff. The run completes with the three snapshots created, RDS
/// accepted exactly one create per snapshot, the table holds exactly the three recovery
/// points, and every item (recovery points and run record) was written once.
#[tokio::test(start_paused = true)]
async fn a_run_completes_through_throttling_and_5xx_with_one_record_per_resource() {
    let rds = MockRds::default();
    let table = MockTable::with_policy("gold", GOLD);

    let orders_kept: Kept<CreateDbSnapshotInput> = Arc::default();
    let create_orders = {
        let rds = rds.clone();
        let kept_request = orders_kept.clone();
        mock!(aws_sdk_rds::Client::create_db_snapshot)
            .match_requests(keep(&orders_kept, creates_snapshot_of("orders")))
            .sequence()
            .http_response(rds_throttled)
            .http_status(503, None)
            .output(move || rds.instance_snapshot_accepted(&kept(&kept_request)))
            .build()
    };
    let [describe_instances, describe_clusters] = MockRds::discovery();
    let [create_instance, create_cluster] = rds.creates();

    let query_policies = {
        let table = table.clone();
        mock!(aws_sdk_dynamodb::Client::query)
            .match_requests(MockTable::is_policy_query)
            .sequence()
            .http_response(ddb_internal_error)
            .output(move || table.policies())
            .build()
    };
    let ledger_kept: Kept<PutItemInput> = Arc::default();
    let insert_ledger = {
        let table = table.clone();
        let kept_request = ledger_kept.clone();
        let ledger_pk = rp_key(CLUSTER).0;
        mock!(aws_sdk_dynamodb::Client::put_item)
            .match_requests(keep(&ledger_kept, move |r| {
                MockTable::is_insert(r) && r.item().is_some_and(|i| text(i, "pk") == ledger_pk)
            }))
            .sequence()
            .http_response(ddb_throughput_exceeded)
            .times(2)
            .output(move || {
                // A sequence's output cannot be a conditional failure: a refusal shows in
                // `refused`, asserted empty below.
                table.insert_new(kept(&kept_request).item.unwrap());
                PutItemOutput::builder().build()
            })
            .build()
    };
    let record_kept: Kept<BatchWriteItemInput> = Arc::default();
    let record_run = {
        let table = table.clone();
        let kept_request = record_kept.clone();
        mock!(aws_sdk_dynamodb::Client::batch_write_item)
            .match_requests(keep(&record_kept, |_| true))
            .sequence()
            .http_response(ddb_internal_error)
            .output(move || table.write_batch(&kept(&kept_request)))
            .build()
    };
    let [query, get, insert, write] = table.healthy();

    let deps = deps(
        &[
            &create_orders,
            &describe_instances,
            &describe_clusters,
            &create_instance,
            &create_cluster,
        ],
        &[
            &query_policies,
            &insert_ledger,
            &record_run,
            &query,
            &get,
            &insert,
            &write,
        ],
    );

    let report = handle(
        &deps,
        event_for(sample("create-snapshots", "scheduler-tick.json"), "run-1"),
    )
    .await
    .unwrap();

    assert_eq!(created(&report), sorted_ids(&all_resources()));
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert!(report.adopted.is_empty() && report.skipped.is_empty());
    assert_eq!(report.already_recorded, 0);

    // Every scripted failure was met and retried through to its success.
    assert_eq!(create_orders.num_calls(), 3, "throttled, 503, accepted");
    assert_eq!(query_policies.num_calls(), 2, "500, answered");
    assert_eq!(insert_ledger.num_calls(), 3, "throughput exceeded twice, written");
    assert_eq!(record_run.num_calls(), 2, "500, written");
    assert_eq!(query.num_calls(), 0);
    assert_eq!(write.num_calls(), 0);

    // RDS accepted one create per snapshot: no retry or replay created a second one.
    let one_each: BTreeMap<String, usize> = all_resources().iter().map(|r| (snapshot_of(r), 1)).collect();
    assert_eq!(rds.accepted(), one_each);
    assert_eq!((create_instance.num_calls(), create_cluster.num_calls()), (1, 1));

    // Exactly one recovery point per resource, each written once; nothing refused.
    let points: HashSet<Key> = all_resources().iter().map(|r| rp_key(r)).collect();
    assert_eq!(table.keys("RP#"), points);
    assert_eq!(table.writes("RP#").len(), 3);
    assert_written_once(&table.writes("RP#"));
    assert!(table.refused().is_empty(), "{:?}", table.refused());
    assert_recorded(&table, &all_resources()).await;

    // The run record (the run and its three actions), each item written once.
    assert_eq!(table.keys("RUN#"), run_record_keys("run-1", 3));
    assert_eq!(table.writes("RUN#").len(), 4);
    assert_written_once(&table.writes("RUN#"));
}

/// Uses aws-smithy-mocks (no network), because moto cannot inject throttling.
/// First run: RDS throttles every `CreateDBSnapshot` of `billing`. The SDK gives up after
/// `MAX_ATTEMPTS`, and the run records the other two and fails `Retryable`, as the state
/// machine's retry expects. Second run (the retry), healthy: the catalog's `BatchGetItem`
/// finds the two recorded points, so only `billing` is created. In the end RDS accepted
/// one create per snapshot and the table holds exactly the three recovery points, none
/// written twice.
#[tokio::test(start_paused = true)]
async fn a_rerun_after_persistent_throttling_records_what_is_missing_and_nothing_twice() {
    let rds = MockRds::default();
    let table = MockTable::with_policy("gold", GOLD);

    // First run: billing is throttled on every attempt.
    let throttled_billing = mock!(aws_sdk_rds::Client::create_db_snapshot)
        .match_requests(creates_snapshot_of("billing"))
        .sequence()
        .http_response(rds_throttled)
        .repeatedly()
        .build();
    let [describe_instances, describe_clusters] = MockRds::discovery();
    let [create_instance, create_cluster] = rds.creates();
    let [query, get, insert, write] = table.healthy();
    let first = deps(
        &[
            &throttled_billing,
            &describe_instances,
            &describe_clusters,
            &create_instance,
            &create_cluster,
        ],
        &[&query, &get, &insert, &write],
    );

    let err: FunctionError = handle(
        &first,
        event_for(sample("create-snapshots", "scheduler-tick.json"), "run-1"),
    )
    .await
    .unwrap_err();

    assert_eq!(err.kind, ErrorType::Retryable, "{err}");
    assert_eq!(throttled_billing.num_calls(), MAX_ATTEMPTS as usize);
    let recorded = ["orders", CLUSTER];
    assert_eq!(
        rds.accepted(),
        recorded.iter().map(|r| (snapshot_of(r), 1)).collect::<BTreeMap<_, _>>()
    );
    assert_eq!(table.keys("RP#"), recorded.iter().map(|r| rp_key(r)).collect());
    // The failed run still leaves its record: two created, one failed.
    assert_eq!(table.keys("RUN#"), run_record_keys("run-1", 3));

    // Second run, healthy.
    let [describe_instances, describe_clusters] = MockRds::discovery();
    let [create_instance, create_cluster] = rds.creates();
    let [query, get, insert, write] = table.healthy();
    let second = deps(
        &[
            &describe_instances,
            &describe_clusters,
            &create_instance,
            &create_cluster,
        ],
        &[&query, &get, &insert, &write],
    );

    let report = handle(
        &second,
        event_for(sample("create-snapshots", "scheduler-tick.json"), "run-2"),
    )
    .await
    .unwrap();

    assert_eq!(created(&report), sorted_ids(&["billing"]));
    assert_eq!(report.already_recorded, 2);
    assert!(report.failed.is_empty() && report.adopted.is_empty(), "{report:?}");
    assert_eq!(get.num_calls(), 1);
    assert_eq!((create_instance.num_calls(), create_cluster.num_calls()), (1, 0));
    assert_eq!(insert.num_calls(), 1);

    let one_each: BTreeMap<String, usize> = all_resources().iter().map(|r| (snapshot_of(r), 1)).collect();
    assert_eq!(rds.accepted(), one_each);
    let points: HashSet<Key> = all_resources().iter().map(|r| rp_key(r)).collect();
    assert_eq!(table.keys("RP#"), points);
    assert_eq!(table.writes("RP#").len(), 3);
    assert_written_once(&table.writes("RP#"));
    assert!(table.refused().is_empty(), "{:?}", table.refused());
    assert_recorded(&table, &all_resources()).await;
    // Both runs left their record (run-2: one action, billing created), each item once.
    let mut runs = run_record_keys("run-1", 3);
    runs.extend(run_record_keys("run-2", 1));
    assert_eq!(table.keys("RUN#"), runs);
    assert_eq!(table.writes("RUN#").len(), 6);
    assert_written_once(&table.writes("RUN#"));
}
