//! What became of a code once the provider took it: the delivery state Twilio's status
//! callbacks report, the rule that it only moves forward (callbacks repeat and arrive out
//! of order), and the record kept of each message or call, under a keyed hash of its sid.

use chrono::{DateTime, TimeDelta, Utc};

use super::Channel;

/// How long a delivery record is kept after its send: Twilio gives up on a queued message
/// within hours, so two days outlast the latest callback, and nothing piles up.
pub const DELIVERY_RECORD_TTL: TimeDelta = TimeDelta::days(2);

/// A message's (or call's) state, in the order it moves: queued < sent < final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    /// The provider holds it (Twilio: `accepted`, `scheduled`, `queued`; a call's `queued`,
    /// `initiated`).
    Queued,
    /// Handed to the carrier (Twilio: `sending`, `sent`; a call `ringing` or `in-progress`).
    Sent,
    /// The carrier confirmed delivery (`delivered`, WhatsApp's `read`; a call `completed`).
    Delivered,
    /// The carrier could not deliver it (`undelivered`; a call `busy` or `no-answer`).
    Undelivered,
    /// The provider could not send it (`failed`, `canceled`).
    Failed,
}

impl DeliveryState {
    /// Its place in the order: states of the same rank never replace each other.
    fn rank(self) -> u8 {
        match self {
            Self::Queued => 0,
            Self::Sent => 1,
            Self::Delivered | Self::Undelivered | Self::Failed => 2,
        }
    }

    /// Final: no later callback changes it.
    pub fn is_final(self) -> bool {
        self.rank() == 2
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Undelivered => "undelivered",
            Self::Failed => "failed",
        }
    }

    pub fn parse(stored: &str) -> Option<Self> {
        [Self::Queued, Self::Sent, Self::Delivered, Self::Undelivered, Self::Failed]
            .into_iter()
            .find(|state| state.as_str() == stored)
    }

    /// A Message's `MessageStatus`, as Twilio's description enumerates them. `None`: not
    /// a status of a message we send (`receiving`, `received`) or no status of Twilio's.
    pub fn from_message_status(status: &str) -> Option<Self> {
        Some(match status {
            "accepted" | "scheduled" | "queued" => Self::Queued,
            "sending" | "sent" | "partially_delivered" => Self::Sent,
            "delivered" | "read" => Self::Delivered,
            "undelivered" => Self::Undelivered,
            "failed" | "canceled" => Self::Failed,
            _ => return None,
        })
    }

    /// A Call's `CallStatus`: a call that was answered and ended (`completed`) read the code out.
    pub fn from_call_status(status: &str) -> Option<Self> {
        Some(match status {
            "queued" | "initiated" => Self::Queued,
            "ringing" | "in-progress" => Self::Sent,
            "completed" => Self::Delivered,
            "busy" | "no-answer" => Self::Undelivered,
            "failed" | "canceled" => Self::Failed,
            _ => return None,
        })
    }
}

/// A message or call sid: two capital letters and 32 lowercase hex digits (`SM…`, `MM…`
/// for messages, `CA…` for calls). Parse, don't validate: only a `MessageSid` of this
/// shape is ever hashed or looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSid(String);

impl ProviderSid {
    pub fn parse(raw: &str, prefixes: &[&str]) -> Option<Self> {
        let (prefix, hex) = (raw.get(..2)?, raw.get(2..)?);
        let ok = prefixes.contains(&prefix)
            && hex.len() == 32
            && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| Self(raw.to_owned()))
    }

    /// A message's sid (`SM`, `MM`).
    pub fn message(raw: &str) -> Option<Self> {
        Self::parse(raw, &["SM", "MM"])
    }

    /// A call's sid (`CA`).
    pub fn call(raw: &str) -> Option<Self> {
        Self::parse(raw, &["CA"])
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One status callback, parsed: the keyed hash of the sid it names, the state it reports
/// and Twilio's error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    pub state: DeliveryState,
    /// Twilio's `ErrorCode` (30003 unreachable, 30005 unknown, 30006 landline, 30007
    /// filtered as spam, ...).
    pub error_code: Option<u32>,
}

