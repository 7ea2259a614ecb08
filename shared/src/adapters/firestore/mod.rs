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

mod auth;
mod records;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use firestore::gcloud_sdk::RequestTimeouts;
use firestore::gcloud_sdk::google::firestore::v1::batch_get_documents_response::Result as Fetched;
use firestore::gcloud_sdk::google::firestore::v1::precondition::ConditionType;
use firestore::gcloud_sdk::google::firestore::v1::{
    BatchGetDocumentsRequest, CommitRequest, Document, Precondition, Value, Write, write,
};
use firestore::gcloud_sdk::tonic::{self, Code};
use firestore::{FirestoreDb, FirestoreDbOptions};
use rand::Rng;
use tokio::sync::OnceCell;

pub use self::auth::{ConnectError, FirestoreAuth, credentials_from_json};
pub use self::records::EXPIRE_AT;
use crate::domain::{CodeHash, SendDecision, SendPolicy, SubjectKey, VerifyOutcome};
use crate::ports::{OtpStore, StoreError};

/// Where the store keeps its records, and how long it waits for Firestore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirestoreConfig {
    pub project_id: String,
    /// `(default)` unless the project has named databases.
    pub database_id: String,
    /// Prefix of the collections: `<prefix>numbers`, `<prefix>clients`, and `<prefix>ranges`
    /// (only with the per-range limit on).
    pub collection_prefix: String,
    /// The longest one call (connect, read or commit) may take before the store answers
    /// `Unavailable`, so an unreachable Firestore costs a request seconds, not the
    /// function's whole timeout.
    pub call_timeout: Duration,
    /// Tries of one atomic step under contention (read + commit each) before `Contention`.
    pub max_attempts: u32,
}

impl FirestoreConfig {
    /// 3 s per call; 8 tries. Every commit that beats another to a number's record is an
    /// allowed send or a judged attempt, and the limits allow few of those per record
    /// (5 judged attempts per code, 1 send per cooldown), so 8 tries outlast any burst
    /// the limits permit.
    pub fn new(project_id: impl Into<String>) -> Self {
        Self {
            project_id: project_id.into(),
            database_id: firestore::FIREBASE_DEFAULT_DATABASE_ID.to_owned(),
            collection_prefix: "otp_".to_owned(),
            call_timeout: Duration::from_secs(3),
            max_attempts: 8,
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
}

impl std::fmt::Debug for FirestoreStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirestoreStore").field("config", &self.config).field("auth", &self.auth).finish()
    }
}

/// How a commit ended.
enum Committed {
    Done,
    /// A precondition failed: another writer changed a record since it was read.
    Conflict,
}

