//! The Firestore documents of a number's and a client's records, and their conversion to
//! and from the domain records. Only keyed hashes and times are stored: the document ids
//! are `SubjectKey`s and a pending code is kept as its HMAC.
//!
//! Number document (`<prefix>numbers/<number key>`):
//! `pending` (map `codeHash` bytes, `createdAt`, `expiresAt`, `attemptsLeft`, or null),
//! `sends` (array of timestamps), `lastSentAt` (timestamp or null), `expireAt` (TTL).
//! Client document (`<prefix>clients/<client key>`): `sends`, `expireAt` (TTL).
//! Range document (`<prefix>ranges/<range key>`, only with the per-range limit on): the
//! same fields as a client document.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use firestore::gcloud_sdk::google::firestore::v1::value::ValueType;
use firestore::gcloud_sdk::google::firestore::v1::{ArrayValue, MapValue, Value};
use firestore::gcloud_sdk::prost_types::Timestamp;

use crate::domain::{CodeHash, IpRecord, NumberRecord, PendingCode, RangeRecord};

/// The field a Firestore TTL policy on every collection deletes documents by.
pub const EXPIRE_AT: &str = "expireAt";

type Fields = HashMap<String, Value>;

/// A stored document that does not have the shape this module writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed stored record: field {0}")]
pub struct MalformedRecord(&'static str);

pub fn number_fields(record: &NumberRecord, expire_at: Option<DateTime<Utc>>) -> Fields {
    let pending = match &record.pending {
        None => null(),
        Some(p) => map([
            ("codeHash", value(ValueType::BytesValue(p.hash.as_bytes().to_vec()))),
            ("createdAt", timestamp(p.created_at)),
            ("expiresAt", timestamp(p.expires_at)),
            ("attemptsLeft", value(ValueType::IntegerValue(i64::from(p.attempts_left)))),
        ]),
    };
    let mut fields = Fields::from([
        ("pending".to_owned(), pending),
        ("sends".to_owned(), timestamps(&record.sends)),
        ("lastSentAt".to_owned(), record.last_sent_at.map_or_else(null, timestamp)),
    ]);
    if let Some(at) = expire_at {
        fields.insert(EXPIRE_AT.to_owned(), timestamp(at));
    }
    fields
}

pub fn client_fields(record: &IpRecord, expire_at: Option<DateTime<Utc>>) -> Fields {
    let mut fields = Fields::from([("sends".to_owned(), timestamps(&record.sends))]);
    if let Some(at) = expire_at {
        fields.insert(EXPIRE_AT.to_owned(), timestamp(at));
    }
    fields
}

/// A range's record has a client's shape: a sliding log of sends.
pub fn range_fields(record: &RangeRecord, expire_at: Option<DateTime<Utc>>) -> Fields {
    client_fields(record, expire_at)
}

pub fn number_record(fields: &Fields) -> Result<NumberRecord, MalformedRecord> {
    let pending = match fields.get("pending").and_then(|v| v.value_type.as_ref()) {
        None | Some(ValueType::NullValue(_)) => None,
        Some(ValueType::MapValue(MapValue { fields: p })) => {
            let hash = match p.get("codeHash").and_then(|v| v.value_type.as_ref()) {
                Some(ValueType::BytesValue(bytes)) => {
                    CodeHash::from_bytes(bytes.as_slice().try_into().map_err(|_| MalformedRecord("pending.codeHash"))?)
                }
                _ => return Err(MalformedRecord("pending.codeHash")),
            };
            let attempts_left = match p.get("attemptsLeft").and_then(|v| v.value_type.as_ref()) {
                Some(ValueType::IntegerValue(n)) => {
                    u32::try_from(*n).map_err(|_| MalformedRecord("pending.attemptsLeft"))?
                }
                _ => return Err(MalformedRecord("pending.attemptsLeft")),
            };
            Some(PendingCode {
                hash,
                created_at: read_timestamp(p.get("createdAt")).ok_or(MalformedRecord("pending.createdAt"))?,
                expires_at: read_timestamp(p.get("expiresAt")).ok_or(MalformedRecord("pending.expiresAt"))?,
                attempts_left,
            })
        }
        Some(_) => return Err(MalformedRecord("pending")),
    };
    let last_sent_at = match fields.get("lastSentAt").and_then(|v| v.value_type.as_ref()) {
        None | Some(ValueType::NullValue(_)) => None,
        Some(_) => Some(read_timestamp(fields.get("lastSentAt")).ok_or(MalformedRecord("lastSentAt"))?),
    };
    Ok(NumberRecord { pending, sends: read_timestamps(fields, "sends")?, last_sent_at })
}

pub fn client_record(fields: &Fields) -> Result<IpRecord, MalformedRecord> {
    Ok(IpRecord { sends: read_timestamps(fields, "sends")? })
}

pub fn range_record(fields: &Fields) -> Result<RangeRecord, MalformedRecord> {
    client_record(fields)
}

/// The stored `expireAt`, kept as is by writes that do not know the policy.
pub fn expire_at(fields: &Fields) -> Option<DateTime<Utc>> {
    read_timestamp(fields.get(EXPIRE_AT))
}

/// `at` as Firestore stores it: to the microsecond. Domain times round-trip exactly only
/// at that precision, so callers that compare times keep to it.
pub fn to_timestamp(at: DateTime<Utc>) -> Timestamp {
    let micros = at.timestamp_subsec_micros();
    Timestamp { seconds: at.timestamp(), nanos: i32::try_from(micros * 1000).unwrap_or(0) }
}

fn value(value_type: ValueType) -> Value {
    Value { value_type: Some(value_type) }
}

fn null() -> Value {
    value(ValueType::NullValue(0))
}

fn timestamp(at: DateTime<Utc>) -> Value {
    value(ValueType::TimestampValue(to_timestamp(at)))
}

fn timestamps(times: &[DateTime<Utc>]) -> Value {
    value(ValueType::ArrayValue(ArrayValue { values: times.iter().copied().map(timestamp).collect() }))
}

fn map<const N: usize>(entries: [(&str, Value); N]) -> Value {
    value(ValueType::MapValue(MapValue { fields: entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect() }))
}

fn read_timestamp(value: Option<&Value>) -> Option<DateTime<Utc>> {
    match value?.value_type.as_ref()? {
        ValueType::TimestampValue(t) => DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?),
        _ => None,
    }
}

