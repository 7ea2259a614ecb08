//! The Firestore store: the production `OtpStore`, shared by every Lambda instance.
//!
//! Each port operation is one optimistic atomic step of at most two round trips: one
//! `BatchGetDocuments` of the records it needs (no transaction), the domain rule applied
//! in memory (the same `SendPolicy::apply` / `NumberRecord::judge` / `withdraw` as the
//! memory store), then one `Commit` of every changed record, each write carrying the
//! precondition "unchanged since read" (`update_time` as read, or `exists: false`). A
//! commit is all-or-nothing, so a send's number, client (and range) records never disagree. When a
//! concurrent writer got there first the commit fails as a whole and the step starts again
//! from a fresh read, a bounded number of times. Steps that change nothing (a refused send,
//! a verify with no code) end after the read: one round trip.
//!
//! The shared caps are not read: a send's commit adds its units to them blindly (field
//! transforms, which never conflict) and the policy checks the counts the commit answers;
//! a unit in a full shard undoes the send, which is decided again (`record_send`).

mod auth;
mod delivery;
mod records;

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use firestore::gcloud_sdk::RequestTimeouts;
use firestore::gcloud_sdk::google::firestore::v1::batch_get_documents_response::Result as Fetched;
use firestore::gcloud_sdk::google::firestore::v1::document_transform::FieldTransform;
use firestore::gcloud_sdk::google::firestore::v1::document_transform::field_transform::TransformType;
use firestore::gcloud_sdk::google::firestore::v1::precondition::ConditionType;
use firestore::gcloud_sdk::google::firestore::v1::{
    BatchGetDocumentsRequest, CommitRequest, Document, DocumentMask, Precondition, Value, Write, WriteResult, write,
};
use firestore::gcloud_sdk::tonic::{self, Code};
use firestore::{FirestoreDb, FirestoreDbOptions};
use rand::Rng;
use tokio::sync::OnceCell;

pub use self::auth::{ConnectError, FirestoreAuth, credentials_from_json};
pub use self::records::EXPIRE_AT;
use crate::domain::quota::{self, BUDGET_SHARDS, COUNTRY_SHARDS, ShardedCap, TALLY_SHARDS};
use crate::domain::{
    Channel, CodeHash, Counted, CountryRecords, SendChanges, SendDecision, SendPolicy, SendReads, SendRecords,
    SubjectKey, VerifyChanges, VerifyOutcome, VerifyPolicy,
};
use crate::ports::{OtpStore, SendSubjects, StoreError, VerifySubjects};

/// Where the store keeps its records, and how long it waits for Firestore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirestoreConfig {
    pub project_id: String,
    /// `(default)` unless the project has named databases.
    pub database_id: String,
    /// Prefix of the collections: `<prefix>numbers`, `<prefix>clients`, `<prefix>ranges`
    /// (only with the per-range limit on), `<prefix>countries`, `<prefix>budget`,
    /// `<prefix>guard`, `<prefix>approvals` and `<prefix>deliveries` (docs/DEPLOY.md sets a
    /// TTL policy on each).
    pub collection_prefix: String,
    /// The longest one call (connect, read or commit) may take before the store answers
    /// `Unavailable`, so an unreachable Firestore costs a request seconds, not the
    /// function's whole timeout.
    pub call_timeout: Duration,
    /// Tries of one atomic step under contention (read + commit each) before `Contention`.
    pub max_attempts: u32,
}

impl FirestoreConfig {
    /// 3 s per call; 12 tries. Every commit that beats another to a number's record is an
    /// allowed send or a judged attempt, and the limits allow few of those per record
    /// (5 judged attempts per code, 1 send per cooldown). The shared caps take blind
    /// increments only, so they never make a commit conflict.
    pub fn new(project_id: impl Into<String>) -> Self {
        Self {
            project_id: project_id.into(),
            database_id: firestore::FIREBASE_DEFAULT_DATABASE_ID.to_owned(),
            collection_prefix: "otp_".to_owned(),
            call_timeout: Duration::from_secs(3),
            max_attempts: 12,
        }
    }
}

pub struct FirestoreStore {
    config: FirestoreConfig,
    auth: FirestoreAuth,
    /// Built on first use (and again after a failed try), so a cold start with Firestore
    /// unreachable answers 503 for a while instead of leaving a broken instance behind.
    db: OnceCell<FirestoreDb>,
    round_trips: AtomicU64,
    conflicts: AtomicU64,
    documents_read: AtomicU64,
    overdrawn: AtomicU64,
    /// Cap shards this instance saw full (by document name): a hint only, so a send skips
    /// them without a read; a step never trusts it to refuse (every shard of a cap hinted
    /// full makes the next step read them all). Names hold their day or hour, so stale
    /// entries only cost memory, and the set is dropped past [`FULL_HINTS`].
    full_shards: Mutex<HashSet<String>>,
}

