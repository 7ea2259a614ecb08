//! Domain types and rules, free of I/O: parsed phone numbers, codes and their keyed
//! hashes, the send and verify policy, SMS texts and their segments, and session tokens.

pub mod changes;
pub mod channel;
pub mod code;
pub mod delivery;
pub mod device;
pub mod message;
pub mod phone;
pub mod policy;
pub mod quota;
pub mod segment;
pub mod token;

pub use changes::{SendChanges, ShardUnit, VerifyChanges, Write};
pub use channel::{Channel, ChannelSet};
pub use code::{CodeHash, CodeLength, OtpCode, Pepper, SubjectKey};
pub use phone::{CountryAllowList, E164Phone};
pub use policy::{
    Asker, ClientRecord, Counted, DeviceLane, GuardTrip, Lane, LimitScope, NumberRecord, Overdrawn, PendingCode,
    Reservation, SendDecision, SendLog, SendPolicy, SendReads, SendRecords, VerifyOutcome, VerifyPolicy, WindowLimit,
    stored_instant,
};
pub use quota::{ConversionGuard, CountryCap, CountryRecords, GuardState};
pub use token::{SessionClaims, SessionToken, SessionTokenIssuer};
