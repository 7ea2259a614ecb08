//! Domain types and rules, free of I/O: parsed phone numbers, codes and their keyed
//! hashes, the send and verify policy, SMS texts and their segments, and session tokens.

pub mod code;
pub mod message;
pub mod phone;
pub mod policy;
pub mod segment;
pub mod token;

pub use code::{CodeHash, CodeLength, OtpCode, Pepper, SubjectKey};
pub use phone::{CountryAllowList, E164Phone};
pub use policy::{
    IpRecord, LimitScope, NumberRecord, PendingCode, RangeRecord, SendDecision, SendPolicy, VerifyOutcome, WindowLimit,
};
pub use token::{SessionClaims, SessionToken, SessionTokenIssuer};