/// What is kept of one message or call: never the number, its text or its sid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// ISO 3166-1 alpha-2 region of the number (`001` for non-geographic ones).
    pub country: String,
    /// The number's prefix as the conversion guard judges it (`E164Phone::prefix`: `55-119`),
    /// a block of numbers, never one.
    pub prefix: String,
    pub channel: Channel,
    pub sent_at: DateTime<Utc>,
    pub state: DeliveryState,
    pub error_code: Option<u32>,
    /// When a final state was reported.
    pub final_at: Option<DateTime<Utc>>,
}

impl DeliveryRecord {
    /// A message the provider just took.
    pub fn sent(country: &str, prefix: &str, channel: Channel, sent_at: DateTime<Utc>) -> Self {
        Self {
            country: country.to_owned(),
            prefix: prefix.to_owned(),
            channel,
            sent_at,
            state: DeliveryState::Queued,
            error_code: None,
            final_at: None,
        }
    }

    /// The record after `report` at `now`, if the report moves it forward (a later state
    /// than the one held); `None`: the report is a repeat or came late, and changes nothing.
    pub fn advanced(&self, report: &StatusReport, now: DateTime<Utc>) -> Option<Self> {
        if report.state.rank() <= self.state.rank() {
            return None;
        }
        Some(Self {
            state: report.state,
            error_code: report.error_code.or(self.error_code),
            final_at: report.state.is_final().then_some(now),
            ..self.clone()
        })
    }

    /// When the store may forget it.
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.sent_at + DELIVERY_RECORD_TTL
    }
}

/// What one callback did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusApplied {
    /// No record of this sid (not ours, or forgotten): ignored.
    Unknown,
    /// A repeat, or a state older than the one held: nothing changed.
    Unchanged,
    /// The record moved from `from` to its new state.
    Advanced { from: DeliveryState, record: DeliveryRecord },
}

/// A message that was not delivered for good, as the conversion guard (and the resend's
/// offer of another channel) will want to hear of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryFailure {
    pub country: String,
    /// The guard's prefix of the number.
    pub prefix: String,
    pub channel: Channel,
    pub state: DeliveryState,
    pub error_code: Option<u32>,
    pub sent_at: DateTime<Utc>,
}

/// Twilio's error code of an SMS to a number that does not exist ("unknown destination
/// handset"): what a spray of invented numbers gets.
pub const UNKNOWN_DESTINATION: u32 = 30005;

impl DeliveryFailure {
    /// Whether the code did not reach the phone for a carrier's reason (unreachable handset,
    /// filtering, a carrier outage, a failed send): then no one could have approved it, and the
    /// conversion guard leaves it out of its prefix's sends, so a carrier problem is not
    /// taken for an attack. An SMS to a number that does not exist (30005) stays counted: it
    /// is what a spray of invented numbers makes, and the guard is there for it.
    pub fn is_carrier_problem(&self) -> bool {
        self.error_code != Some(UNKNOWN_DESTINATION)
    }
}

impl StatusApplied {
    /// The message this callback made undelivered or failed, if it did: the event the
    /// conversion guard can count against a prefix as a carrier problem, not an attack.
    pub fn delivery_failure(&self) -> Option<DeliveryFailure> {
        match self {
            Self::Advanced { record, .. }
                if matches!(record.state, DeliveryState::Undelivered | DeliveryState::Failed) =>
            {
                Some(DeliveryFailure {
                    country: record.country.clone(),
                    prefix: record.prefix.clone(),
                    channel: record.channel,
                    state: record.state,
                    error_code: record.error_code,
                    sent_at: record.sent_at,
                })
            }
            _ => None,
        }
    }

