//! `POST /api/send-otp`.

use std::net::IpAddr;

use serde_json::{Map, Value, json};

use super::request::{optional_str, required_str};
use super::response::json_response;
use crate::domain::E164Phone;
use crate::domain::phone::parse_country;
use crate::error::ApiError;
use crate::service::OtpService;

pub(super) async fn send_otp(
    service: &OtpService,
    body: &Map<String, Value>,
    client_ip: Option<IpAddr>,
) -> Result<http::Response<String>, ApiError> {
    let raw_phone = required_str(body, "phone", "`phone` is required and must be a string")?;
    let country = optional_str(body, "defaultCountry", "`defaultCountry` must be a string")?;
    let locale = optional_str(body, "locale", "`locale` must be a string")?;
    let default_country = match country.map(str::trim).filter(|c| !c.is_empty()) {
        None => None,
        Some(code) => Some(
            parse_country(code)
                .ok_or(ApiError::InvalidRequest("`defaultCountry` must be an ISO 3166-1 alpha-2 code"))?,
        ),
    };
    let phone = E164Phone::parse(raw_phone, default_country).map_err(|_| ApiError::InvalidPhone)?;
    // Callers without a known address share one bucket of the per-client limit.
    let client = client_ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    let accepted = service.send(phone, locale, &client).await?;
    Ok(json_response(
        http::StatusCode::ACCEPTED,
        &json!({
            "status": "pending",
            "to": accepted.to.as_str(),
            "channel": "sms",
            "expiresAt": rfc3339(accepted.expires_at),
            "resendAfterSeconds": accepted.resend_after_seconds,
        }),
    ))
}

pub(super) fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