/// The most cap shards the store remembers as full.
const FULL_HINTS: usize = 4096;

/// A send whose reservation kept landing in full shards (each a race with other senders
/// for a shard's last units, near the cap) gives up with `Contention` after this many.
const MAX_OVERDRAWN: u32 = 8;

impl std::fmt::Debug for FirestoreStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirestoreStore").field("config", &self.config).field("auth", &self.auth).finish()
    }
}

/// How a commit ended.
enum Committed {
    /// Applied: the result of each write, in order.
    Done(Vec<WriteResult>),
    /// A precondition failed: another writer changed a record since it was read.
    Conflict,
}

impl FirestoreStore {
    /// A store of `config`'s database. Nothing is contacted until the first operation (or
    /// [`FirestoreStore::connect_now`]).
    pub fn new(config: FirestoreConfig, auth: FirestoreAuth) -> Self {
        Self {
            config,
            auth,
            db: OnceCell::new(),
            round_trips: AtomicU64::new(0),
            conflicts: AtomicU64::new(0),
            documents_read: AtomicU64::new(0),
            overdrawn: AtomicU64::new(0),
            full_shards: Mutex::new(HashSet::new()),
        }
    }

    /// Connects now and reads one (absent) document, each within the call timeout, so the
    /// connection is open and the access token fetched before the first request needs
    /// them: the Lambda init phase calls it. A failure is retried by the next operation.
    pub async fn connect_now(&self) -> Result<(), StoreError> {
        let db = self.db().await?;
        let probe = format!("{}/{}numbers/connection-check", db.get_documents_path(), self.config.collection_prefix);
        self.read(db, &[probe]).await.map(|_| ())
    }

    /// Requests sent to Firestore so far (reads and commits; connecting is not counted).
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// Commits refused so far because another writer was first (each is retried).
    pub fn conflicts(&self) -> u64 {
        self.conflicts.load(Ordering::Relaxed)
    }

    /// Documents read so far (each document of each batch get, found or not: what
    /// Firestore bills as a read, but for absent ones, which it bills per batch).
    pub fn documents_read(&self) -> u64 {
        self.documents_read.load(Ordering::Relaxed)
    }

    /// Reservations so far that landed in a full shard and were given back (each send
    /// then decided again, reading the cap's shards).
    pub fn overdrawn(&self) -> u64 {
        self.overdrawn.load(Ordering::Relaxed)
    }

    fn hinted_full(&self, name: &str) -> bool {
        self.full_shards.lock().unwrap_or_else(|e| e.into_inner()).contains(name)
    }

    fn hint_full(&self, name: &str) {
        let mut hints = self.full_shards.lock().unwrap_or_else(|e| e.into_inner());
        if hints.len() >= FULL_HINTS {
            hints.clear();
        }
        hints.insert(name.to_owned());
    }

