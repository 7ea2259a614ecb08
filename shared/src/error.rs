//! The one error type of the API, and the one place that maps it to an HTTP status,
//! an `error.code` of the contract, a safe message and its extra fields.

use http::StatusCode;

use crate::domain::ChannelSet;
use crate::service::{SendError, StatusError, Unavailable, VerifyError};

/// Every way a request can fail, as the contract (API.md) names them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    #[error("invalid phone number")]
    InvalidPhone,
    #[error("bot challenge token missing")]
    CaptchaRequired,
    #[error("bot challenge failed")]
    CaptchaFailed,
    /// `channel` names a channel this deployment does not offer; `channels` are those it does.
    #[error("channel not offered")]
    ChannelNotAllowed { channels: ChannelSet },
    /// Answered by API Gateway for a missing or invalid API key; here for completeness.
    #[error("forbidden")]
    Forbidden,
    #[error("code is not {length} digits")]
    InvalidCodeFormat { length: usize },
    #[error("incorrect code, {attempts_remaining} attempts left")]
    IncorrectCode { attempts_remaining: u32 },
    #[error("country not allowed")]
    CountryNotAllowed,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("no pending code")]
    CodeExpired,
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("phone unreachable")]
    PhoneUnreachable,
    #[error("rate limited for {retry_after_seconds} s")]
    RateLimited { retry_after_seconds: u64 },
    #[error("too many attempts")]
    TooManyAttempts,
    #[error("SMS provider failed")]
    SmsFailed,
    #[error("service unavailable")]
    ServiceUnavailable,
    #[error("internal error")]
    Internal,
    /// Local run only: a path neither function serves.
    #[error("not found")]
    NotFound,
}

/// How long a client should wait before retrying a `503`.
pub const UNAVAILABLE_RETRY_AFTER_SECONDS: u64 = 5;

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidRequest(_)
            | Self::InvalidPhone
            | Self::InvalidCodeFormat { .. }
            | Self::CaptchaRequired
            | Self::ChannelNotAllowed { .. } => StatusCode::BAD_REQUEST,
            Self::CaptchaFailed | Self::Forbidden => StatusCode::FORBIDDEN,
            Self::IncorrectCode { .. } => StatusCode::UNAUTHORIZED,
            Self::CountryNotAllowed => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::CodeExpired => StatusCode::GONE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PhoneUnreachable => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited { .. } | Self::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
            Self::SmsFailed => StatusCode::BAD_GATEWAY,
            Self::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidPhone => "invalid_phone",
            Self::InvalidCodeFormat { .. } => "invalid_code_format",
            Self::CaptchaRequired => "captcha_required",
            Self::CaptchaFailed => "captcha_failed",
            Self::ChannelNotAllowed { .. } => "channel_not_allowed",
            Self::Forbidden => "forbidden",
            Self::IncorrectCode { .. } => "incorrect_code",
            Self::CountryNotAllowed => "country_not_allowed",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::CodeExpired => "code_expired",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::PhoneUnreachable => "phone_unreachable",
            Self::RateLimited { .. } => "rate_limited",
            Self::TooManyAttempts => "too_many_attempts",
            Self::SmsFailed => "sms_failed",
            Self::ServiceUnavailable => "service_unavailable",
            Self::Internal => "internal_error",
            Self::NotFound => "not_found",
        }
    }

    /// The message shown to the caller: never anything internal.
    pub fn message(&self) -> String {
        match self {
            Self::InvalidRequest(detail) => format!("The request is invalid: {detail}."),
            Self::InvalidPhone => "The phone number is not a valid mobile number.".into(),
            Self::InvalidCodeFormat { length } => format!("The code must be exactly {length} digits."),
            Self::CaptchaRequired => "Complete the challenge (captchaToken) to request a code.".into(),
            Self::CaptchaFailed => "The challenge was not passed; try it again.".into(),
            Self::ChannelNotAllowed { channels } => {
                format!("This channel is not offered; use one of: {}.", channels.names().join(", "))
            }
            Self::Forbidden => "Forbidden.".into(),
            Self::IncorrectCode { .. } => "The code is incorrect.".into(),
            Self::CountryNotAllowed => "Numbers from this country are not supported.".into(),
            Self::MethodNotAllowed => "This method is not allowed here.".into(),
            Self::CodeExpired => "There is no pending code for this number; request a new one.".into(),
            Self::PayloadTooLarge => "The request body is larger than 4 KiB.".into(),
            Self::UnsupportedMediaType => "The request body must be JSON (Content-Type: application/json).".into(),
            Self::PhoneUnreachable => "This number cannot receive the code on this channel.".into(),
            Self::RateLimited { .. } => "Too many requests; try again later.".into(),
            Self::TooManyAttempts => "Too many incorrect attempts; request a new code.".into(),
            Self::SmsFailed => "The code could not be sent; try again later.".into(),
            Self::ServiceUnavailable => "The service is temporarily unavailable; try again later.".into(),
            Self::Internal => "Something went wrong on our side.".into(),
            Self::NotFound => "No such endpoint.".into(),
        }
    }

    /// The `Retry-After` header value, for errors that carry one.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after_seconds } => Some(*retry_after_seconds),
            Self::ServiceUnavailable => Some(UNAVAILABLE_RETRY_AFTER_SECONDS),
            _ => None,
        }
    }

    /// The JSON body: `{"error": {"code", "message", ...extra fields}}`.
    pub fn body(&self) -> serde_json::Value {
        let mut error = serde_json::json!({ "code": self.code(), "message": self.message() });
        match self {
            Self::IncorrectCode { attempts_remaining } => {
                error["attemptsRemaining"] = (*attempts_remaining).into();
            }
            Self::RateLimited { retry_after_seconds } => {
                error["retryAfterSeconds"] = (*retry_after_seconds).into();
            }
            Self::ChannelNotAllowed { channels } => {
                error["channels"] = channels.names().into();
            }
            _ => {}
        }
        serde_json::json!({ "error": error })
    }
}

