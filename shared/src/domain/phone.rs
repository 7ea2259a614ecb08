//! Phone numbers parsed once into E.164 (`E164Phone`), so that nothing downstream
//! re-validates or sees a raw, unnormalised number.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use phonenumber::country;
use phonenumber::metadata::{DATABASE, Metadata};
use phonenumber::{PhoneNumber, Type};

mod classify;
use classify::classify;

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
    /// The country calling code's digits (`1`, `44`, `882`).
    calling_code: String,
    number_type: NumberType,
}

/// The number types that can receive SMS, by their names in `OTP_NUMBER_TYPES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NumberType {
    Mobile,
    FixedLineOrMobile,
    Voip,
    Pager,
    Personal,
}

impl NumberType {
    pub const ALL: [NumberType; 5] = [Self::Mobile, Self::FixedLineOrMobile, Self::Voip, Self::Pager, Self::Personal];

    pub fn name(self) -> &'static str {
        match self {
            Self::Mobile => "mobile",
            Self::FixedLineOrMobile => "fixed_line_or_mobile",
            Self::Voip => "voip",
            Self::Pager => "pager",
            Self::Personal => "personal",
        }
    }

    /// The SMS-capable type of a number's libphonenumber type; `None` for fixed lines,
    /// toll-free, premium-rate, shared-cost, UAN and unknown numbers (the usual targets of
    /// pumping).
    fn of(kind: Type) -> Option<Self> {
        match kind {
            Type::Mobile => Some(Self::Mobile),
            Type::FixedLineOrMobile => Some(Self::FixedLineOrMobile),
            Type::Voip => Some(Self::Voip),
            Type::Pager => Some(Self::Pager),
            Type::PersonalNumber => Some(Self::Personal),
            _ => None,
        }
    }
}

/// The number types that may receive codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberTypes(BTreeSet<NumberType>);

impl Default for NumberTypes {
    /// Mobile and fixed-line-or-mobile (where a country's plan does not tell them apart).
    fn default() -> Self {
        Self([NumberType::Mobile, NumberType::FixedLineOrMobile].into_iter().collect())
    }
}

impl NumberTypes {
    /// Parses a comma-separated list of type names (`"mobile, voip"`).
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut set = BTreeSet::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let found = NumberType::ALL.into_iter().find(|t| t.name().eq_ignore_ascii_case(item));
            set.insert(found.ok_or_else(|| {
                let names: Vec<_> = NumberType::ALL.iter().map(|t| t.name()).collect();
                format!("unknown number type {item:?}; use {}", names.join(", "))
            })?);
        }
        if set.is_empty() {
            return Err("name at least one number type".into());
        }
        Ok(Self(set))
    }

    pub fn allows(&self, phone: &E164Phone) -> bool {
        self.0.contains(&phone.number_type)
    }
}

/// The region code of numbers that belong to no country (+800, +808, +870, +881, +882,
/// +883, +888, +979): the allow-list must name it for them to be served.
pub const NON_GEOGRAPHIC: &str = "001";

/// The country calling codes of no country (ITU's international networks and services).
const NON_GEOGRAPHIC_CODES: [u16; 9] = [800, 808, 870, 878, 881, 882, 883, 888, 979];