    async fn db(&self) -> Result<&FirestoreDb, StoreError> {
        let connect = self.db.get_or_try_init(|| async {
            let options = FirestoreDbOptions::new(self.config.project_id.clone())
                .with_database_id(self.config.database_id.clone())
                .with_request_timeout(self.config.call_timeout);
            auth::connect(options, &self.auth).await.map_err(|error| match error {
                ConnectError::Credentials(reason) => StoreError::Other(reason),
                ConnectError::Unreachable(reason) => StoreError::Unavailable(reason),
            })
        });
        // The limit covers the wait behind another request's connection attempt too, so
        // during an outage concurrent requests each give up after one timeout rather than
        // queueing for a try each.
        tokio::time::timeout(self.config.call_timeout, connect).await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(format!("no connection to Firestore within {:?}", self.config.call_timeout)))
        })
    }

    fn document_name(&self, db: &FirestoreDb, collection: &str, key: &SubjectKey) -> String {
        format!("{}/{}{}/{}", db.get_documents_path(), self.config.collection_prefix, collection, key.as_str())
    }

    /// One atomic step over the documents `names`: read them, let `step` decide (and say
    /// which writes make its decision true), commit those writes on the condition that
    /// nothing changed since the read; on a conflict, start over.
    async fn atomically<T>(
        &self,
        db: &FirestoreDb,
        names: &[String],
        step: impl Fn(&[Option<Document>]) -> Result<(T, Vec<Write>), StoreError>,
    ) -> Result<(T, Vec<WriteResult>), StoreError> {
        for attempt in 0..self.config.max_attempts {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            let read = self.read(db, names).await?;
            let (outcome, writes) = step(&read)?;
            if writes.is_empty() {
                return Ok((outcome, Vec::new()));
            }
            match self.commit(db, writes).await? {
                Committed::Done(results) => return Ok((outcome, results)),
                Committed::Conflict => {
                    self.conflicts.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Err(contention(self.config.max_attempts))
    }

    /// The documents `names`, in order (`None`: absent), in one strongly consistent read.
    async fn read(&self, db: &FirestoreDb, names: &[String]) -> Result<Vec<Option<Document>>, StoreError> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        self.documents_read.fetch_add(names.len() as u64, Ordering::Relaxed);
        let request = BatchGetDocumentsRequest {
            database: db.get_database_path().clone(),
            documents: names.to_vec(),
            ..Default::default()
        };
        let call = async {
            let mut stream = db.client().get().batch_get_documents(self.request(request)).await?.into_inner();
            let mut found = HashMap::new();
            while let Some(response) = stream.message().await? {
                if let Some(Fetched::Found(document)) = response.result {
                    found.insert(document.name.clone(), document);
                }
            }
            Ok::<_, tonic::Status>(found)
        };
        let mut found = self.bounded("read", call).await?.map_err(|status| status_error("read", &status))?;
        Ok(names.iter().map(|name| found.remove(name)).collect())
    }

    async fn commit(&self, db: &FirestoreDb, writes: Vec<Write>) -> Result<Committed, StoreError> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        let request = CommitRequest { database: db.get_database_path().clone(), writes, ..Default::default() };
        let call = async { db.client().get().commit(self.request(request)).await };
        match self.bounded("commit", call).await? {
            Ok(response) => Ok(Committed::Done(response.into_inner().write_results)),
            // FAILED_PRECONDITION: `update_time` moved; ALREADY_EXISTS: `exists: false` lost a
            // race to create; NOT_FOUND: deleted (TTL) since read; ABORTED: Firestore's own
            // contention. Either way nothing was written, and a fresh read decides again.
            Err(status)
                if matches!(
                    status.code(),
                    Code::FailedPrecondition | Code::AlreadyExists | Code::NotFound | Code::Aborted
                ) =>
            {
                Ok(Committed::Conflict)
            }
            // A commit that failed otherwise (or timed out) is all-or-nothing too: it may or
            // may not have landed, but never half of it.
            Err(status) => Err(status_error("commit", &status)),
        }
    }

    fn request<M>(&self, message: M) -> tonic::Request<M> {
        let mut request = tonic::Request::new(message);
        // Sent as `grpc-timeout` too, so Firestore stops working on a call we gave up on.
        request.extensions_mut().insert(RequestTimeouts::new().with_total(self.config.call_timeout));
        request
    }

    async fn bounded<T>(&self, what: &str, call: impl Future<Output = T>) -> Result<T, StoreError> {
        tokio::time::timeout(self.config.call_timeout, call).await.map_err(|_| {
            StoreError::Unavailable(format!("Firestore {what} took longer than {:?}", self.config.call_timeout))
        })
    }
}

/// The write that makes `fields` the document `name`, if it is still as `read` saw it.
fn guarded_write(name: &str, fields: HashMap<String, Value>, read: Option<&Document>) -> Write {
    let condition = match read.and_then(|d| d.update_time) {
        Some(update_time) => ConditionType::UpdateTime(update_time),
        None => ConditionType::Exists(false),
    };
    Write {
        current_document: Some(Precondition { condition_type: Some(condition) }),
        operation: Some(write::Operation::Update(Document { name: name.to_owned(), fields, ..Default::default() })),
        ..Default::default()
    }
}

/// A step that gave up: logged, for the alarm, and answered 503 with `Retry-After`.
fn contention(attempts: u32) -> StoreError {
    tracing::warn!(event = "store_contention", attempts, "Firestore commits kept conflicting; giving up");
    StoreError::Contention
}

fn status_error(what: &str, status: &tonic::Status) -> StoreError {
    // The message is Firestore's or the transport's; it holds document names (keyed
    // hashes) at most, never a number, IP or code.
    let reason = format!("Firestore {what} failed: {:?}: {}", status.code(), status.message());
    match status.code() {
        Code::InvalidArgument | Code::OutOfRange | Code::Unimplemented => StoreError::Other(reason),
        _ => StoreError::Unavailable(reason),
    }
}

/// Jittered exponential backoff before try `attempt` (1-based): 10 ms doubling to 160 ms,
/// each a random point in the upper half, so colliding writers spread out.
fn backoff(attempt: u32) -> Duration {
    let cap_ms = 10u64 << attempt.saturating_sub(1).min(4);
    Duration::from_millis(rand::rng().random_range(cap_ms / 2..=cap_ms))
}

fn malformed(error: records::MalformedRecord) -> StoreError {
    StoreError::Other(error.to_string())
}