/// The contract's answer to each way a send fails: the one place a use case's error
/// becomes a status and a code.
impl From<StatusError> for ApiError {
    fn from(error: StatusError) -> Self {
        match error {
            StatusError::NotServed => Self::NotFound,
            StatusError::Unavailable => Self::ServiceUnavailable,
        }
    }
}

impl From<SendError> for ApiError {
    fn from(error: SendError) -> Self {
        match error {
            SendError::ChannelNotOffered { offered } => Self::ChannelNotAllowed { channels: offered },
            // A number we do not text is answered as one that cannot receive codes.
            SendError::NumberTypeNotServed | SendError::InvalidNumber => Self::InvalidPhone,
            SendError::CountryNotServed => Self::CountryNotAllowed,
            SendError::ChallengeRequired => Self::CaptchaRequired,
            SendError::ChallengeRejected => Self::CaptchaFailed,
            SendError::RateLimited { retry_after_seconds } => Self::RateLimited { retry_after_seconds },
            SendError::Unreachable => Self::PhoneUnreachable,
            SendError::DeliveryFailed => Self::SmsFailed,
            SendError::Unavailable => Self::ServiceUnavailable,
        }
    }
}

impl From<VerifyError> for ApiError {
    fn from(error: VerifyError) -> Self {
        match error {
            VerifyError::Incorrect { attempts_remaining } => Self::IncorrectCode { attempts_remaining },
            VerifyError::TooManyAttempts => Self::TooManyAttempts,
            VerifyError::NoPendingCode => Self::CodeExpired,
            VerifyError::RateLimited { retry_after_seconds } => Self::RateLimited { retry_after_seconds },
            VerifyError::Unavailable => Self::ServiceUnavailable,
            VerifyError::Internal => Self::Internal,
        }
    }
}

