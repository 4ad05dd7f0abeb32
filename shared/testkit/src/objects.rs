//! An in-memory S3 with versioning, Object Lock, legal holds, conditional reads and
//! copies, stored SHA-256 checksums and scripted failures; every call counted.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use lifeboat_domain::manifest::ListedObject;
use lifeboat_domain::tiering::LifecycleRule;
use lifeboat_ports::objects::{
    CopyRequest, ObjectBody, ObjectHead, ObjectLock, ObjectPage, ObjectStore, PrefixPage, RestoreTier, WriteOptions,
    Written,
};
use lifeboat_ports::{PortError, PortResult};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectOp {
    List,
    Head,
    Get,
    Put,
    Copy,
    Delete,
    LegalHold,
    Restore,
}

#[derive(Debug, Clone)]
struct Version {
    id: String,
    data: Arc<Vec<u8>>,
    etag: String,
    storage_class: String,
    checksum_sha256: Option<String>,
    lock: Option<ObjectLock>,
    legal_hold: bool,
    delete_marker: bool,
    metadata: Vec<(String, String)>,
    modified: DateTime<Utc>,
    /// An archived version's restore: `Some(true)` under way, `Some(false)` readable.
    restore: Option<bool>,
}

#[derive(Debug, Default)]
struct Bucket {
    versioned: bool,
    objects: BTreeMap<String, Vec<Version>>,
    lifecycle: Vec<LifecycleRule>,
}

#[derive(Debug)]
pub struct InMemoryObjectStore {
    buckets: Mutex<HashMap<String, Bucket>>,
    failures: Mutex<VecDeque<(ObjectOp, PortError)>>,
    /// `(op, calls of op still to let through, error)`.
    later: Mutex<Vec<(ObjectOp, usize, PortError)>>,
    calls: Mutex<HashMap<ObjectOp, usize>>,
    next_version: AtomicU64,
    /// Copies above this size count as multipart (parts of this size).
    pub multipart_threshold: u64,
    now: Mutex<DateTime<Utc>>,
}

impl Default for InMemoryObjectStore {
    fn default() -> Self {
        Self {
            buckets: Mutex::default(),
            failures: Mutex::default(),
            later: Mutex::default(),
            calls: Mutex::default(),
            next_version: AtomicU64::new(1),
            multipart_threshold: 5 * 1024 * 1024 * 1024,
            now: Mutex::new(DateTime::<Utc>::UNIX_EPOCH),
        }
    }
}

fn etag_of(data: &[u8]) -> String {
    lifeboat_domain::manifest::sha256_hex(data)[..32].to_owned()
}

