//! `POST /api/verify-otp`.

use std::net::IpAddr;

use serde_json::{Map, Value, json};

use super::request::{optional_str, required_str};
use super::response::{json_response, rfc3339};
use super::send::{client_bucket, default_country, device_token, parse_phone};
use crate::domain::OtpCode;
use crate::error::ApiError;
use crate::service::{Caller, OtpService};

pub(super) async fn verify_otp(
    service: &OtpService,
    body: &Map<String, Value>,
    client_ip: Option<IpAddr>,
) -> Result<http::Response<String>, ApiError> {
    let raw_phone = required_str(body, "phone", "`phone` is required and must be a string")?;
    let raw_code = required_str(body, "code", "`code` is required and must be a string")?;
    let country = optional_str(body, "defaultCountry", "`defaultCountry` must be a string")?;
    let default_country = default_country(country)?;
    let length = service.settings().code_length;
    let parse_code =
        || OtpCode::parse(raw_code, length).map_err(|_| ApiError::InvalidCodeFormat { length: length.get() });
    // No code is sent to a number of no allowed calling code: answered as a number with
    // no code, before it is parsed.
    if service.settings().allowed_countries.refused_calling_code(raw_phone, default_country).is_some() {
        parse_code()?;
        return Err(ApiError::CodeExpired);
    }
    // The frontend sends back the E.164 `to` of the send; other formats parse the same way.
    let phone = parse_phone(service, raw_phone, default_country).await?;
    let code = parse_code()?;
    let client = client_bucket(client_ip);
    let caller = Caller { client: &client, ip: client_ip };
    let approval = service.verify(phone, code, caller, device_token(body)).await?;
    Ok(json_response(
        http::StatusCode::OK,
        &json!({
            "status": "approved",
            "to": approval.to.as_str(),
            "token": approval.token.token,
            "tokenExpiresAt": rfc3339(approval.token.expires_at),
            "deviceToken": approval.device_token.token,
            "deviceTokenExpiresAt": rfc3339(approval.device_token.expires_at),
        }),
    ))
}