/// The part a document plays in a step, so the step finds its documents by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Number,
    Client,
    Range,
    Budget(usize),
    /// A shard of today's share of the budget for numbers not yet known.
    NewBudget(usize),
    /// A shard of a country's hourly SMS cap, this hour.
    CountryCap(usize),
    /// A shard of a prefix's tally (SMS and approvals): this hour's, or the previous hour's.
    Tally {
        shard: usize,
        previous: bool,
    },
    Guard,
}

/// The documents of one step, each with its role.
struct Layout {
    roles: Vec<Role>,
    names: Vec<String>,
}

impl Layout {
    fn new() -> Self {
        Self { roles: Vec::new(), names: Vec::new() }
    }

    fn add(&mut self, role: Role, name: String) {
        self.roles.push(role);
        self.names.push(name);
    }

    fn name(&self, role: Role) -> Option<&str> {
        self.roles.iter().position(|r| *r == role).map(|i| self.names[i].as_str())
    }

    /// The documents as read, by role (`None` in the inner option: absent).
    fn read<'a>(&self, read: &'a [Option<Document>]) -> Result<Read<'a>, StoreError> {
        if read.len() != self.roles.len() {
            return Err(StoreError::Other("batch get answered the wrong number of documents".into()));
        }
        Ok(Read(self.roles.iter().copied().zip(read.iter().map(Option::as_ref)).collect()))
    }
}

struct Read<'a>(Vec<(Role, Option<&'a Document>)>);

impl<'a> Read<'a> {
    fn get(&self, role: Role) -> Option<&'a Document> {
        self.0.iter().find(|(r, _)| *r == role).and_then(|(_, d)| *d)
    }

    fn has(&self, role: Role) -> bool {
        self.0.iter().any(|(r, _)| *r == role)
    }

    fn counter(&self, role: Role) -> Result<u32, StoreError> {
        self.get(role)
            .map(|d| records::counter(&d.fields))
            .transpose()
            .map_err(malformed)
            .map(Option::unwrap_or_default)
    }

    fn tally(&self, role: Role) -> Result<(u32, u32, u32), StoreError> {
        self.get(role).map(|d| records::tally(&d.fields)).transpose().map_err(malformed).map(Option::unwrap_or_default)
    }
}

/// Which caps a send reads whole: after a reservation did not hold, or when this instance
/// saw every shard of the cap full. Otherwise it reads none of their shards.
#[derive(Debug, Clone, Copy, Default)]
struct Scan {
    budget: bool,
    new_budget: bool,
    country: bool,
}

/// The names of a send's cap shards, and whether this instance saw each full.
struct CapShards {
    budget: Vec<String>,
    new_budget: Vec<String>,
    country: Vec<String>,
}

/// What a send's commit wrote, to check its reservation and to undo it.
#[derive(Debug, Default)]
struct SendPlan {
    /// The guarded writes of the send's own records: position in the commit, its role,
    /// document, and the document as it was read (`None`: absent).
    records: Vec<(usize, Role, String, Option<Document>)>,
    /// Positions in the commit of the blind increments of the cap shards, and their names.
    budget: Option<(usize, String)>,
    new_budget: Option<(usize, String)>,
    country: Option<(usize, String)>,
    /// The tally shard the SMS was counted in.
    tally: Option<(String, DateTime<Utc>)>,
    budget_expiry: Option<DateTime<Utc>>,
    new_budget_expiry: Option<DateTime<Utc>>,
    country_expiry: Option<DateTime<Utc>>,
}

impl FirestoreStore {
    fn named(&self, db: &FirestoreDb, collection: &str, id: &str) -> String {
        format!("{}/{}{}/{}", db.get_documents_path(), self.config.collection_prefix, collection, id)
    }

    fn cap_shards(&self, db: &FirestoreDb, country: &str, now: DateTime<Utc>) -> CapShards {
        CapShards {
            budget: (0..BUDGET_SHARDS).map(|s| self.named(db, "budget", &quota::budget_counter(now, s))).collect(),
            new_budget: (0..BUDGET_SHARDS)
                .map(|s| self.named(db, "budget", &quota::new_budget_counter(now, s)))
                .collect(),
            country: (0..COUNTRY_SHARDS)
                .map(|s| self.named(db, "countries", &quota::country_counter(country, now, s)))
                .collect(),
        }
    }

