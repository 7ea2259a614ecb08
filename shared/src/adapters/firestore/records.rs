//! The Firestore documents of a number's and a client's records, and their conversion to
//! and from the domain records. Only keyed hashes and times are stored: the document ids
//! are `SubjectKey`s and a pending code is kept as its HMAC.
//!
//! Number document (`<prefix>numbers/<number key>`): the lane of the requests without a
//! device token, as
//! `pending` (map `codeHash` bytes, `createdAt`, `expiresAt`, `attemptsLeft`, `channel` string:
//! `sms`, `whatsapp` or `voice`, absent in codes stored before channels: `sms`; or null),
//! `sends` (array of timestamps), `lastSentAt` (timestamp or null), `failures` (array of
//! timestamps: failed verifies across codes); `devices` (array of maps, one per device
//! token's lane: `device`, the keyed hash of its device id, and the same four fields),
//! `knownUntil` and `approvalCountedAt` (timestamps or null), `expireAt` (TTL).
//! Client document (`<prefix>clients/<client key>`): `sends`, `verifies` (arrays of
//! timestamps), `expireAt` (TTL).
//! Range document (`<prefix>ranges/<range key>`, only with the per-range limit on):
//! `sends`, `expireAt`.
//! Cap shards, each written by blind increments only: `<prefix>budget/<day>-<shard>of<n>`
//! (units of a UTC day's SMS budget), `<prefix>budget/<day>-new-<shard>of<n>` (of its share for
//! numbers not yet known) and `<prefix>countries/<CC>-<hour>-<shard>of<n>` (of a
//! country's hourly cap): `count` (integer), `expireAt`. Tally shards (the conversion
//! guard's figures, per number prefix), blind increments too: `<prefix>approvals/<number prefix>-<hour>-<shard>`:
//! `count` (approvals), `sent` (SMS), `expireAt`.
//! Guard document (`<prefix>guard/<prefix>`, the number prefix `1-415`): `pausedUntil`, `lastTripAt` (timestamps),
//! `trips` (integer), `expireAt`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use firestore::gcloud_sdk::google::firestore::v1::value::ValueType;
use firestore::gcloud_sdk::google::firestore::v1::{ArrayValue, MapValue, Value};
use firestore::gcloud_sdk::prost_types::Timestamp;

use crate::domain::{
    Channel, ClientRecord, CodeHash, DeviceLane, GuardState, Lane, NumberRecord, PendingCode, SendLog, SubjectKey,
    stored_instant,
};

/// The field a Firestore TTL policy on every collection deletes documents by.
pub const EXPIRE_AT: &str = "expireAt";

pub type Fields = HashMap<String, Value>;