    /// The time from the send to its delivery, if this callback reported the delivery.
    pub fn delivery_latency(&self) -> Option<TimeDelta> {
        match self {
            Self::Advanced { record, .. } if record.state == DeliveryState::Delivered => {
                record.final_at.map(|at| (at - record.sent_at).max(TimeDelta::zero()))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap_or_default()
    }

    fn report(state: DeliveryState) -> StatusReport {
        StatusReport { state, error_code: None }
    }

    #[test]
    fn states_only_move_forward_and_finals_never_change() {
        use DeliveryState::*;
        let record = DeliveryRecord::sent("BR", "55-119", Channel::Sms, at(0));
        let sent = record.advanced(&report(Sent), at(1)).expect("queued -> sent");
        assert_eq!(sent.state, Sent);
        assert_eq!(sent.advanced(&report(Queued), at(2)), None, "a late queued");
        assert_eq!(sent.advanced(&report(Sent), at(2)), None, "a repeat");
        let delivered = sent.advanced(&report(Delivered), at(3)).expect("sent -> delivered");
        assert_eq!((delivered.state, delivered.final_at), (Delivered, Some(at(3))));
        for late in [Queued, Sent, Delivered, Undelivered, Failed] {
            assert_eq!(delivered.advanced(&report(late), at(4)), None, "{late:?} after delivered");
        }
        // Out of order: the final state first, then the sent that preceded it.
        let undelivered = record
            .advanced(&StatusReport { state: Undelivered, error_code: Some(30003) }, at(5))
            .expect("queued -> undelivered");
        assert_eq!(undelivered.advanced(&report(Sent), at(6)), None);
        assert_eq!(undelivered.advanced(&report(Delivered), at(6)), None, "finals never change");
        assert_eq!(undelivered.error_code, Some(30003));
    }

    #[test]
    fn twilio_statuses_map_and_unknown_ones_do_not() {
        use DeliveryState::*;
        for (status, state) in [
            ("accepted", Queued),
            ("queued", Queued),
            ("sending", Sent),
            ("sent", Sent),
            ("delivered", Delivered),
            ("read", Delivered),
            ("undelivered", Undelivered),
            ("failed", Failed),
            ("canceled", Failed),
        ] {
            assert_eq!(DeliveryState::from_message_status(status), Some(state), "{status}");
        }
        for status in ["received", "receiving", "DELIVERED", "", "delivered "] {
            assert_eq!(DeliveryState::from_message_status(status), None, "{status:?}");
        }
        assert_eq!(DeliveryState::from_call_status("completed"), Some(Delivered));
        assert_eq!(DeliveryState::from_call_status("no-answer"), Some(Undelivered));
        assert_eq!(DeliveryState::from_call_status("busy"), Some(Undelivered));
        assert_eq!(DeliveryState::from_call_status("delivered"), None);
        for state in [Queued, Sent, Delivered, Undelivered, Failed] {
            assert_eq!(DeliveryState::parse(state.as_str()), Some(state));
        }
    }

    #[test]
    fn sids_have_twilios_shape() {
        let hex = "0123456789abcdef0123456789abcdef";
        assert!(ProviderSid::message(&format!("SM{hex}")).is_some());
        assert!(ProviderSid::message(&format!("MM{hex}")).is_some());
        assert!(ProviderSid::call(&format!("CA{hex}")).is_some());
        for bad in [
            format!("CA{hex}"),
            format!("SM{}", &hex[1..]),
            format!("SM{hex}0"),
            format!("SM{}", hex.to_uppercase()),
            format!("sm{hex}"),
            "SM".to_owned(),
            String::new(),
            format!("SM{}é", &hex[..31]),
            format!("SM../{}", &hex[3..]),
        ] {
            assert!(ProviderSid::message(&bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn the_guards_event_is_a_final_failure_and_latency_a_delivery() {
        use DeliveryState::*;
        let record = DeliveryRecord::sent("IN", "91-98", Channel::Sms, at(0));
        let failed = record.advanced(&StatusReport { state: Undelivered, error_code: Some(30005) }, at(9));
        let applied = StatusApplied::Advanced { from: Queued, record: failed.clone().unwrap_or(record.clone()) };
        let failure = applied.delivery_failure().expect("undelivered is a failure");
        assert_eq!((failure.country.as_str(), failure.error_code, failure.state), ("IN", Some(30005), Undelivered));
        assert_eq!(failure.prefix, "91-98", "the guard's prefix");
        assert_eq!(applied.delivery_latency(), None);
        let delivered = record.advanced(&report(Delivered), at(7)).unwrap_or(record.clone());
        let applied = StatusApplied::Advanced { from: Queued, record: delivered };
        assert_eq!(applied.delivery_failure(), None);
        assert_eq!(applied.delivery_latency(), Some(TimeDelta::seconds(7)));
        assert_eq!(StatusApplied::Unchanged.delivery_failure(), None);
        assert_eq!(StatusApplied::Unknown.delivery_latency(), None);
    }
}
