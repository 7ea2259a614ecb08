//! Phone numbers parsed once into E.164 (`E164Phone`), so that nothing downstream
//! re-validates or sees a raw, unnormalised number.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use phonenumber::country;
use phonenumber::metadata::DATABASE;
use phonenumber::{Mode, PhoneNumber, Type};

/// Why a raw phone number was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("the number cannot be parsed")]
    Unparseable,
    #[error("the number is not a valid number")]
    Invalid,
    #[error("the number cannot receive SMS")]
    NotSmsCapable,
}

/// A valid, SMS-capable number in E.164 form (`+14155550123`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct E164Phone {
    e164: String,
    country: Option<String>,
}

/// Longest input we try to parse: anything longer is garbage, and parsing it costs time.
const MAX_RAW_LEN: usize = 64;

impl E164Phone {
    /// Parses any common human format. A number without a leading `+` or `00` is read
    /// in `default_country` (ISO 3166-1 alpha-2).
    pub fn parse(raw: &str, default_country: Option<country::Id>) -> Result<Self, PhoneError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.len() > MAX_RAW_LEN {
            return Err(PhoneError::Unparseable);
        }
        // "00" is the international prefix in most of the world; libphonenumber only
        // knows it relative to a region, so spell it the universal way.
        let normalised = match trimmed.strip_prefix("00") {
            Some(rest) => format!("+{rest}"),
            None => trimmed.to_owned(),
        };
        let region =
            if normalised.starts_with('+') { None } else { Some(default_country.ok_or(PhoneError::Unparseable)?) };
        let number = phonenumber::parse(region, &normalised).map_err(|_| PhoneError::Unparseable)?;
        if !phonenumber::is_valid(&number) {
            return Err(PhoneError::Invalid);
        }
        if !sms_capable(&number) {
            return Err(PhoneError::NotSmsCapable);
        }
        let e164 = number.format().mode(Mode::E164).to_string();
        let country = number.country().id().map(|id| id.as_ref().to_owned());
        Ok(Self { e164, country })
    }

    /// The number in E.164 form.
    pub fn as_str(&self) -> &str {
        &self.e164
    }

    /// The ISO 3166-1 alpha-2 region the number belongs to, if it has one.
    pub fn country(&self) -> Option<&str> {
        self.country.as_deref()
    }

    /// The number with its middle hidden, for logs: `+1650*****00`.
    pub fn masked(&self) -> String {
        let digits = &self.e164[1..];
        let keep_head = digits.len().saturating_sub(6).min(4);
        let keep_tail = 2.min(digits.len().saturating_sub(keep_head));
        let hidden = digits.len() - keep_head - keep_tail;
        format!("+{}{}{}", &digits[..keep_head], "*".repeat(hidden), &digits[digits.len() - keep_tail..])
    }
}

/// Number types that a carrier delivers SMS to. Fixed lines, toll-free, premium-rate
/// and shared-cost numbers are refused: they are the usual targets of SMS pumping.
fn sms_capable(number: &PhoneNumber) -> bool {
    matches!(
        number.number_type(&DATABASE),
        Type::Mobile | Type::FixedLineOrMobile | Type::PersonalNumber | Type::Voip | Type::Pager
    )
}

/// Parses an ISO 3166-1 alpha-2 region code, case-insensitively.
pub fn parse_country(code: &str) -> Option<country::Id> {
    let upper = code.trim().to_ascii_uppercase();
    if upper.len() != 2 {
        return None;
    }
    country::Id::from_str(&upper).ok()
}

impl fmt::Debug for E164Phone {
    // Debug output reaches logs; never print the whole number there.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("E164Phone").field(&self.masked()).finish()
    }
}

/// The regions numbers may come from; empty means every region.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CountryAllowList(BTreeSet<String>);