    /// The documents a send reads: the number's, the client's, those of each shared limit
    /// that is on, and the shards of the caps `scan` says to read whole.
    fn send_layout(
        &self,
        db: &FirestoreDb,
        subjects: &SendSubjects<'_>,
        reads: SendReads,
        shards: &CapShards,
        scan: Scan,
        now: DateTime<Utc>,
    ) -> Layout {
        let mut layout = Layout::new();
        layout.add(Role::Number, self.document_name(db, "numbers", subjects.number));
        layout.add(Role::Client, self.document_name(db, "clients", subjects.client));
        if let (true, Some(range)) = (reads.range, subjects.range) {
            layout.add(Role::Range, self.document_name(db, "ranges", range));
        }
        if reads.budget && scan.budget {
            for (shard, name) in shards.budget.iter().enumerate() {
                layout.add(Role::Budget(shard), name.clone());
            }
        }
        if reads.budget && scan.new_budget {
            for (shard, name) in shards.new_budget.iter().enumerate() {
                layout.add(Role::NewBudget(shard), name.clone());
            }
        }
        if reads.country {
            if scan.country {
                for (shard, name) in shards.country.iter().enumerate() {
                    layout.add(Role::CountryCap(shard), name.clone());
                }
            }
            let prefix = subjects.prefix;
            for (previous, at) in [(false, now), (true, quota::previous_hour(now))] {
                for shard in 0..TALLY_SHARDS {
                    let id = quota::tally_counter(prefix, at, shard);
                    layout.add(Role::Tally { shard, previous }, self.named(db, "approvals", &id));
                }
            }
            layout.add(Role::Guard, self.named(db, "guard", prefix));
        }
        layout
    }

    /// What a send knows of a cap's shards: the count of each it read (remembering those it
    /// finds full), the quota of each this instance saw full (so it is not tried), nothing
    /// of the others.
    fn known_shards(
        &self,
        read: &Read<'_>,
        names: &[String],
        cap: ShardedCap,
        role: fn(usize) -> Role,
    ) -> Result<Vec<Option<u32>>, StoreError> {
        names
            .iter()
            .enumerate()
            .map(|(shard, name)| match read.has(role(shard)) {
                true => {
                    let count = read.counter(role(shard))?;
                    if count >= cap.quota(shard) {
                        self.hint_full(name);
                    }
                    Ok(Some(count))
                }
                false => Ok(self.hinted_full(name).then(|| cap.quota(shard))),
            })
            .collect()
    }

    /// Undoes a send whose reservation did not hold: its records back as they were read
    /// (on the condition that nothing changed them since the send's commit) and its units
    /// given back, in one commit. If a record changed in between (another step of the same
    /// number or client, in the moment between the two commits), the send is taken out of
    /// its records as they are now (`unrecord_send`), with the units given back in that
    /// commit: either way nothing of a send that never went out stays counted, so the
    /// retry judges the caps and not a cooldown of its own phantom.
    async fn undo_send(
        &self,
        db: &FirestoreDb,
        plan: &SendPlan,
        results: &[WriteResult],
        subjects: &SendSubjects<'_>,
        code: &CodeHash,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut give_back = Vec::new();
        if let (Some((_, name)), Some(expiry)) = (&plan.budget, plan.budget_expiry) {
            give_back.push(blind_add(name, records::COUNT, -1, expiry));
        }
        if let (Some((_, name)), Some(expiry)) = (&plan.new_budget, plan.new_budget_expiry) {
            give_back.push(blind_add(name, records::COUNT, -1, expiry));
        }
        if let (Some((_, name)), Some(expiry)) = (&plan.country, plan.country_expiry) {
            give_back.push(blind_add(name, records::COUNT, -1, expiry));
        }
        if let Some((id, expiry)) = &plan.tally {
            give_back.push(blind_add(&self.named(db, "approvals", id), records::SENT, -1, *expiry));
        }
        let mut restore = Vec::new();
        for (index, _, name, before) in &plan.records {
            let Some(written) = results.get(*index).and_then(|r| r.update_time) else {
                return Err(StoreError::Other("commit answered no update time".into()));
            };
            let condition = Some(Precondition { condition_type: Some(ConditionType::UpdateTime(written)) });
            let operation = match before {
                Some(doc) => write::Operation::Update(Document {
                    name: name.clone(),
                    fields: doc.fields.clone(),
                    ..Default::default()
                }),
                None => write::Operation::Delete(name.clone()),
            };
            restore.push(Write { current_document: condition, operation: Some(operation), ..Default::default() });
        }
        let both = restore.into_iter().chain(give_back.iter().cloned()).collect();
        match self.commit(db, both).await? {
            Committed::Done(_) => Ok(()),
            Committed::Conflict => {
                self.conflicts.fetch_add(1, Ordering::Relaxed);
                self.unrecord_send(db, plan, subjects, code, give_back, now).await
            }
        }
    }