/// The country calling code a raw number is written with, without parsing it: the digits
/// after `+` or `00` (country codes are prefix-free, so the first of 1, 2 or 3 digits that
/// is a code is the one), or `default_country`'s for a number written nationally. `None`
/// when there is none to tell.
pub fn calling_code_of(raw: &str, default_country: Option<country::Id>) -> Option<u16> {
    let trimmed = raw.trim();
    let international = trimmed.strip_prefix('+').or_else(|| trimmed.strip_prefix("00"));
    let Some(rest) = international else {
        let id = default_country?;
        return DATABASE.by_id(id.as_ref()).map(|meta| meta.country_code());
    };
    let digits: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .filter(char::is_ascii_digit)
        .take(3)
        .collect();
    (1..=digits.len()).find_map(|end| {
        let code: u16 = digits[..end].parse().ok()?;
        // `region` names a code's territories without decoding their metadata.
        DATABASE.region(&code).map(|_| code)
    })
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
        // Validity, territory and type judged once, on the national significant number
        // (`classify`): not the crate's `number_type`, which drops leading zeros.
        let (territory, kind) = classify(&number).ok_or(PhoneError::Invalid)?;
        if kind == Type::Unknown {
            return Err(PhoneError::Invalid);
        }
        let number_type = NumberType::of(kind).ok_or(PhoneError::NotSmsCapable)?;
        Ok(Self::from_parsed(&number, Some(territory), number_type))
    }

    /// Parses an E.164 number without judging its validity or type: for the operator's own
    /// test numbers, which are often in fictional ranges.
    pub fn parse_any_type(raw: &str, default_country: Option<country::Id>) -> Result<Self, PhoneError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.len() > MAX_RAW_LEN {
            return Err(PhoneError::Unparseable);
        }
        let number = phonenumber::parse(default_country, trimmed).map_err(|_| PhoneError::Unparseable)?;
        let classified = classify(&number);
        let number_type = classified.and_then(|(_, kind)| NumberType::of(kind)).unwrap_or(NumberType::Mobile);
        let mut phone = Self::from_parsed(&number, classified.map(|(territory, _)| territory), number_type);
        if phone.country.is_none() {
            // No region claims a fictional number: it counts under its calling code's main
            // region (+1: US), or `001` for the codes of no country.
            phone.country = DATABASE
                .region(&number.code().value())
                .and_then(|regions| regions.first().map(|id| (*id).to_owned()))
                .filter(|id| id != NON_GEOGRAPHIC);
        }
        Ok(phone)
    }

    /// `territory` is the one [`classify`] found (`number.country()` is the crate's, found
    /// without the leading zeros).
    fn from_parsed(number: &PhoneNumber, territory: Option<&Metadata>, number_type: NumberType) -> Self {
        // What `number.format().mode(Mode::E164)` writes, without its formatter first
        // matching the region's national formats (patterns compiled for nothing).
        let calling_code = number.code().value().to_string();
        let e164 = format!("+{calling_code}{}", number.national());
        let country = territory.map(Metadata::id).filter(|id| *id != NON_GEOGRAPHIC).map(str::to_owned);
        Self { e164, country, calling_code, number_type }
    }

    /// The number's SMS-capable type.
    pub fn number_type(&self) -> NumberType {
        self.number_type
    }

    /// The region for the per-country limits and the allow-list: ISO 3166-1 alpha-2, or
    /// [`NON_GEOGRAPHIC`].
    pub fn region(&self) -> &str {
        self.country.as_deref().unwrap_or(NON_GEOGRAPHIC)
    }

    /// The number in E.164 form.
    pub fn as_str(&self) -> &str {
        &self.e164
    }

    /// The ISO 3166-1 alpha-2 region the number belongs to, if it has one.
    pub fn country(&self) -> Option<&str> {
        self.country.as_deref()
    }

    /// The number's prefix for the conversion guard: its calling code and the first
    /// `digits` digits of its national number, as `1-415` (the calling code apart, so
    /// that no two prefixes read alike). Short enough to name a block of numbers, never one.
    pub fn prefix(&self, digits: u8) -> String {
        let national = &self.e164[1 + self.calling_code.len()..];
        let take = usize::from(digits).min(national.len().saturating_sub(1));
        format!("{}-{}", self.calling_code, &national[..take])
    }

    /// The number for logs: its country calling code and last two digits, the rest
    /// hidden (`+1********23`), so a log never tells whose number it was.
    pub fn masked(&self) -> String {
        let digits = &self.e164[1..];
        let head = self.calling_code.len().min(digits.len());
        let tail = 2.min(digits.len() - head);
        let hidden = digits.len() - head - tail;
        format!("+{}{}{}", &digits[..head], "*".repeat(hidden), &digits[digits.len() - tail..])
    }
}