impl CountryAllowList {
    /// Parses a comma-separated list of ISO codes (`"US, gb,DE"`).
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut set = BTreeSet::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let id = parse_country(item).ok_or_else(|| format!("unknown country code {item:?}"))?;
            set.insert(id.as_ref().to_owned());
        }
        Ok(Self(set))
    }

    pub fn allows(&self, phone: &E164Phone) -> bool {
        self.0.is_empty() || phone.country().is_some_and(|c| self.0.contains(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str, region: Option<&str>) -> Result<String, PhoneError> {
        E164Phone::parse(raw, region.and_then(parse_country)).map(|p| p.as_str().to_owned())
    }

    #[test]
    fn accepts_every_format_the_contract_lists() {
        for raw in ["+14155550123", "+1-415-555-0123", "+1 (415) 555-0123", "  +1 415.555.0123 ", "0014155550123"] {
            assert_eq!(parse(raw, None).as_deref(), Ok("+14155550123"), "{raw}");
        }
        assert_eq!(parse("00 44 7911 123456", None).as_deref(), Ok("+447911123456"));
        assert_eq!(parse("(415) 555-0123", Some("US")).as_deref(), Ok("+14155550123"));
        assert_eq!(parse("07911 123456", Some("gb")).as_deref(), Ok("+447911123456"));
    }

    #[test]
    fn reads_mobile_numbers_from_many_countries() {
        let cases = [
            ("+49 151 23456789", "+4915123456789", "DE"),
            ("+33 6 12 34 56 78", "+33612345678", "FR"),
            ("+34 612 34 56 78", "+34612345678", "ES"),
            ("+55 11 91234-5678", "+5511912345678", "BR"),
            ("+91 98765 43210", "+919876543210", "IN"),
            ("+81 90-1234-5678", "+819012345678", "JP"),
            ("+61 412 345 678", "+61412345678", "AU"),
            ("+234 803 123 4567", "+2348031234567", "NG"),
            ("+52 55 1234 5678", "+525512345678", "MX"),
            ("+86 138 0013 8000", "+8613800138000", "CN"),
        ];
        for (raw, e164, country) in cases {
            let phone = E164Phone::parse(raw, None).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(phone.as_str(), e164, "{raw}");
            assert_eq!(phone.country(), Some(country), "{raw}");
        }
        assert_eq!(parse("0151 23456789", Some("DE")).as_deref(), Ok("+4915123456789"));
        assert_eq!(parse("06 12 34 56 78", Some("FR")).as_deref(), Ok("+33612345678"));
    }

    #[test]
    fn refuses_garbage_invalid_and_landlines() {
        assert_eq!(parse("", None), Err(PhoneError::Unparseable));
        assert_eq!(parse("hello", None), Err(PhoneError::Unparseable));
        assert_eq!(parse("4155550123", None), Err(PhoneError::Unparseable));
        assert_eq!(parse(&"1".repeat(200), None), Err(PhoneError::Unparseable));
        assert_eq!(parse("+1 415 555", None), Err(PhoneError::Invalid));
        assert!(parse("+999 1234567", None).is_err());
        // A German fixed line (Berlin) and a UK fixed line (London).
        assert_eq!(parse("+49 30 12345678", None), Err(PhoneError::NotSmsCapable));
        assert_eq!(parse("+44 20 7946 0018", None), Err(PhoneError::NotSmsCapable));
        // Toll-free and premium-rate numbers.
        assert_eq!(parse("+1 800 555 0199", None), Err(PhoneError::NotSmsCapable));
        assert_eq!(parse("+44 909 8790879", None), Err(PhoneError::NotSmsCapable));
    }

    #[test]
    fn masks_the_middle_of_the_number() {
        let phone = E164Phone::parse("+16505550100", None).unwrap();
        assert_eq!(phone.masked(), "+1650*****00");
        assert!(!format!("{phone:?}").contains("5550100"));
    }

    #[test]
    fn allow_list_checks_the_region() {
        let list = CountryAllowList::parse("us, GB").unwrap();
        assert!(list.allows(&E164Phone::parse("+14155550123", None).unwrap()));
        assert!(list.allows(&E164Phone::parse("+447400123456", None).unwrap()));
        // 07911 is a Guernsey range: region GG, not GB.
        assert!(!list.allows(&E164Phone::parse("+447911123456", None).unwrap()));
        assert!(!list.allows(&E164Phone::parse("+4915123456789", None).unwrap()));
        assert!(CountryAllowList::default().allows(&E164Phone::parse("+4915123456789", None).unwrap()));
        assert!(CountryAllowList::parse("US,XX").is_err());
    }
}