    /// Takes a send that never went out out of its records as they are now (read, then
    /// written on the condition that they did not change, retried), and gives its units
    /// back in the same commit.
    async fn unrecord_send(
        &self,
        db: &FirestoreDb,
        plan: &SendPlan,
        subjects: &SendSubjects<'_>,
        code: &CodeHash,
        give_back: Vec<Write>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let names: Vec<String> = plan.records.iter().map(|(_, _, name, _)| name.clone()).collect();
        self.atomically(db, &names, |read| {
            let mut writes = give_back.clone();
            for ((_, role, name, _), doc) in plan.records.iter().zip(read) {
                let Some(doc) = doc else { continue };
                let expiry = records::expire_at(&doc.fields);
                let fields = match role {
                    Role::Number => {
                        let mut record = records::number_record(&doc.fields).map_err(malformed)?;
                        record.unsend(subjects.device, code, now).then(|| records::number_fields(&record, expiry))
                    }
                    Role::Client => {
                        let mut record = records::client_record(&doc.fields).map_err(malformed)?;
                        record.unsend(now).then(|| records::client_fields(&record, expiry))
                    }
                    Role::Range => {
                        let mut record = records::range_record(&doc.fields).map_err(malformed)?;
                        record.unsend(now).then(|| records::range_fields(&record, expiry))
                    }
                    _ => None,
                };
                if let Some(fields) = fields {
                    writes.push(guarded_write(name, fields, Some(doc)));
                }
            }
            Ok(((), writes))
        })
        .await
        .map(|(outcome, _)| outcome)
    }
}

/// The records of a send, from its documents as read; `budget` and `country_cap` are
/// what it knows of the caps' shards.
fn send_records(
    read: &Read<'_>,
    reads: SendReads,
    budget: Option<Vec<Option<u32>>>,
    new_budget: Option<Vec<Option<u32>>>,
    country_cap: Vec<Option<u32>>,
) -> Result<SendRecords, StoreError> {
    let record = |role, parse: fn(&records::Fields) -> Result<_, records::MalformedRecord>| {
        read.get(role).map(|d| parse(&d.fields)).transpose().map_err(malformed)
    };
    let number = read.get(Role::Number).map(|d| records::number_record(&d.fields)).transpose().map_err(malformed)?;
    let client = read.get(Role::Client).map(|d| records::client_record(&d.fields)).transpose().map_err(malformed)?;
    let range = match reads.range {
        true => Some(record(Role::Range, records::range_record)?.unwrap_or_default()),
        false => None,
    };
    let country = match reads.country {
        true => {
            let hour = |previous| -> Result<(u32, u32, u32), StoreError> {
                (0..TALLY_SHARDS).try_fold((0, 0, 0), |(sent, approved, undelivered), shard| {
                    let (s, a, u) = read.tally(Role::Tally { shard, previous })?;
                    Ok((sent + s, approved + a, undelivered + u))
                })
            };
            let ((sent, approvals, undelivered), (sent_before, approvals_before, undelivered_before)) =
                (hour(false)?, hour(true)?);
            Some(CountryRecords {
                cap_shards: country_cap,
                sent,
                sent_before,
                approvals,
                approvals_before,
                undelivered,
                undelivered_before,
                guard: read
                    .get(Role::Guard)
                    .map(|d| records::guard_state(&d.fields))
                    .transpose()
                    .map_err(malformed)?
                    .unwrap_or_default(),
            })
        }
        false => None,
    };
    Ok(SendRecords {
        number: number.unwrap_or_default(),
        client: client.unwrap_or_default(),
        range,
        budget,
        new_budget,
        country,
    })
}

/// A later of the stored `expireAt` and `computed`: a step that knows one rule's needs
/// never shortens what another rule stored.
fn later(doc: Option<&Document>, computed: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    doc.and_then(|d| records::expire_at(&d.fields)).max(computed)
}

/// A write that adds `delta` to the integer `field` of `name` without reading it, so
/// writers never conflict on it; creates the document if it is absent. Its commit answers
/// the field's new value.
fn blind_add(name: &str, field: &str, delta: i64, expire_at: DateTime<Utc>) -> Write {
    Write {
        operation: Some(write::Operation::Update(Document {
            name: name.to_owned(),
            fields: HashMap::from([(EXPIRE_AT.to_owned(), records::timestamp_value(expire_at))]),
            ..Default::default()
        })),
        update_mask: Some(DocumentMask { field_paths: vec![EXPIRE_AT.to_owned()] }),
        update_transforms: vec![FieldTransform {
            field_path: field.to_owned(),
            transform_type: Some(TransformType::Increment(records::integer_value(delta))),
        }],
        ..Default::default()
    }
}