/// Parses a region of the allow-list or the per-country overrides: an ISO 3166-1 alpha-2
/// code (case-insensitively), or [`NON_GEOGRAPHIC`].
pub fn parse_region(code: &str) -> Option<String> {
    if code.trim() == NON_GEOGRAPHIC {
        return Some(NON_GEOGRAPHIC.to_owned());
    }
    parse_country(code).map(|id| id.as_ref().to_owned())
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
    /// Parses a comma-separated list of ISO codes (`"US, gb,DE"`), and `001` for numbers
    /// of no country.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut set = BTreeSet::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            set.insert(parse_region(item).ok_or_else(|| format!("unknown country code {item:?}"))?);
        }
        Ok(Self(set))
    }

    /// Empty allows every country, but not numbers of no country: those are served only
    /// where the list names `001` (they are costly and rarely a person's phone).
    pub fn allows(&self, phone: &E164Phone) -> bool {
        match phone.country() {
            Some(country) => self.0.is_empty() || self.0.contains(country),
            None => self.0.contains(NON_GEOGRAPHIC),
        }
    }

    /// The calling code of a raw number (read as [`calling_code_of`] does) when no allowed
    /// region has it: such a number is refused before it is parsed, without that cost and
    /// without its country's patterns pushing the served countries' out of the cache.
    /// `None` when the number may be allowed, or its calling code cannot be told.
    pub fn refused_calling_code(&self, raw: &str, default_country: Option<country::Id>) -> Option<u16> {
        calling_code_of(raw, default_country).filter(|code| !self.allows_calling_code(*code))
    }

    /// Whether a number of calling code `code` can be of an allowed region.
    pub fn allows_calling_code(&self, code: u16) -> bool {
        self.0.is_empty()
            || self.0.iter().any(|region| match region.as_str() {
                NON_GEOGRAPHIC => NON_GEOGRAPHIC_CODES.contains(&code),
                id => DATABASE.by_id(id).is_some_and(|meta| meta.country_code() == code),
            })
    }

    /// The regions whose patterns start-up warms: the list's (the commonly served first,
    /// then alphabetically, at most [`MAX_WARMED_REGIONS`]), or the first
    /// [`WARMED_BY_DEFAULT`] of [`COMMONLY_SERVED`] when the list allows every region.
    pub fn regions_to_warm(&self) -> Vec<String> {
        if self.0.is_empty() {
            return COMMONLY_SERVED[..WARMED_BY_DEFAULT].iter().map(|id| (*id).to_owned()).collect();
        }
        let common = COMMONLY_SERVED.iter().filter(|id| self.0.contains(**id)).map(|id| (*id).to_owned());
        let rest = self.0.iter().filter(|id| !COMMONLY_SERVED.contains(&id.as_str())).cloned();
        common.chain(rest).take(MAX_WARMED_REGIONS).collect()
    }
}

/// Large markets for SMS sign-in, in the order start-up warms their patterns: when the
/// allow-list is empty (every country served) the first [`WARMED_BY_DEFAULT`] of them, and
/// these first when the allow-list names more regions than [`MAX_WARMED_REGIONS`].
pub const COMMONLY_SERVED: [&str; 8] = ["US", "IN", "BR", "GB", "ID", "DE", "FR", "MX"];

/// Regions warmed when every country is served: the first only. The first region costs
/// about 5 ms of start-up CPU (the parser's own patterns included) and each further one
/// about 1 ms, x14 where init runs at a 128 MB function's share, and 0.1-0.2 MiB of
/// compiled patterns (docs/PERFORMANCE.md); the numbers of the others pay their compile on
/// first use. An operator who serves a few countries names them in the allow-list.
pub const WARMED_BY_DEFAULT: usize = 1;

/// At most this many regions are warmed, whatever the allow-list: 12 regions are ~15 ms of
/// start-up CPU at full speed and ~3 MiB of compiled patterns.
pub const MAX_WARMED_REGIONS: usize = 12;

/// How many compiled patterns the cache keeps beside the warmed ones, for numbers of
/// other regions: the crate's own capacity.
const SPARE_PATTERNS: usize = 100;

/// More than any one region's number needs compiled (8 to 22 in the database).
const PATTERNS_PER_REGION: usize = 40;

/// What [`warm_regions`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warmed {
    /// Regions whose example number was parsed.
    pub regions: usize,
    /// Compiled patterns in the cache after warming.
    pub patterns: usize,
    /// The cache's capacity from now on: every warmed pattern plus [`SPARE_PATTERNS`].
    pub capacity: usize,
}

/// Compiles now, once, the patterns that numbers of `regions` need, by parsing each
/// region's example mobile number the way a request does (parse, validity, type, E.164),
/// and sizes the crate's pattern cache (an LRU, 100 by default) to keep them all beside
/// room for other regions' numbers. Done at start-up, so that no request of those regions
/// pays a compile (about 1-5 ms of CPU each, times 14 at a 128 MB Lambda's CPU share).
/// Unknown regions, and regions without an example number, are skipped.
pub fn warm_regions<S: AsRef<str>>(regions: &[S]) -> Warmed {
    let resize = |capacity: usize| {
        if let Ok(mut cache) = DATABASE.cache().lock() {
            cache.set_capacity(capacity);
        }
    };
    // Room for every pattern while warming, so none is evicted before the count.
    resize(SPARE_PATTERNS + PATTERNS_PER_REGION * regions.len());
    let mut warmed = 0;
    for region in regions {
        for raw in example_numbers(region.as_ref()) {
            let _ = E164Phone::parse(&raw, None);
            warmed += 1;
        }
    }
    let patterns = compiled_patterns();
    let capacity = patterns + SPARE_PATTERNS;
    resize(capacity);
    Warmed { regions: warmed, patterns, capacity }
}