impl InMemoryObjectStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Copies above `bytes` are multipart (counted in parts of `bytes`).
    #[must_use]
    pub fn with_multipart_threshold(mut self, bytes: u64) -> Self {
        self.multipart_threshold = bytes;
        self
    }

    /// How many versions (delete markers included) a key has.
    pub fn versions(&self, bucket: &str, key: &str) -> usize {
        lock(&self.buckets)
            .get(bucket)
            .and_then(|b| b.objects.get(key))
            .map_or(0, Vec::len)
    }

    /// Every key (current or not) under a prefix.
    pub fn all_keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        lock(&self.buckets).get(bucket).map_or_else(Vec::new, |b| {
            b.objects.keys().filter(|k| k.starts_with(prefix)).cloned().collect()
        })
    }

    /// The time locks are judged against.
    pub fn set_now(&self, now: DateTime<Utc>) {
        *lock(&self.now) = now;
    }

    pub fn create_bucket(&self, name: &str, versioned: bool) {
        lock(&self.buckets).insert(
            name.to_owned(),
            Bucket {
                versioned,
                ..Bucket::default()
            },
        );
    }

    /// Writes an object directly (a user, or someone behind Lifeboat's back).
    pub fn insert(&self, bucket: &str, key: &str, data: &[u8]) -> String {
        self.write(bucket, key, Arc::new(data.to_vec()), &WriteOptions::default(), false)
            .unwrap_or_default()
            .version_id
            .unwrap_or_default()
    }

    /// Removes an object (all versions) directly.
    pub fn remove(&self, bucket: &str, key: &str) {
        if let Some(b) = lock(&self.buckets).get_mut(bucket) {
            b.objects.remove(key);
        }
    }

    /// The current bytes of an object.
    pub fn bytes(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let buckets = lock(&self.buckets);
        let v = buckets.get(bucket)?.objects.get(key)?.last()?;
        (!v.delete_marker).then(|| v.data.as_ref().clone())
    }

    /// Current keys of a bucket.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let buckets = lock(&self.buckets);
        buckets.get(bucket).map_or_else(Vec::new, |b| {
            b.objects
                .iter()
                .filter(|(_, vs)| vs.last().is_some_and(|v| !v.delete_marker))
                .map(|(k, _)| k.clone())
                .collect()
        })
    }

    /// Flips one byte of the current version's stored bytes in place: bit rot, which
    /// keeps the version id, ETag and storage class.
    pub fn rot(&self, bucket: &str, key: &str, at: usize) {
        if let Some(v) = lock(&self.buckets)
            .get_mut(bucket)
            .and_then(|b| b.objects.get_mut(key))
            .and_then(|vs| vs.last_mut())
        {
            let mut data = v.data.as_ref().clone();
            if let Some(b) = data.get_mut(at) {
                *b ^= 0x40;
            }
            v.data = Arc::new(data);
        }
    }

    /// Cuts the current version's stored bytes to `len` in place (a storage-layer fault
    /// that keeps the version id, ETag and recorded size).
    pub fn truncate(&self, bucket: &str, key: &str, len: usize) {
        if let Some(v) = lock(&self.buckets)
            .get_mut(bucket)
            .and_then(|b| b.objects.get_mut(key))
            .and_then(|vs| vs.last_mut())
        {
            let mut data = v.data.as_ref().clone();
            data.truncate(len);
            v.data = Arc::new(data);
        }
    }

    /// Finishes every archive restore under way (S3 takes minutes to hours).
    pub fn complete_restores(&self) {
        for b in lock(&self.buckets).values_mut() {
            for v in b.objects.values_mut().flatten() {
                if v.restore == Some(true) {
                    v.restore = Some(false);
                }
            }
        }
    }

    /// The bucket's lifecycle rules.
    pub fn lifecycle_rules(&self, bucket: &str) -> Vec<LifecycleRule> {
        lock(&self.buckets)
            .get(bucket)
            .map(|b| b.lifecycle.clone())
            .unwrap_or_default()
    }

    /// Adds a lifecycle rule someone else manages.
    pub fn add_lifecycle_rule(&self, bucket: &str, rule: LifecycleRule) {
        if let Some(b) = lock(&self.buckets).get_mut(bucket) {
            b.lifecycle.push(rule);
        }
    }

    pub fn fail_next(&self, op: ObjectOp, error: PortError) {
        lock(&self.failures).push_back((op, error));
    }

    /// Fails the call of `op` that comes after `skip` more successful ones.
    pub fn fail_after(&self, op: ObjectOp, skip: usize, error: PortError) {
        lock(&self.later).push((op, skip, error));
    }

    pub fn calls(&self, op: ObjectOp) -> usize {
        lock(&self.calls).get(&op).copied().unwrap_or(0)
    }

    pub fn total_calls(&self) -> usize {
        lock(&self.calls).values().sum()
    }

    fn enter(&self, op: ObjectOp) -> PortResult<()> {
        *lock(&self.calls).entry(op).or_insert(0) += 1;
        {
            let mut later = lock(&self.later);
            if let Some(i) = later.iter().position(|(o, _, _)| *o == op) {
                if later[i].1 == 0 {
                    let (_, _, e) = later.remove(i);
                    return Err(e);
                }
                later[i].1 -= 1;
            }
        }
        let mut failures = lock(&self.failures);
        if let Some((_, e)) = failures
            .iter()
            .position(|(o, _)| *o == op)
            .and_then(|i| failures.remove(i))
        {
            return Err(e);
        }
        Ok(())
    }

    fn write(
        &self,
        bucket: &str,
        key: &str,
        data: Arc<Vec<u8>>,
        options: &WriteOptions,
        checksum: bool,
    ) -> PortResult<Written> {
        let now = *lock(&self.now);
        let mut buckets = lock(&self.buckets);
        let b = buckets
            .get_mut(bucket)
            .ok_or_else(|| PortError::NotFound(format!("bucket {bucket}")))?;
        let id = if b.versioned {
            format!("v{:08}", self.next_version.fetch_add(1, Ordering::SeqCst))
        } else {
            "null".to_owned()
        };
        let etag = etag_of(&data);
        let checksum_sha256 =
            checksum.then(|| base64::engine::general_purpose::STANDARD.encode(Sha256::digest(data.as_slice())));
        let version = Version {
            id: id.clone(),
            data,
            etag: etag.clone(),
            storage_class: options.storage_class.clone().unwrap_or_else(|| "STANDARD".into()),
            checksum_sha256: checksum_sha256.clone(),
            lock: options.lock.clone(),
            legal_hold: options.legal_hold,
            delete_marker: false,
            metadata: options.metadata.clone(),
            modified: now,
            restore: None,
        };
        let versions = b.objects.entry(key.to_owned()).or_default();
        if !b.versioned {
            versions.clear();
        }
        versions.push(version);
        Ok(Written {
            version_id: b.versioned.then_some(id),
            etag: Some(etag),
            checksum_sha256,
            parts: 1,
        })
    }

    fn find(&self, bucket: &str, key: &str, version_id: Option<&str>) -> PortResult<Option<Version>> {
        let buckets = lock(&self.buckets);
        let b = buckets
            .get(bucket)
            .ok_or_else(|| PortError::NotFound(format!("bucket {bucket}")))?;
        let Some(versions) = b.objects.get(key) else {
            return Ok(None);
        };
        let v = match version_id {
            Some(id) => versions.iter().find(|v| v.id == id),
            None => versions.last(),
        };
        Ok(v.filter(|v| !v.delete_marker).cloned())
    }
}

