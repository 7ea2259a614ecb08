//! The outbox SMS sender: keeps every message in memory (newest first) and prints it.
//! For the local run (`GET /_dev/outbox`) and tests; never for real numbers.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::ports::{Clock, SmsError, SmsMessage, SmsSender};

#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxEntry {
    pub to: String,
    pub body: String,
    #[serde(serialize_with = "rfc3339_seconds")]
    pub sent_at: DateTime<Utc>,
}

impl std::fmt::Debug for OutboxEntry {
    // Debug output reaches logs: the body holds the code, `to` the whole number.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxEntry").field("sent_at", &self.sent_at).finish_non_exhaustive()
    }
}

pub struct Outbox {
    clock: Arc<dyn Clock>,
    print: bool,
    entries: Mutex<Vec<OutboxEntry>>,
}

impl Outbox {
    /// An outbox that prints each message to standard output when `print` is set.
    pub fn new(clock: Arc<dyn Clock>, print: bool) -> Self {
        Self { clock, print, entries: Mutex::new(Vec::new()) }
    }

    /// Every message sent so far, newest first.
    pub fn list(&self) -> Vec<OutboxEntry> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.iter().rev().cloned().collect()
    }
}

#[async_trait]
impl SmsSender for Outbox {
    async fn send(&self, message: &SmsMessage) -> Result<(), SmsError> {
        let entry = OutboxEntry { to: message.to.clone(), body: message.body.clone(), sent_at: self.clock.now() };
        if self.print {
            println!("[outbox] SMS to {} at {}:\n{}\n", entry.to, entry.sent_at.to_rfc3339(), entry.body);
        }
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).push(entry);
        Ok(())
    }
}

fn rfc3339_seconds<S: serde::Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}