#[async_trait]
impl OtpStore for FirestoreStore {
    /// One optimistic step (read, decide, commit) whose reservation of the caps is blind:
    /// the cap shards are not read, the commit adds one unit to one of each and answers
    /// the counts it made, and `SendPolicy::held` judges them. A unit beyond its shard's
    /// quota (the shard filled up, near the cap) is given back with the whole send
    /// (`undo_send`), and the send is decided again from a read of every shard of that cap.
    async fn record_send(
        &self,
        subjects: &SendSubjects<'_>,
        code: CodeHash,
        channel: Channel,
        policy: &SendPolicy,
        now: DateTime<Utc>,
    ) -> Result<SendDecision, StoreError> {
        let db = self.db().await?;
        let reads = policy.reads(subjects.country);
        let shards = self.cap_shards(db, subjects.country, now);
        let budget_cap = policy.budget_cap().filter(|_| reads.budget);
        let new_cap = policy.new_numbers_cap().filter(|_| reads.budget);
        let country_cap = policy.country_cap(subjects.country).filter(|_| reads.country);
        let all_hinted = |names: &[String]| names.iter().all(|name| self.hinted_full(name));
        let mut scan = Scan::default();
        for _ in 0..MAX_OVERDRAWN {
            scan.budget |= budget_cap.is_some() && all_hinted(&shards.budget);
            scan.new_budget |= new_cap.is_some() && all_hinted(&shards.new_budget);
            scan.country |= country_cap.is_some() && all_hinted(&shards.country);
            let layout = self.send_layout(db, subjects, reads, &shards, scan, now);
            let ((decision, plan), results) = self
                .atomically(db, &layout.names, |read| {
                    let read = layout.read(read)?;
                    let budget = budget_cap
                        .map(|cap| self.known_shards(&read, &shards.budget, cap, Role::Budget))
                        .transpose()?;
                    let new_budget = new_cap
                        .map(|cap| self.known_shards(&read, &shards.new_budget, cap, Role::NewBudget))
                        .transpose()?;
                    let country = country_cap
                        .map(|cap| self.known_shards(&read, &shards.country, cap, Role::CountryCap))
                        .transpose()?
                        .unwrap_or_default();
                    let mut step = send_records(&read, reads, budget, new_budget, country)?;
                    let decision = policy.apply(&mut step, subjects.asker(), code, channel, now, rand::random());
                    let SendChanges { number, client, range, budget, new_budget, country_sent, tally, guard } =
                        policy.changes(&decision, step, subjects.prefix, now);
                    let mut writes = Vec::new();
                    let mut plan = SendPlan::default();
                    let mut guarded = |role: Role, fields| {
                        if let Some(name) = layout.name(role) {
                            let before = read.get(role);
                            plan.records.push((writes.len(), role, name.to_owned(), before.cloned()));
                            writes.push(guarded_write(name, fields, before));
                        }
                    };
                    if let Some(write) = number {
                        let expiry = later(read.get(Role::Number), write.expires_at);
                        guarded(Role::Number, records::number_fields(&write.record, expiry));
                    }
                    if let Some(write) = client {
                        let expiry = later(read.get(Role::Client), write.expires_at);
                        guarded(Role::Client, records::client_fields(&write.record, expiry));
                    }
                    if let Some(write) = range {
                        guarded(Role::Range, records::range_fields(&write.record, write.expires_at));
                    }
                    if let Some(write) = guard {
                        let name = layout.name(Role::Guard).unwrap_or_default();
                        let fields = records::guard_fields(&write.record, write.expires_at);
                        writes.push(guarded_write(name, fields, read.get(Role::Guard)));
                    }
                    if let Some(unit) = budget {
                        let name = &shards.budget[unit.shard];
                        plan.budget = Some((writes.len(), name.clone()));
                        plan.budget_expiry = Some(unit.expires_at);
                        writes.push(blind_add(name, records::COUNT, 1, unit.expires_at));
                    }
                    if let Some(unit) = new_budget {
                        let name = &shards.new_budget[unit.shard];
                        plan.new_budget = Some((writes.len(), name.clone()));
                        plan.new_budget_expiry = Some(unit.expires_at);
                        writes.push(blind_add(name, records::COUNT, 1, unit.expires_at));
                    }
                    if let Some(unit) = country_sent {
                        let name = &shards.country[unit.shard];
                        plan.country = Some((writes.len(), name.clone()));
                        plan.country_expiry = Some(unit.expires_at);
                        writes.push(blind_add(name, records::COUNT, 1, unit.expires_at));
                    }
                    if let Some((id, expiry)) = tally {
                        writes.push(blind_add(&self.named(db, "approvals", &id), records::SENT, 1, expiry));
                        plan.tally = Some((id, expiry));
                    }
                    Ok(((decision, plan), writes))
                })
                .await?;
            let SendDecision::Allowed { reserved, .. } = &decision else { return Ok(decision) };
            let counted = |at: &Option<(usize, String)>| -> Result<Option<u32>, StoreError> {
                at.as_ref()
                    .map(|(index, _)| {
                        records::counted(results.get(*index).and_then(|r| r.transform_results.first()))
                            .map_err(malformed)
                    })
                    .transpose()
            };
            let counts = Counted {
                budget: counted(&plan.budget)?,
                new_budget: counted(&plan.new_budget)?,
                country: counted(&plan.country)?,
            };
            let Err(overdrawn) = policy.held(subjects.country, reserved, counts) else {
                return Ok(decision);
            };
            self.overdrawn.fetch_add(1, Ordering::Relaxed);
            if let Some(shard) = overdrawn.budget_shard {
                self.hint_full(&shards.budget[shard]);
                scan.budget = true;
            }
            if let Some(shard) = overdrawn.new_shard {
                // Full at the send's level, which may be below the quota: only read again,
                // not hinted full for the sends that may use the whole share.
                if !reserved.unchallenged {
                    self.hint_full(&shards.new_budget[shard]);
                }
                scan.new_budget = true;
            }
            if let Some(shard) = overdrawn.country_shard {
                if !reserved.unchallenged {
                    self.hint_full(&shards.country[shard]);
                }
                scan.country = true;
            }
            self.undo_send(db, &plan, &results, subjects, &code, now).await?;
        }
        Err(contention(MAX_OVERDRAWN))
    }