/// Archived and not restored: S3 refuses to read or copy it.
fn archived_unreadable(v: &Version) -> bool {
    matches!(v.storage_class.as_str(), "GLACIER" | "DEEP_ARCHIVE") && v.restore != Some(false)
}

#[async_trait]
impl ObjectStore for InMemoryObjectStore {
    async fn list_page_after(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: Option<&str>,
        token: Option<&str>,
        max_keys: u32,
    ) -> PortResult<ObjectPage> {
        self.enter(ObjectOp::List)?;
        let buckets = lock(&self.buckets);
        let b = buckets
            .get(bucket)
            .ok_or_else(|| PortError::NotFound(format!("bucket {bucket}")))?;
        // The token is the last key returned: like StartAfter, and it wins over it.
        let after = token.or(start_after);
        let start = after.unwrap_or("");
        let mut objects = Vec::new();
        let mut next_token = None;
        for (k, vs) in b.objects.range(start.to_owned()..) {
            if !k.starts_with(prefix) || (after.is_some() && k.as_str() == start) {
                continue;
            }
            let Some(v) = vs.last().filter(|v| !v.delete_marker) else {
                continue;
            };
            if objects.len() == usize::try_from(max_keys.max(1)).unwrap_or(1000) {
                next_token = objects.last().map(|o: &ListedObject| o.key.clone());
                break;
            }
            objects.push(ListedObject {
                key: k.clone(),
                version_id: b.versioned.then(|| v.id.clone()),
                size: v.data.len() as u64,
                etag: v.etag.clone(),
                storage_class: v.storage_class.clone(),
                last_modified: Some(v.modified),
            });
        }
        Ok(ObjectPage { objects, next_token })
    }