impl From<Unavailable> for ApiError {
    fn from(_: Unavailable) -> Self {
        Self::ServiceUnavailable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_fields_are_present_where_the_contract_says() {
        let body = ApiError::IncorrectCode { attempts_remaining: 4 }.body();
        assert_eq!(body["error"]["code"], "incorrect_code");
        assert_eq!(body["error"]["attemptsRemaining"], 4);
        let body = ApiError::RateLimited { retry_after_seconds: 42 }.body();
        assert_eq!(body["error"]["retryAfterSeconds"], 42);
        assert_eq!(ApiError::RateLimited { retry_after_seconds: 42 }.retry_after(), Some(42));
        assert_eq!(ApiError::ServiceUnavailable.retry_after(), Some(UNAVAILABLE_RETRY_AFTER_SECONDS));
        assert!(ApiError::CodeExpired.body()["error"].get("attemptsRemaining").is_none());
        let channels = ChannelSet::parse("sms,voice").unwrap();
        let refused = ApiError::ChannelNotAllowed { channels };
        assert_eq!((refused.status(), refused.code()), (StatusCode::BAD_REQUEST, "channel_not_allowed"));
        assert_eq!(refused.body()["error"]["channels"], serde_json::json!(["sms", "voice"]));
    }

    /// One of each variant; the match below has no wildcard, so a new variant does not
    /// compile until it is listed here (and so checked against the contract's docs).
    fn every_error() -> Vec<ApiError> {
        let all = vec![
            ApiError::InvalidRequest("x"),
            ApiError::ChannelNotAllowed { channels: crate::domain::ChannelSet::default() },
            ApiError::InvalidPhone,
            ApiError::CaptchaRequired,
            ApiError::CaptchaFailed,
            ApiError::Forbidden,
            ApiError::InvalidCodeFormat { length: 6 },
            ApiError::IncorrectCode { attempts_remaining: 1 },
            ApiError::CountryNotAllowed,
            ApiError::MethodNotAllowed,
            ApiError::CodeExpired,
            ApiError::PayloadTooLarge,
            ApiError::UnsupportedMediaType,
            ApiError::PhoneUnreachable,
            ApiError::RateLimited { retry_after_seconds: 1 },
            ApiError::TooManyAttempts,
            ApiError::SmsFailed,
            ApiError::ServiceUnavailable,
            ApiError::Internal,
            ApiError::NotFound,
        ];
        for error in &all {
            match error {
                ApiError::InvalidRequest(_)
                | ApiError::ChannelNotAllowed { .. }
                | ApiError::InvalidPhone
                | ApiError::CaptchaRequired
                | ApiError::CaptchaFailed
                | ApiError::Forbidden
                | ApiError::InvalidCodeFormat { .. }
                | ApiError::IncorrectCode { .. }
                | ApiError::CountryNotAllowed
                | ApiError::MethodNotAllowed
                | ApiError::CodeExpired
                | ApiError::PayloadTooLarge
                | ApiError::UnsupportedMediaType
                | ApiError::PhoneUnreachable
                | ApiError::RateLimited { .. }
                | ApiError::TooManyAttempts
                | ApiError::SmsFailed
                | ApiError::ServiceUnavailable
                | ApiError::Internal
                | ApiError::NotFound => {}
            }
        }
        all
    }

    /// docs/API.md's error table and docs/openapi.yaml's `ErrorCode` enum name exactly
    /// the codes the code answers, each with its status.
    #[test]
    fn the_contract_docs_list_exactly_the_codes_answered() {
        let answered: std::collections::BTreeSet<(u16, String)> =
            every_error().iter().map(|e| (e.status().as_u16(), e.code().to_owned())).collect();
        let api_md = include_str!("../../docs/API.md");
        let table = api_md.split("\n## Errors").nth(1).and_then(|rest| rest.split("\n## ").next()).unwrap_or("");
        let documented: std::collections::BTreeSet<(u16, String)> = table
            .lines()
            .filter_map(|line| {
                let cells: Vec<&str> = line.trim().trim_matches('|').split('|').map(str::trim).collect();
                let status = cells.first()?.parse::<u16>().ok()?;
                Some((status, cells.get(1)?.trim_matches('`').to_owned()))
            })
            .collect();
        assert_eq!(documented, answered, "docs/API.md's error table against ApiError");
        let openapi = include_str!("../../docs/openapi.yaml");
        let enum_block = openapi.split("    ErrorCode:").nth(1).and_then(|b| b.split("enum:").nth(1)).unwrap_or("");
        let listed: std::collections::BTreeSet<String> =
            enum_block.lines().skip(1).map_while(|line| line.trim().strip_prefix("- ").map(str::to_owned)).collect();
        let codes: std::collections::BTreeSet<String> = answered.into_iter().map(|(_, code)| code).collect();
        assert_eq!(listed, codes, "docs/openapi.yaml's ErrorCode against ApiError");
    }
}
