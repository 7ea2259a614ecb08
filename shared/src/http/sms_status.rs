//! `POST /api/sms-status`: Twilio's status callbacks. Checked in this order, each answer
//! API.md's: served at all (`404`), the method, size and media type (`405`, `413`, `415`),
//! a readable form (`400`), Twilio's signature (`403`), then its fields (`400`). Nothing the
//! request carries is logged: its `To` is a number, and anyone may post here.

use bytes::Bytes;
use secrecy::ExposeSecret;

use super::request::post_within_limit;
use crate::adapters::twilio_webhook;
use crate::domain::delivery::{DeliveryState, ProviderSid, StatusReport};
use crate::error::ApiError;
use crate::service::{OtpService, StatusCallback};

/// More fields than any callback of Twilio's carries (about 20): refused before any work.
pub const MAX_FIELDS: usize = 64;

pub(super) async fn answer(
    service: Option<&OtpService>,
    request: &http::Request<Bytes>,
) -> Result<http::Response<String>, ApiError> {
    let service = service.ok_or(ApiError::ServiceUnavailable)?;
    let Some(url) = service.status_callback_url() else { return Err(ApiError::NotFound) };
    let params = form_body(request)?;
    let signature = request.headers().get("x-twilio-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let key = service.callback_signing_key().await.map_err(ApiError::from)?;
    if !twilio_webhook::is_signed(key.expose_secret().as_bytes(), url, &params, signature) {
        tracing::info!(event = "status_callback_forbidden", "status callback refused: no valid signature");
        return Err(ApiError::Forbidden);
    }
    let callback = parse_callback(&params).inspect_err(|_| {
        tracing::warn!(event = "status_callback_unreadable", "a signed status callback of a shape we do not read");
    })?;
    service.apply_status(&callback).await.map_err(ApiError::from)?;
    let mut response = http::Response::new(String::new());
    *response.status_mut() = http::StatusCode::NO_CONTENT;
    Ok(response)
}

/// Method, size, media type, then the form's fields, in order.
fn form_body(request: &http::Request<Bytes>) -> Result<Vec<(String, String)>, ApiError> {
    post_within_limit(request)?;
    let form = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    if !form {
        return Err(ApiError::UnsupportedMediaType);
    }
    let params: Vec<(String, String)> =
        serde_urlencoded::from_bytes(request.body()).map_err(|_| ApiError::InvalidRequest("the body is not a form"))?;
    if params.len() > MAX_FIELDS {
        return Err(ApiError::InvalidRequest("the form has too many fields"));
    }
    Ok(params)
}

/// The one value of `name`: absent is `None`, twice is an error.
fn single<'a>(params: &'a [(String, String)], name: &str) -> Result<Option<&'a str>, ApiError> {
    let mut values = params.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str());
    let first = values.next();
    match values.next() {
        None => Ok(first),
        Some(_) => Err(ApiError::InvalidRequest("a field is repeated")),
    }
}

/// A message's (`MessageSid`, `MessageStatus`) or a call's (`CallSid`, `CallStatus`)
/// callback, with `ErrorCode` where Twilio gives one.
pub fn parse_callback(params: &[(String, String)]) -> Result<StatusCallback, ApiError> {
    let (sid, state) = match (single(params, "MessageSid")?, single(params, "CallSid")?) {
        (Some(sid), _) => (
            ProviderSid::message(sid).ok_or(ApiError::InvalidRequest("`MessageSid` is not a message sid"))?,
            single(params, "MessageStatus")?
                .and_then(DeliveryState::from_message_status)
                .ok_or(ApiError::InvalidRequest("`MessageStatus` is missing or not a status of a sent message"))?,
        ),
        (None, Some(sid)) => (
            ProviderSid::call(sid).ok_or(ApiError::InvalidRequest("`CallSid` is not a call sid"))?,
            single(params, "CallStatus")?
                .and_then(DeliveryState::from_call_status)
                .ok_or(ApiError::InvalidRequest("`CallStatus` is missing or not a call status"))?,
        ),
        (None, None) => return Err(ApiError::InvalidRequest("`MessageSid` or `CallSid` is required")),
    };
    let error_code = match single(params, "ErrorCode")?.map(str::trim).filter(|v| !v.is_empty()) {
        None => None,
        Some(code) => Some(code.parse::<u32>().map_err(|_| ApiError::InvalidRequest("`ErrorCode` is not a number"))?),
    };
    Ok(StatusCallback { sid, report: StatusReport { state, error_code } })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    const SM: &str = "SM0123456789abcdef0123456789abcdef";
    const CA: &str = "CA0123456789abcdef0123456789abcdef";

    #[test]
    fn messages_and_calls_are_read_and_nothing_else() {
        let read =
            parse_callback(&params(&[("MessageSid", SM), ("MessageStatus", "undelivered"), ("ErrorCode", "30005")]))
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (read.sid.as_str(), read.report.state, read.report.error_code),
            (SM, DeliveryState::Undelivered, Some(30005))
        );
        let call =
            parse_callback(&params(&[("CallSid", CA), ("CallStatus", "no-answer")])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(call.report.state, DeliveryState::Undelivered);
        for bad in [
            params(&[("MessageSid", SM), ("MessageStatus", "exploded")]),
            params(&[("MessageSid", SM)]),
            params(&[("MessageSid", "SM123"), ("MessageStatus", "sent")]),
            params(&[("MessageSid", CA), ("MessageStatus", "sent")]),
            params(&[("CallSid", CA), ("CallStatus", "delivered")]),
            params(&[("MessageSid", SM), ("MessageStatus", "sent"), ("MessageStatus", "failed")]),
            params(&[("MessageSid", SM), ("MessageStatus", "failed"), ("ErrorCode", "3000x")]),
            params(&[("MessageStatus", "sent")]),
        ] {
            assert!(matches!(parse_callback(&bad), Err(ApiError::InvalidRequest(_))), "{bad:?}");
        }
        let empty_code = parse_callback(&params(&[("MessageSid", SM), ("MessageStatus", "sent"), ("ErrorCode", "")]));
        assert_eq!(empty_code.map(|c| c.report.error_code).ok(), Some(None));
    }
}