    async fn list_sub_prefixes(
        &self,
        bucket: &str,
        prefix: &str,
        token: Option<&str>,
        max_keys: u32,
    ) -> PortResult<PrefixPage> {
        self.enter(ObjectOp::List)?;
        let buckets = lock(&self.buckets);
        let b = buckets
            .get(bucket)
            .ok_or_else(|| PortError::NotFound(format!("bucket {bucket}")))?;
        // Every entry of the delimited listing in key order: sub-prefixes once each.
        let mut items: Vec<(String, bool)> = Vec::new();
        for (k, vs) in b.objects.range(prefix.to_owned()..) {
            let Some(rest) = k.strip_prefix(prefix) else { break };
            if vs.last().is_none_or(|v| v.delete_marker) {
                continue;
            }
            match rest.find('/') {
                Some(i) => {
                    let sub = format!("{prefix}{}", &rest[..=i]);
                    if items.last().is_none_or(|(last, _)| *last != sub) {
                        items.push((sub, true));
                    }
                }
                None => items.push((k.clone(), false)),
            }
        }
        let page = usize::try_from(max_keys.max(1)).unwrap_or(1000);
        let rest: Vec<(String, bool)> = items
            .into_iter()
            .filter(|(item, _)| token.is_none_or(|t| item.as_str() > t))
            .collect();
        let next_token = (rest.len() > page).then(|| rest[page - 1].0.clone());
        let mut out = PrefixPage {
            next_token,
            ..PrefixPage::default()
        };
        for (item, is_prefix) in rest.into_iter().take(page) {
            if is_prefix {
                out.prefixes.push(item);
            } else {
                out.loose_objects += 1;
            }
        }
        Ok(out)
    }

    async fn head(&self, bucket: &str, key: &str, version_id: Option<&str>) -> PortResult<Option<ObjectHead>> {
        self.enter(ObjectOp::Head)?;
        let versioned = lock(&self.buckets).get(bucket).is_some_and(|b| b.versioned);
        Ok(self.find(bucket, key, version_id)?.map(|v| ObjectHead {
            key: key.to_owned(),
            version_id: versioned.then(|| v.id.clone()),
            size: v.data.len() as u64,
            etag: v.etag,
            storage_class: v.storage_class,
            last_modified: Some(v.modified),
            checksum_sha256: v.checksum_sha256,
            checksum_crc64nvme: None,
            lock: v.lock,
            legal_hold: v.legal_hold,
            restore: v.restore.map(|ongoing| {
                if ongoing {
                    "ongoing-request=\"true\"".to_owned()
                } else {
                    "ongoing-request=\"false\", expiry-date=\"Fri, 01 Jan 2100 00:00:00 GMT\"".to_owned()
                }
            }),
            metadata: v.metadata,
        }))
    }

    async fn get(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        if_match: Option<&str>,
    ) -> PortResult<ObjectBody> {
        self.enter(ObjectOp::Get)?;
        let versioned = lock(&self.buckets).get(bucket).is_some_and(|b| b.versioned);
        let v = self
            .find(bucket, key, version_id)?
            .ok_or_else(|| PortError::NotFound(format!("{bucket}/{key}")))?;
        if if_match.is_some_and(|e| e != v.etag) {
            return Err(PortError::Conflict(format!("{bucket}/{key} changed (ETag)")));
        }
        if archived_unreadable(&v) {
            return Err(PortError::InvalidState(format!("{bucket}/{key} is archived")));
        }
        let data = v.data.clone();
        let mut chunks: Vec<PortResult<Vec<u8>>> = data.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
        // The SDK checks the bytes against S3's stored checksum and fails after the last chunk.
        if v.checksum_sha256.as_ref().is_some_and(|claimed| {
            *claimed != base64::engine::general_purpose::STANDARD.encode(Sha256::digest(data.as_slice()))
        }) {
            chunks.push(Err(PortError::Corrupt(format!(
                "{bucket}/{key}: body checksum mismatch"
            ))));
        }
        Ok(ObjectBody {
            version_id: versioned.then_some(v.id),
            size: data.len() as u64,
            etag: Some(v.etag),
            storage_class: Some(v.storage_class),
            last_modified: Some(v.modified),
            checksum_sha256: v.checksum_sha256,
            chunks: Box::pin(futures::stream::iter(chunks)),
        })
    }

    async fn put(&self, bucket: &str, key: &str, body: Vec<u8>, options: &WriteOptions) -> PortResult<Written> {
        self.enter(ObjectOp::Put)?;
        self.write(bucket, key, Arc::new(body), options, true)
    }

