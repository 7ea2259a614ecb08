//! `POST /api/send-otp`.

use std::net::IpAddr;

use serde_json::{Map, Value, json};

use super::request::{optional_str, required_str};
use super::response::json_response;
use crate::domain::phone::parse_country;
use crate::domain::{Channel, E164Phone};
use crate::error::ApiError;
use crate::service::{Caller, OtpService};

pub(super) async fn send_otp(
    service: &OtpService,
    body: &Map<String, Value>,
    client_ip: Option<IpAddr>,
) -> Result<http::Response<String>, ApiError> {
    let raw_phone = required_str(body, "phone", "`phone` is required and must be a string")?;
    let country = optional_str(body, "defaultCountry", "`defaultCountry` must be a string")?;
    let locale = optional_str(body, "locale", "`locale` must be a string")?;
    let captcha_token = optional_str(body, "captchaToken", "`captchaToken` must be a string")?;
    let channel = channel(service, optional_str(body, "channel", "`channel` must be a string")?)?;
    if service.requires_challenge() && captcha_token.is_none_or(|t| t.trim().is_empty()) {
        return Err(ApiError::CaptchaRequired);
    }
    let default_country = default_country(country)?;
    if let Some(code) = service.settings().allowed_countries.refused_calling_code(raw_phone, default_country) {
        tracing::info!(event = "send_country_refused", calling_code = code, "send refused: country not allowed");
        return Err(ApiError::CountryNotAllowed);
    }
    let phone = parse_phone(service, raw_phone, default_country).await?;
    let client = client_bucket(client_ip);
    let caller = Caller { client: &client, ip: client_ip };
    let accepted = service.send(phone, channel, locale, caller, captcha_token, device_token(body)).await?;
    Ok(json_response(
        http::StatusCode::ACCEPTED,
        &json!({
            "status": "pending",
            "to": accepted.to.as_str(),
            "channel": accepted.channel.as_str(),
            "expiresAt": super::response::rfc3339(accepted.expires_at),
            "resendAfterSeconds": accepted.resend_after_seconds,
            "channels": service.settings().channels.names(),
        }),
    ))
}

/// The `deviceToken` field: anything but a string (absent, `null`, a number) is none, as a
/// token that does not read is (API.md: never an error).
pub(super) fn device_token(body: &Map<String, Value>) -> Option<&str> {
    body.get("deviceToken").and_then(Value::as_str)
}

/// The `channel` field: absent or `null` is `sms` (API.md); a name that is not an offered
/// channel, known or not, is `channel_not_allowed`, which lists those offered.
fn channel(service: &OtpService, field: Option<&str>) -> Result<Channel, ApiError> {
    match field {
        None => Ok(service.check_channel(Channel::Sms).map(|()| Channel::Sms)?),
        Some(name) => match Channel::parse(name) {
            Some(channel) => Ok(service.check_channel(channel).map(|()| channel)?),
            None => {
                tracing::info!(event = "send_channel_refused", "send refused: no such channel");
                Err(ApiError::ChannelNotAllowed { channels: service.settings().channels.clone() })
            }
        },
    }
}

/// The number of a request: any valid SMS-capable number, or one of the operator's test
/// numbers (which may be fictional).
pub(super) async fn parse_phone(
    service: &OtpService,
    raw: &str,
    default_country: Option<phonenumber::country::Id>,
) -> Result<E164Phone, ApiError> {
    if let Ok(phone) = E164Phone::parse(raw, default_country) {
        return Ok(phone);
    }
    service.find_test_number(raw).await.ok_or(ApiError::InvalidPhone)
}

/// The `defaultCountry` field: absent or blank is none, anything but an ISO code is a bad
/// request (both endpoints read it the same way).
pub(super) fn default_country(field: Option<&str>) -> Result<Option<phonenumber::country::Id>, ApiError> {
    match field.map(str::trim).filter(|c| !c.is_empty()) {
        None => Ok(None),
        Some(code) => parse_country(code)
            .map(Some)
            .ok_or(ApiError::InvalidRequest("`defaultCountry` must be an ISO 3166-1 alpha-2 code")),
    }
}

/// The name of the caller for the per-client limit. An IPv6 caller is limited by its /64:
/// one subscriber or host usually holds a whole /64, and counting single addresses would
/// give it 2^64 fresh budgets. IPv4-mapped addresses count as their IPv4 address; callers
/// without a known address share one bucket.
pub(super) fn client_bucket(ip: Option<IpAddr>) -> String {
    match ip.map(|ip| ip.to_canonical()) {
        None => "unknown".to_owned(),
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            format!("{}/64", std::net::Ipv6Addr::from(prefix))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(ip: &str) -> String {
        client_bucket(Some(ip.parse().unwrap_or_else(|e| panic!("{ip}: {e}"))))
    }

    #[test]
    fn ipv6_callers_are_limited_per_64() {
        assert_eq!(bucket("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        assert_eq!(bucket("2001:db8:1:2:ffff:ffff:ffff:ffff"), bucket("2001:db8:1:2::1"));
        assert_ne!(bucket("2001:db8:1:3::1"), bucket("2001:db8:1:2::1"));
    }

    #[test]
    fn ipv4_callers_are_limited_per_address() {
        assert_eq!(bucket("192.0.2.1"), "192.0.2.1");
        assert_eq!(bucket("::ffff:192.0.2.1"), "192.0.2.1");
        assert_ne!(bucket("192.0.2.2"), bucket("192.0.2.1"));
        assert_eq!(client_bucket(None), "unknown");
    }
}