impl FirestoreStore {
    /// A store of `config`'s database. Nothing is contacted until the first operation (or
    /// [`FirestoreStore::connect_now`]).
    pub fn new(config: FirestoreConfig, auth: FirestoreAuth) -> Self {
        Self { config, auth, db: OnceCell::new(), round_trips: AtomicU64::new(0), conflicts: AtomicU64::new(0) }
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
    ) -> Result<T, StoreError> {
        for attempt in 0..self.config.max_attempts {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            let read = self.read(db, names).await?;
            let (outcome, writes) = step(&read)?;
            if writes.is_empty() {
                return Ok(outcome);
            }
            match self.commit(db, writes).await? {
                Committed::Done => return Ok(outcome),
                Committed::Conflict => {
                    self.conflicts.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        tracing::warn!(
            event = "store_contention",
            attempts = self.config.max_attempts,
            "Firestore commits kept conflicting; giving up"
        );
        Err(StoreError::Contention)
    }

    /// The documents `names`, in order (`None`: absent), in one strongly consistent read.
    async fn read(&self, db: &FirestoreDb, names: &[String]) -> Result<Vec<Option<Document>>, StoreError> {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
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
            Ok(_) => Ok(Committed::Done),
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

#[async_trait]
impl OtpStore for FirestoreStore {
    async fn record_send(
        &self,
        number: &SubjectKey,
        client: &SubjectKey,
        range: Option<&SubjectKey>,
        code: CodeHash,
        policy: &SendPolicy,
        now: DateTime<Utc>,
    ) -> Result<SendDecision, StoreError> {
        let db = self.db().await?;
        // The range document, when the limit is on, joins the same read and the same commit,
        // so all three records decide and change together.
        let mut names = vec![self.document_name(db, "numbers", number), self.document_name(db, "clients", client)];
        names.extend(range.map(|key| self.document_name(db, "ranges", key)));
        self.atomically(db, &names, |read| {
            let (number_doc, client_doc, range_doc) = match read {
                [number_doc, client_doc] if range.is_none() => (number_doc, client_doc, None),
                [number_doc, client_doc, range_doc] if range.is_some() => (number_doc, client_doc, Some(range_doc)),
                _ => return Err(StoreError::Other("batch get answered the wrong number of documents".into())),
            };
            let mut number_record =
                number_doc.as_ref().map(|d| records::number_record(&d.fields)).transpose().map_err(malformed)?;
            let mut client_record =
                client_doc.as_ref().map(|d| records::client_record(&d.fields)).transpose().map_err(malformed)?;
            let mut range_record = range_doc
                .and_then(Option::as_ref)
                .map(|d| records::range_record(&d.fields))
                .transpose()
                .map_err(malformed)?
                .unwrap_or_default();
            let (number_record, client_record) =
                (number_record.get_or_insert_default(), client_record.get_or_insert_default());
            let decision = policy.apply(number_record, client_record, &mut range_record, code, now);
            let writes = match decision {
                SendDecision::Allowed { .. } => {
                    let mut writes = vec![
                        guarded_write(
                            &names[0],
                            records::number_fields(number_record, policy.number_record_expiry(number_record)),
                            number_doc.as_ref(),
                        ),
                        guarded_write(
                            &names[1],
                            records::client_fields(client_record, policy.client_record_expiry(client_record)),
                            client_doc.as_ref(),
                        ),
                    ];
                    if let (Some(name), Some(range_doc)) = (names.get(2), range_doc) {
                        writes.push(guarded_write(
                            name,
                            records::range_fields(&range_record, policy.range_record_expiry(&range_record)),
                            range_doc.as_ref(),
                        ));
                    }
                    writes
                }
                SendDecision::RateLimited { .. } => Vec::new(),
            };
            Ok((decision, writes))
        })
        .await
    }

    async fn judge_attempt(
        &self,
        number: &SubjectKey,
        candidate: &CodeHash,
        now: DateTime<Utc>,
    ) -> Result<VerifyOutcome, StoreError> {
        let db = self.db().await?;
        let names = [self.document_name(db, "numbers", number)];
        self.atomically(db, &names, |read| {
            let Some(Some(doc)) = read.first() else { return Ok((VerifyOutcome::NoPendingCode, Vec::new())) };
            let before = records::number_record(&doc.fields).map_err(malformed)?;
            let mut after = before.clone();
            let outcome = after.judge(candidate, now);
            let writes = if after == before {
                Vec::new()
            } else {
                // The policy is not known here; what the record still needs expires no later
                // than before, so its `expireAt` stays.
                vec![guarded_write(
                    &names[0],
                    records::number_fields(&after, records::expire_at(&doc.fields)),
                    Some(doc),
                )]
            };
            Ok((outcome, writes))
        })
        .await
    }

    async fn withdraw_code(&self, number: &SubjectKey, code: &CodeHash) -> Result<(), StoreError> {
        let db = self.db().await?;
        let names = [self.document_name(db, "numbers", number)];
        self.atomically(db, &names, |read| {
            let Some(Some(doc)) = read.first() else { return Ok(((), Vec::new())) };
            let mut record = records::number_record(&doc.fields).map_err(malformed)?;
            let writes = if record.withdraw(code) {
                vec![guarded_write(
                    &names[0],
                    records::number_fields(&record, records::expire_at(&doc.fields)),
                    Some(doc),
                )]
            } else {
                Vec::new()
            };
            Ok(((), writes))
        })
        .await
    }
}