    async fn copy(&self, request: &CopyRequest) -> PortResult<Written> {
        self.enter(ObjectOp::Copy)?;
        let v = self
            .find(
                &request.source_bucket,
                &request.source_key,
                request.source_version_id.as_deref(),
            )?
            .ok_or_else(|| PortError::NotFound(format!("{}/{}", request.source_bucket, request.source_key)))?;
        if request.if_match.as_ref().is_some_and(|e| *e != v.etag) {
            return Err(PortError::Conflict(format!("{} changed (ETag)", request.source_key)));
        }
        if archived_unreadable(&v) {
            return Err(PortError::InvalidState(format!("{} is archived", request.source_key)));
        }
        let mut w = self.write(&request.bucket, &request.key, v.data, &request.options, true)?;
        if request.size > self.multipart_threshold {
            w.parts = u32::try_from(request.size.div_ceil(self.multipart_threshold.max(1))).unwrap_or(u32::MAX);
        }
        Ok(w)
    }

    async fn delete(&self, bucket: &str, key: &str, version_id: Option<&str>) -> PortResult<()> {
        self.enter(ObjectOp::Delete)?;
        let now = *lock(&self.now);
        let mut buckets = lock(&self.buckets);
        let b = buckets
            .get_mut(bucket)
            .ok_or_else(|| PortError::NotFound(format!("bucket {bucket}")))?;
        let versioned = b.versioned;
        let Some(versions) = b.objects.get_mut(key) else {
            return Ok(());
        };
        match version_id {
            Some(id) => {
                if let Some(i) = versions.iter().position(|v| v.id == id) {
                    let v = &versions[i];
                    if v.legal_hold || v.lock.as_ref().is_some_and(|l| l.retain_until > now) {
                        return Err(PortError::InvalidState(format!(
                            "{bucket}/{key} version {id} is locked"
                        )));
                    }
                    versions.remove(i);
                }
            }
            None if versioned => versions.push(Version {
                id: format!("v{:08}", self.next_version.fetch_add(1, Ordering::SeqCst)),
                data: Arc::new(Vec::new()),
                etag: String::new(),
                storage_class: String::new(),
                checksum_sha256: None,
                lock: None,
                legal_hold: false,
                delete_marker: true,
                metadata: Vec::new(),
                modified: now,
                restore: None,
            }),
            None => versions.clear(),
        }
        Ok(())
    }

    async fn set_legal_hold(&self, bucket: &str, key: &str, version_id: Option<&str>, on: bool) -> PortResult<()> {
        self.enter(ObjectOp::LegalHold)?;
        let mut buckets = lock(&self.buckets);
        let v = buckets
            .get_mut(bucket)
            .and_then(|b| b.objects.get_mut(key))
            .and_then(|vs| match version_id {
                Some(id) => vs.iter_mut().find(|v| v.id == id),
                None => vs.last_mut(),
            })
            .ok_or_else(|| PortError::NotFound(format!("{bucket}/{key}")))?;
        v.legal_hold = on;
        Ok(())
    }

    async fn restore(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        _days: u32,
        _tier: RestoreTier,
    ) -> PortResult<()> {
        self.enter(ObjectOp::Restore)?;
        let mut buckets = lock(&self.buckets);
        let v = buckets
            .get_mut(bucket)
            .and_then(|b| b.objects.get_mut(key))
            .and_then(|vs| match version_id {
                Some(id) => vs.iter_mut().find(|v| v.id == id),
                None => vs.last_mut(),
            })
            .filter(|v| !v.delete_marker)
            .ok_or_else(|| PortError::NotFound(format!("{bucket}/{key}")))?;
        if !matches!(v.storage_class.as_str(), "GLACIER" | "DEEP_ARCHIVE") {
            return Err(PortError::InvalidState(format!("{bucket}/{key} is not archived")));
        }
        v.restore.get_or_insert(true);
        Ok(())
    }

    async fn replace_owned_rules(&self, bucket: &str, owner: &str, rules: &[LifecycleRule]) -> PortResult<usize> {
        if owner.is_empty() {
            return Err(PortError::Invalid("lifecycle rules need an owner prefix".into()));
        }
        let mut buckets = lock(&self.buckets);
        let b = buckets
            .get_mut(bucket)
            .ok_or_else(|| PortError::NotFound(format!("bucket {bucket}")))?;
        b.lifecycle.retain(|r| !r.id.starts_with(owner));
        b.lifecycle.extend(rules.iter().cloned());
        Ok(b.lifecycle.len())
    }
}