/// A stored document that does not have the shape this module writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed stored record: field {0}")]
pub struct MalformedRecord(pub(super) &'static str);

pub fn number_fields(record: &NumberRecord, expire_at: Option<DateTime<Utc>>) -> Fields {
    let mut fields = lane_fields(&record.lane);
    let devices = record
        .devices
        .iter()
        .map(|d| {
            let mut lane = lane_fields(&d.lane);
            lane.insert("device".to_owned(), value(ValueType::StringValue(d.device.as_str().to_owned())));
            value(ValueType::MapValue(MapValue { fields: lane }))
        })
        .collect();
    fields.insert("devices".to_owned(), value(ValueType::ArrayValue(ArrayValue { values: devices })));
    fields.insert("knownUntil".to_owned(), record.known_until.map_or_else(null, timestamp));
    fields.insert("approvalCountedAt".to_owned(), record.approval_counted_at.map_or_else(null, timestamp));
    with_expiry(fields, expire_at)
}

/// A lane's fields: the number document's own (the requests without a device token), or
/// one entry of its `devices`.
fn lane_fields(lane: &Lane) -> Fields {
    let pending = match &lane.pending {
        None => null(),
        Some(p) => map([
            ("codeHash", value(ValueType::BytesValue(p.hash.as_bytes().to_vec()))),
            ("createdAt", timestamp(p.created_at)),
            ("expiresAt", timestamp(p.expires_at)),
            ("attemptsLeft", value(ValueType::IntegerValue(i64::from(p.attempts_left)))),
            ("channel", value(ValueType::StringValue(p.channel.as_str().to_owned()))),
        ]),
    };
    Fields::from([
        ("pending".to_owned(), pending),
        ("sends".to_owned(), timestamps(&lane.sends)),
        ("lastSentAt".to_owned(), lane.last_sent_at.map_or_else(null, timestamp)),
        ("failures".to_owned(), timestamps(&lane.failures)),
    ])
}

pub fn client_fields(record: &ClientRecord, expire_at: Option<DateTime<Utc>>) -> Fields {
    with_expiry(
        Fields::from([
            ("sends".to_owned(), timestamps(&record.sends)),
            ("verifies".to_owned(), timestamps(&record.verifies)),
        ]),
        expire_at,
    )
}

pub fn range_fields(record: &SendLog, expire_at: Option<DateTime<Utc>>) -> Fields {
    with_expiry(Fields::from([("sends".to_owned(), timestamps(&record.sends))]), expire_at)
}

/// A counter as a document (the cap shards and tallies are written by blind increments
/// only; this is their shape for tests).
#[cfg(test)]
pub fn counter_fields(count: u32, expire_at: DateTime<Utc>) -> Fields {
    with_expiry(Fields::from([(COUNT.to_owned(), value(ValueType::IntegerValue(i64::from(count))))]), Some(expire_at))
}

/// The field a counter's blind increments add to: a cap shard's units, a tally's approvals.
pub const COUNT: &str = "count";
/// A tally's SMS.
pub const SENT: &str = "sent";
/// A tally's SMS that did not reach the phone for a carrier's reason.
pub const UNDELIVERED: &str = "undelivered";

pub fn counter(fields: &Fields) -> Result<u32, MalformedRecord> {
    integer_field(fields, COUNT, "count")
}

/// A country-hour tally shard: its SMS and its approvals.
/// A prefix-hour tally shard: its SMS, its approvals, and its SMS that did not reach the
/// phone for a carrier's reason.
pub fn tally(fields: &Fields) -> Result<(u32, u32, u32), MalformedRecord> {
    Ok((
        integer_field(fields, SENT, "sent")?,
        integer_field(fields, COUNT, "count")?,
        integer_field(fields, UNDELIVERED, "undelivered")?,
    ))
}

/// The count a blind increment's commit answered with (its transform result).
pub fn counted(value: Option<&Value>) -> Result<u32, MalformedRecord> {
    match value.and_then(|v| v.value_type.as_ref()) {
        Some(ValueType::IntegerValue(n)) => u32::try_from(*n).map_err(|_| MalformedRecord("count")),
        _ => Err(MalformedRecord("count")),
    }
}

fn integer_field(fields: &Fields, name: &str, what: &'static str) -> Result<u32, MalformedRecord> {
    match fields.get(name).and_then(|v| v.value_type.as_ref()) {
        None => Ok(0),
        Some(ValueType::IntegerValue(n)) => u32::try_from(*n).map_err(|_| MalformedRecord(what)),
        Some(_) => Err(MalformedRecord(what)),
    }
}

pub fn guard_fields(state: &GuardState, expire_at: Option<DateTime<Utc>>) -> Fields {
    with_expiry(
        Fields::from([
            ("pausedUntil".to_owned(), state.paused_until.map_or_else(null, timestamp)),
            ("trips".to_owned(), value(ValueType::IntegerValue(i64::from(state.trips)))),
            ("lastTripAt".to_owned(), state.last_trip_at.map_or_else(null, timestamp)),
        ]),
        expire_at,
    )
}

pub fn guard_state(fields: &Fields) -> Result<GuardState, MalformedRecord> {
    let trips = match fields.get("trips").and_then(|v| v.value_type.as_ref()) {
        None | Some(ValueType::NullValue(_)) => 0,
        Some(ValueType::IntegerValue(n)) => u32::try_from(*n).map_err(|_| MalformedRecord("trips"))?,
        Some(_) => return Err(MalformedRecord("trips")),
    };
    Ok(GuardState {
        paused_until: read_timestamp(fields.get("pausedUntil")),
        trips,
        last_trip_at: read_timestamp(fields.get("lastTripAt")),
    })
}

fn with_expiry(mut fields: Fields, expire_at: Option<DateTime<Utc>>) -> Fields {
    if let Some(at) = expire_at {
        fields.insert(EXPIRE_AT.to_owned(), timestamp(at));
    }
    fields
}

/// `at` as a Firestore value.
pub fn timestamp_value(at: DateTime<Utc>) -> Value {
    timestamp(at)
}

/// An integer Firestore value.
pub fn integer_value(n: i64) -> Value {
    value(ValueType::IntegerValue(n))
}

pub fn number_record(fields: &Fields) -> Result<NumberRecord, MalformedRecord> {
    let devices = match fields.get("devices").and_then(|v| v.value_type.as_ref()) {
        None | Some(ValueType::NullValue(_)) => Vec::new(),
        Some(ValueType::ArrayValue(ArrayValue { values })) => values
            .iter()
            .map(|v| match v.value_type.as_ref() {
                Some(ValueType::MapValue(MapValue { fields: lane })) => {
                    let device = match lane.get("device").and_then(|v| v.value_type.as_ref()) {
                        Some(ValueType::StringValue(key)) => SubjectKey::from_stored(key.clone()),
                        _ => return Err(MalformedRecord("devices.device")),
                    };
                    Ok(DeviceLane { device, lane: lane_record(lane)? })
                }
                _ => Err(MalformedRecord("devices")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(MalformedRecord("devices")),
    };
    Ok(NumberRecord {
        lane: lane_record(fields)?,
        devices,
        known_until: optional_timestamp(fields, "knownUntil")?,
        approval_counted_at: optional_timestamp(fields, "approvalCountedAt")?,
    })
}

fn lane_record(fields: &Fields) -> Result<Lane, MalformedRecord> {
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
            // A code stored before channels were kept went out by SMS.
            let channel = match p.get("channel").and_then(|v| v.value_type.as_ref()) {
                None => Channel::Sms,
                Some(ValueType::StringValue(name)) => Channel::parse(name).ok_or(MalformedRecord("pending.channel"))?,
                Some(_) => return Err(MalformedRecord("pending.channel")),
            };
            Some(PendingCode {
                hash,
                channel,
                created_at: read_timestamp(p.get("createdAt")).ok_or(MalformedRecord("pending.createdAt"))?,
                expires_at: read_timestamp(p.get("expiresAt")).ok_or(MalformedRecord("pending.expiresAt"))?,
                attempts_left,
            })
        }
        Some(_) => return Err(MalformedRecord("pending")),
    };
    Ok(Lane {
        pending,
        sends: read_timestamps(fields, "sends")?,
        last_sent_at: optional_timestamp(fields, "lastSentAt")?,
        failures: read_timestamps(fields, "failures")?,
    })
}

/// A timestamp field that may be absent or null.
fn optional_timestamp(fields: &Fields, name: &'static str) -> Result<Option<DateTime<Utc>>, MalformedRecord> {
    match fields.get(name).and_then(|v| v.value_type.as_ref()) {
        None | Some(ValueType::NullValue(_)) => Ok(None),
        Some(_) => read_timestamp(fields.get(name)).map(Some).ok_or(MalformedRecord(name)),
    }
}

pub fn client_record(fields: &Fields) -> Result<ClientRecord, MalformedRecord> {
    Ok(ClientRecord { sends: read_timestamps(fields, "sends")?, verifies: read_timestamps(fields, "verifies")? })
}

pub fn range_record(fields: &Fields) -> Result<SendLog, MalformedRecord> {
    Ok(SendLog { sends: read_timestamps(fields, "sends")? })
}

/// The stored `expireAt`, kept as is by writes that do not know the policy.
pub fn expire_at(fields: &Fields) -> Option<DateTime<Utc>> {
    read_timestamp(fields.get(EXPIRE_AT))
}

/// `at` as Firestore stores it: to the microsecond ([`stored_instant`]). Domain times
/// round-trip exactly only at that precision, so comparisons go through `stored_instant`.
pub fn to_timestamp(at: DateTime<Utc>) -> Timestamp {
    let at = stored_instant(at);
    Timestamp { seconds: at.timestamp(), nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0) }
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
        let lane = Lane {
            pending: Some(PendingCode {
                hash: CodeHash::from_bytes([7; 32]),
                channel: Channel::Voice,
                created_at: t0(),
                expires_at: t0() + TimeDelta::seconds(600),
                attempts_left: 3,
            }),
            sends: vec![t0() - TimeDelta::seconds(90), t0()],
            last_sent_at: Some(t0()),
            failures: vec![t0() - TimeDelta::seconds(30)],
        };
        let device = Lane { pending: None, failures: vec![t0()], ..lane.clone() };
        let record = NumberRecord {
            lane,
            devices: vec![DeviceLane { device: SubjectKey::from_stored("ab".repeat(32)), lane: device }],
            known_until: Some(t0() + TimeDelta::days(90)),
            approval_counted_at: Some(t0()),
        };
        let fields = number_fields(&record, Some(t0() + TimeDelta::seconds(3600)));
        assert_eq!(number_record(&fields), Ok(record));
        assert_eq!(expire_at(&fields), Some(t0() + TimeDelta::seconds(3600)));
        let empty = NumberRecord::default();
        assert_eq!(number_record(&number_fields(&empty, None)), Ok(empty));
    }

    #[test]
    fn a_pending_codes_channel_is_kept_and_one_stored_without_it_was_an_sms() {
        for channel in Channel::ALL {
            let pending = PendingCode {
                hash: CodeHash::from_bytes([1; 32]),
                channel,
                created_at: t0(),
                expires_at: t0(),
                attempts_left: 1,
            };
            let record =
                NumberRecord { lane: Lane { pending: Some(pending), ..Lane::default() }, ..NumberRecord::default() };
            assert_eq!(
                number_record(&number_fields(&record, None)).map(|r| r.lane.pending.map(|p| p.channel)),
                Ok(Some(channel))
            );
        }
        let lane = Lane {
            pending: Some(PendingCode {
                hash: CodeHash::from_bytes([1; 32]),
                channel: Channel::Voice,
                created_at: t0(),
                expires_at: t0(),
                attempts_left: 1,
            }),
            ..Lane::default()
        };
        let record = NumberRecord { lane, ..NumberRecord::default() };
        let mut fields = number_fields(&record, None);
        let strip = |fields: &mut Fields, channel: Option<Value>| {
            if let Some(Value { value_type: Some(ValueType::MapValue(MapValue { fields: p })) }) =
                fields.get_mut("pending")
            {
                match channel {
                    None => p.remove("channel"),
                    Some(v) => p.insert("channel".into(), v),
                };
            }
        };
        strip(&mut fields, None);
        assert_eq!(number_record(&fields).map(|r| r.lane.pending.map(|p| p.channel)), Ok(Some(Channel::Sms)));
        strip(&mut fields, Some(value(ValueType::StringValue("fax".into()))));
        assert_eq!(number_record(&fields), Err(MalformedRecord("pending.channel")));
    }

    #[test]
    fn client_record_round_trips_and_nanoseconds_are_cut_to_micros() {
        let at = t0() + TimeDelta::nanoseconds(789);
        let fields = client_fields(&ClientRecord { sends: vec![at], verifies: vec![at, t0()] }, None);
        assert_eq!(client_record(&fields), Ok(ClientRecord { sends: vec![t0()], verifies: vec![t0(), t0()] }));
        assert_eq!(expire_at(&fields), None);
    }

    #[test]
    fn nothing_raw_is_stored_and_malformed_records_are_refused() {
        let fields = number_fields(&NumberRecord::default(), None);
        let mut names: Vec<_> = fields.keys().cloned().collect();
        names.sort();
        assert_eq!(names, ["approvalCountedAt", "devices", "failures", "knownUntil", "lastSentAt", "pending", "sends"]);
        let mut bad = fields.clone();
        bad.insert("sends".into(), value(ValueType::StringValue("+14155550123".into())));
        assert_eq!(number_record(&bad), Err(MalformedRecord("sends")));
        let mut bad = fields;
        bad.insert("pending".into(), map([("codeHash", value(ValueType::BytesValue(vec![1, 2, 3])))]));
        assert_eq!(number_record(&bad), Err(MalformedRecord("pending.codeHash")));
    }

    #[test]
    fn counters_ranges_and_guards_round_trip() {
        let fields = counter_fields(41, t0());
        assert_eq!((counter(&fields), expire_at(&fields)), (Ok(41), Some(t0())));
        assert_eq!(counter(&Fields::new()), Ok(0), "a blind increment's first write may see no count");
        let log = SendLog { sends: vec![t0()] };
        assert_eq!(range_record(&range_fields(&log, None)), Ok(log));
        let state = GuardState { paused_until: Some(t0()), trips: 2, last_trip_at: Some(t0() - TimeDelta::seconds(5)) };
        assert_eq!(guard_state(&guard_fields(&state, Some(crate::domain::quota::guard_expiry(&state)))), Ok(state));
        let mut bad = fields;
        bad.insert(COUNT.into(), value(ValueType::IntegerValue(-1)));
        assert_eq!(counter(&bad), Err(MalformedRecord("count")));
    }
}