/// How many compiled patterns the phone metadata's cache holds now.
pub fn compiled_patterns() -> usize {
    DATABASE.cache().lock().map(|cache| cache.len()).unwrap_or(0)
}

/// The example mobile number of `region`, in E.164 (several for [`NON_GEOGRAPHIC`]: one
/// per calling code of no country that has one).
fn example_numbers(region: &str) -> Vec<String> {
    let example = |meta: &phonenumber::metadata::Metadata| {
        let descriptors = meta.descriptors();
        [descriptors.mobile(), descriptors.voip(), descriptors.personal_number()]
            .into_iter()
            .flatten()
            .find_map(|descriptor| descriptor.example())
            .map(|number| format!("+{}{number}", meta.country_code()))
    };
    if region == NON_GEOGRAPHIC {
        // The database keys regions by id, so the codes of no country are found by code.
        NON_GEOGRAPHIC_CODES
            .iter()
            .filter_map(|code| DATABASE.by_code(code))
            .flatten()
            .filter(|meta| meta.id() == NON_GEOGRAPHIC)
            .filter_map(example)
            .collect()
    } else {
        DATABASE.by_id(region).and_then(example).into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusty_fork::rusty_fork_test;

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
        // Italian fixed lines and an Ascension UAN number, whose digits without their leading
        // zero would pass for mobiles.
        for raw in ["+39 031 2342 2785", "+39 0431 234 5678", "+247 040914"] {
            assert_eq!(parse(raw, None), Err(PhoneError::NotSmsCapable), "{raw}");
        }
        assert_eq!(parse("0431 234 5678", Some("IT")), Err(PhoneError::NotSmsCapable));
        let mobile = E164Phone::parse("+39 312 345 6789", None).unwrap();
        assert_eq!((mobile.country(), mobile.number_type()), (Some("IT"), NumberType::Mobile));
    }

    #[test]
    fn masks_the_middle_of_the_number() {
        let phone = E164Phone::parse("+16505550100", None).unwrap();
        assert_eq!(phone.masked(), "+1********00");
        assert!(!format!("{phone:?}").contains("650"));
        let phone = E164Phone::parse("+447400123456", None).unwrap();
        assert_eq!(phone.masked(), "+44********56", "the country code and the last two digits only");
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

    #[test]
    fn the_e164_form_is_the_crates_for_every_regions_examples() {
        let mut checked = 0;
        for meta in DATABASE.iter() {
            let d = meta.descriptors();
            let kinds = [d.mobile(), d.fixed_line(), d.voip(), d.personal_number(), d.pager(), d.toll_free()];
            for example in kinds.into_iter().flatten().filter_map(|k| k.example()) {
                for raw in [format!("+{}{example}", meta.country_code()), format!("+{}0{example}", meta.country_code())]
                {
                    let Ok(number) = phonenumber::parse(None, &raw) else { continue };
                    let ours = E164Phone::from_parsed(&number, None, NumberType::Mobile);
                    assert_eq!(ours.as_str(), number.format().mode(phonenumber::Mode::E164).to_string(), "{raw}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 500, "{checked}");
    }

    // These count what the process-wide pattern cache holds: each runs in a process of its
    // own, or the numbers other tests parse meanwhile would change the count.
    rusty_fork_test! {
        #[test]
        fn warming_compiles_what_numbers_of_those_regions_need_and_keeps_it() {
            warming_compiles_what_numbers_need()
        }

        #[test]
        fn warmed_patterns_outlast_a_stream_of_other_regions() {
            warmed_patterns_outlast_other_regions()
        }
    }

    fn warming_compiles_what_numbers_need() {
        let warmed = warm_regions(&["GB", "DE", "XX", "AQ"]);
        assert_eq!(warmed.regions, 2, "unknown regions and regions with no example are skipped: {warmed:?}");
        assert!(warmed.patterns >= 10, "{warmed:?}");
        assert_eq!(warmed.capacity, warmed.patterns + SPARE_PATTERNS);
        let before = compiled_patterns();
        for raw in ["+447400123456", "+44 7400 654321", "+4915123456789", "+49 170 1234567"] {
            let phone = E164Phone::parse(raw, None).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert!(matches!(phone.country(), Some("GB" | "DE")), "{raw}");
        }
        assert_eq!(compiled_patterns(), before, "a warmed region's numbers compile nothing more");
        // A region not warmed does compile on its first number.
        let _ = E164Phone::parse("+819012345678", None);
        assert!(compiled_patterns() > before);
    }

    fn warmed_patterns_outlast_other_regions() {
        let warmed = warm_regions(&["FR"]);
        // 100 spare patterns is about 8 other regions; a stream of 6 leaves FR's in place.
        for raw in
            ["+819012345678", "+61412345678", "+2348031234567", "+525512345678", "+8613800138000", "+34612345678"]
        {
            let _ = E164Phone::parse(raw, None);
        }
        assert!(compiled_patterns() <= warmed.capacity, "the cache keeps its size");
        let before = compiled_patterns();
        let _ = E164Phone::parse("+33612345678", None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(compiled_patterns(), before, "FR's patterns were still cached");
    }

    #[test]
    fn the_regions_warmed_are_the_allow_list_or_the_common_ones() {
        assert_eq!(CountryAllowList::parse("gb, US, at").unwrap().regions_to_warm(), ["US", "GB", "AT"]);
        assert_eq!(CountryAllowList::default().regions_to_warm(), COMMONLY_SERVED[..WARMED_BY_DEFAULT]);
        let many = CountryAllowList::parse("AT,BE,CH,CZ,DK,ES,FI,GR,HU,IE,IT,NL,NO,PL,PT,SE,DE").unwrap();
        let warmed = many.regions_to_warm();
        assert_eq!(warmed.len(), MAX_WARMED_REGIONS);
        assert_eq!(&warmed[..2], ["DE", "AT"], "the commonly served first, then alphabetically");
        assert!(example_numbers(NON_GEOGRAPHIC).len() >= 2, "{:?}", example_numbers(NON_GEOGRAPHIC));
        assert!(example_numbers("US").iter().all(|raw| E164Phone::parse(raw, None).is_ok()));
    }

    #[test]
    fn the_calling_code_is_read_without_parsing() {
        let de = parse_country("DE");
        for (raw, default, code) in [
            ("+1 (415) 555-0123", None, Some(1)),
            ("+44 7400 123456", None, Some(44)),
            ("0049 151 23456789", None, Some(49)),
            ("+880 1812-345678", None, Some(880)),
            ("+882 34 123456", None, Some(882)),
            ("0151 23456789", de, Some(49)),
            ("0151 23456789", None, None),
            ("+999 1234567", None, None),
            ("+", None, None),
            ("hello", None, None),
        ] {
            assert_eq!(calling_code_of(raw, default), code, "{raw}");
            if let (Some(code), Ok(phone)) = (code, E164Phone::parse(raw, default)) {
                assert_eq!(phone.calling_code, code.to_string(), "the parse agrees: {raw}");
            }
        }
    }

    #[test]
    fn the_allow_list_judges_calling_codes() {
        let list = CountryAllowList::parse("US, GB").unwrap();
        assert!(list.allows_calling_code(1) && list.allows_calling_code(44));
        assert!(!list.allows_calling_code(49) && !list.allows_calling_code(882));
        assert!(CountryAllowList::parse("001").unwrap().allows_calling_code(882));
        assert!(CountryAllowList::default().allows_calling_code(49));
        assert_eq!(list.refused_calling_code("+49 151 23456789", None), Some(49));
        assert_eq!(list.refused_calling_code("0151 23456789", parse_country("DE")), Some(49));
        assert_eq!(list.refused_calling_code("+1 415 555 0123", None), None);
        assert_eq!(list.refused_calling_code("+999 1234567", None), None, "unknown codes are left to the parse");
        // Every number the list allows has an allowed calling code (none refused early).
        for raw in ["+14155550123", "+447400123456", "+16135550123"] {
            let phone = E164Phone::parse(raw, None).unwrap();
            let code = calling_code_of(raw, None).unwrap();
            assert!(!list.allows(&phone) || list.allows_calling_code(code), "{raw}");
        }
    }
}
