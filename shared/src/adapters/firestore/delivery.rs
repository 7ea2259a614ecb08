//! The Firestore delivery records (`<prefix>deliveries/<message key>`): `country`,
//! `prefix` (the guard's), `channel`, `sentAt`, `state` (`queued`, `sent`, `delivered`, `undelivered`, `failed`),
//! `errorCode` (integer or null), `finalAt` (timestamp or null), `expireAt` (TTL). A send
//! creates its record with the precondition "absent"; a callback is one optimistic step of
//! the store (read, `DeliveryRecord::advanced`, commit on the condition "unchanged since
//! read", again on a conflict), so concurrent callbacks of one message never move it back.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use firestore::gcloud_sdk::google::firestore::v1::precondition::ConditionType;
use firestore::gcloud_sdk::google::firestore::v1::value::ValueType;
use firestore::gcloud_sdk::google::firestore::v1::{Document, Precondition, Value, Write, write};

use super::records::{self, EXPIRE_AT, Fields, MalformedRecord};
use super::{Committed, FirestoreStore, guarded_write, malformed};
use crate::domain::delivery::{DeliveryRecord, DeliveryState, StatusApplied, StatusReport};
use crate::domain::{Channel, SubjectKey};
use crate::ports::{DeliveryLog, StoreError};

fn string(text: &str) -> Value {
    Value { value_type: Some(ValueType::StringValue(text.to_owned())) }
}

fn null() -> Value {
    Value { value_type: Some(ValueType::NullValue(0)) }
}

fn delivery_fields(record: &DeliveryRecord) -> Fields {
    Fields::from([
        ("country".to_owned(), string(&record.country)),
        ("prefix".to_owned(), string(&record.prefix)),
        ("channel".to_owned(), string(record.channel.as_str())),
        ("sentAt".to_owned(), records::timestamp_value(record.sent_at)),
        ("state".to_owned(), string(record.state.as_str())),
        ("errorCode".to_owned(), record.error_code.map_or_else(null, |code| records::integer_value(i64::from(code)))),
        ("finalAt".to_owned(), record.final_at.map_or_else(null, records::timestamp_value)),
        (EXPIRE_AT.to_owned(), records::timestamp_value(record.expires_at())),
    ])
}

fn text<'a>(fields: &'a Fields, name: &'static str) -> Result<&'a str, MalformedRecord> {
    match fields.get(name).and_then(|v| v.value_type.as_ref()) {
        Some(ValueType::StringValue(text)) => Ok(text),
        _ => Err(MalformedRecord(name)),
    }
}

fn time(fields: &Fields, name: &'static str) -> Result<Option<DateTime<Utc>>, MalformedRecord> {
    match fields.get(name).and_then(|v| v.value_type.as_ref()) {
        None | Some(ValueType::NullValue(_)) => Ok(None),
        Some(ValueType::TimestampValue(t)) => Ok(Some(
            DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).map_err(|_| MalformedRecord(name))?)
                .ok_or(MalformedRecord(name))?,
        )),
        Some(_) => Err(MalformedRecord(name)),
    }
}

fn delivery_record(fields: &Fields) -> Result<DeliveryRecord, MalformedRecord> {
    let error_code = match fields.get("errorCode").and_then(|v| v.value_type.as_ref()) {
        None | Some(ValueType::NullValue(_)) => None,
        Some(ValueType::IntegerValue(n)) => Some(u32::try_from(*n).map_err(|_| MalformedRecord("errorCode"))?),
        Some(_) => return Err(MalformedRecord("errorCode")),
    };
    Ok(DeliveryRecord {
        country: text(fields, "country")?.to_owned(),
        prefix: text(fields, "prefix")?.to_owned(),
        channel: Channel::parse(text(fields, "channel")?).ok_or(MalformedRecord("channel"))?,
        sent_at: time(fields, "sentAt")?.ok_or(MalformedRecord("sentAt"))?,
        state: DeliveryState::parse(text(fields, "state")?).ok_or(MalformedRecord("state"))?,
        error_code,
        final_at: time(fields, "finalAt")?,
    })
}

#[async_trait]
impl DeliveryLog for FirestoreStore {
    async fn record_sent(&self, key: &SubjectKey, record: &DeliveryRecord) -> Result<(), StoreError> {
        let db = self.db().await?;
        let name = self.document_name(db, "deliveries", key);
        let create = Write {
            current_document: Some(Precondition { condition_type: Some(ConditionType::Exists(false)) }),
            operation: Some(write::Operation::Update(Document {
                name,
                fields: delivery_fields(record),
                ..Default::default()
            })),
            ..Default::default()
        };
        // A record already there (the same sid twice) is kept as it is.
        match self.commit(db, vec![create]).await? {
            Committed::Done(_) | Committed::Conflict => Ok(()),
        }
    }

    async fn apply_status(
        &self,
        key: &SubjectKey,
        report: &StatusReport,
        now: DateTime<Utc>,
    ) -> Result<StatusApplied, StoreError> {
        let db = self.db().await?;
        let name = self.document_name(db, "deliveries", key);
        let names = [name.clone()];
        let (applied, _) = self
            .atomically(db, &names, |read| {
                // A record past its `expireAt` that the TTL has not deleted yet is forgotten too.
                let Some(document) = read.first().and_then(Option::as_ref) else {
                    return Ok((StatusApplied::Unknown, Vec::new()));
                };
                let held = delivery_record(&document.fields).map_err(malformed)?;
                if held.expires_at() <= now {
                    return Ok((StatusApplied::Unknown, Vec::new()));
                }
                match held.advanced(report, now) {
                    None => Ok((StatusApplied::Unchanged, Vec::new())),
                    Some(next) => {
                        let write = guarded_write(&name, delivery_fields(&next), Some(document));
                        Ok((StatusApplied::Advanced { from: held.state, record: next }, vec![write]))
                    }
                }
            })
            .await?;
        Ok(applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_through_its_fields() {
        let sent_at = DateTime::from_timestamp(1_800_000_000, 123_456_000).unwrap_or_default();
        let mut record = DeliveryRecord::sent("BR", "55-119", Channel::Voice, sent_at);
        assert_eq!(delivery_record(&delivery_fields(&record)), Ok(record.clone()));
        record.state = DeliveryState::Undelivered;
        record.error_code = Some(30003);
        record.final_at = Some(sent_at + chrono::TimeDelta::seconds(4));
        assert_eq!(delivery_record(&delivery_fields(&record)), Ok(record.clone()));
        let mut broken = delivery_fields(&record);
        broken.insert("state".into(), string("lost"));
        assert_eq!(delivery_record(&broken), Err(MalformedRecord("state")));
    }
}