    async fn judge_attempt(
        &self,
        subjects: &VerifySubjects<'_>,
        candidate: &CodeHash,
        policy: &VerifyPolicy,
        now: DateTime<Utc>,
    ) -> Result<VerifyOutcome, StoreError> {
        let db = self.db().await?;
        let mut layout = Layout::new();
        layout.add(Role::Number, self.document_name(db, "numbers", subjects.number));
        layout.add(Role::Client, self.document_name(db, "clients", subjects.client));
        self.atomically(db, &layout.names, |read| {
            let read = layout.read(read)?;
            let number_doc = read.get(Role::Number);
            let client_doc = read.get(Role::Client);
            let before = number_doc.map(|d| records::number_record(&d.fields)).transpose().map_err(malformed)?;
            let mut number = before.clone().unwrap_or_default();
            let mut client = client_doc
                .map(|d| records::client_record(&d.fields))
                .transpose()
                .map_err(malformed)?
                .unwrap_or_default();
            let outcome = policy.apply(&mut number, &mut client, candidate, subjects.device, now);
            let VerifyChanges { client, number, approval } =
                policy.changes(&outcome, before.as_ref(), number, client, subjects.prefix, now);
            let mut writes = Vec::new();
            if let Some(write) = client {
                let expiry = later(client_doc, write.expires_at);
                let name = layout.name(Role::Client).unwrap_or_default();
                writes.push(guarded_write(name, records::client_fields(&write.record, expiry), client_doc));
            }
            if let Some(write) = number {
                let expiry = later(number_doc, write.expires_at);
                let name = layout.name(Role::Number).unwrap_or_default();
                writes.push(guarded_write(name, records::number_fields(&write.record, expiry), number_doc));
            }
            if let Some((id, expiry)) = approval {
                writes.push(blind_add(&self.named(db, "approvals", &id), records::COUNT, 1, expiry));
            }
            Ok((outcome, writes))
        })
        .await
        .map(|(outcome, _)| outcome)
    }

    async fn count_undelivered(
        &self,
        prefix: &str,
        sent_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if !quota::in_tally(sent_at, now) {
            return Ok(());
        }
        let db = self.db().await?;
        let name = self.named(db, "approvals", &quota::random_tally_counter(prefix, sent_at));
        let write = blind_add(&name, records::UNDELIVERED, 1, quota::country_counter_expiry(sent_at));
        match self.commit(db, vec![write]).await? {
            Committed::Done(_) => Ok(()),
            Committed::Conflict => Err(StoreError::Other("a blind increment was refused".into())),
        }
    }

    async fn withdraw_code(
        &self,
        number: &SubjectKey,
        code: &CodeHash,
        created_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let db = self.db().await?;
        let name = self.document_name(db, "numbers", number);
        self.atomically(db, std::slice::from_ref(&name), |read| {
            let Some(Some(doc)) = read.first() else { return Ok(((), Vec::new())) };
            let mut record = records::number_record(&doc.fields).map_err(malformed)?;
            let writes = if record.withdraw(code, created_at) {
                vec![guarded_write(&name, records::number_fields(&record, records::expire_at(&doc.fields)), Some(doc))]
            } else {
                Vec::new()
            };
            Ok(((), writes))
        })
        .await
        .map(|(outcome, _)| outcome)
    }
}
