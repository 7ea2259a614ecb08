//! The in-memory delivery records: one mutex around them, so each step is atomic. For the
//! local run and tests, like the memory store.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::SubjectKey;
use crate::domain::delivery::{DeliveryRecord, StatusApplied, StatusReport};
use crate::ports::{DeliveryLog, StoreError};

/// Records beyond this count trigger a sweep of the expired ones.
const SWEEP_ABOVE: usize = 10_000;

#[derive(Debug, Default)]
pub struct MemoryDeliveryLog {
    records: Mutex<HashMap<SubjectKey, DeliveryRecord>>,
}

impl MemoryDeliveryLog {
    pub fn new() -> Self {
        Self::default()
    }

    fn records(&self) -> std::sync::MutexGuard<'_, HashMap<SubjectKey, DeliveryRecord>> {
        // Records are replaced whole, never half-written: a poisoned lock is safe to reuse.
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl DeliveryLog for MemoryDeliveryLog {
    async fn record_sent(&self, key: &SubjectKey, record: &DeliveryRecord) -> Result<(), StoreError> {
        let mut records = self.records();
        if records.len() >= SWEEP_ABOVE {
            let now = record.sent_at;
            records.retain(|_, kept| kept.expires_at() > now);
        }
        records.entry(key.clone()).or_insert_with(|| record.clone());
        Ok(())
    }

    async fn apply_status(
        &self,
        key: &SubjectKey,
        report: &StatusReport,
        now: DateTime<Utc>,
    ) -> Result<StatusApplied, StoreError> {
        let mut records = self.records();
        let Some(held) = records.get_mut(key).filter(|held| held.expires_at() > now) else {
            return Ok(StatusApplied::Unknown);
        };
        match held.advanced(report, now) {
            None => Ok(StatusApplied::Unchanged),
            Some(next) => {
                let from = held.state;
                *held = next.clone();
                Ok(StatusApplied::Advanced { from, record: next })
            }
        }
    }
}