fn read_timestamps(fields: &Fields, name: &'static str) -> Result<Vec<DateTime<Utc>>, MalformedRecord> {
    match fields.get(name).and_then(|v| v.value_type.as_ref()) {
        None | Some(ValueType::NullValue(_)) => Ok(Vec::new()),
        Some(ValueType::ArrayValue(ArrayValue { values })) => {
            values.iter().map(|v| read_timestamp(Some(v)).ok_or(MalformedRecord(name))).collect()
        }
        Some(_) => Err(MalformedRecord(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-24T15:00:00.123456Z").unwrap().into()
    }

    #[test]
    fn number_record_round_trips() {
        let record = NumberRecord {
            pending: Some(PendingCode {
                hash: CodeHash::from_bytes([7; 32]),
                created_at: t0(),
                expires_at: t0() + TimeDelta::seconds(600),
                attempts_left: 3,
            }),
            sends: vec![t0() - TimeDelta::seconds(90), t0()],
            last_sent_at: Some(t0()),
        };
        let fields = number_fields(&record, Some(t0() + TimeDelta::seconds(3600)));
        assert_eq!(number_record(&fields), Ok(record));
        assert_eq!(expire_at(&fields), Some(t0() + TimeDelta::seconds(3600)));
        let empty = NumberRecord::default();
        assert_eq!(number_record(&number_fields(&empty, None)), Ok(empty));
    }

    #[test]
    fn client_record_round_trips_and_nanoseconds_are_cut_to_micros() {
        let at = t0() + TimeDelta::nanoseconds(789);
        let fields = client_fields(&IpRecord { sends: vec![at] }, None);
        assert_eq!(client_record(&fields), Ok(IpRecord { sends: vec![t0()] }));
        assert_eq!(expire_at(&fields), None);
    }

    #[test]
    fn nothing_raw_is_stored_and_malformed_records_are_refused() {
        let fields = number_fields(&NumberRecord::default(), None);
        let mut names: Vec<_> = fields.keys().cloned().collect();
        names.sort();
        assert_eq!(names, ["lastSentAt", "pending", "sends"]);
        let mut bad = fields.clone();
        bad.insert("sends".into(), value(ValueType::StringValue("+14155550123".into())));
        assert_eq!(number_record(&bad), Err(MalformedRecord("sends")));
        let mut bad = fields;
        bad.insert("pending".into(), map([("codeHash", value(ValueType::BytesValue(vec![1, 2, 3])))]));
        assert_eq!(number_record(&bad), Err(MalformedRecord("pending.codeHash")));
    }
}
