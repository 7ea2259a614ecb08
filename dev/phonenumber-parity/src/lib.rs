//! The vendored `phonenumber` (shared/vendor: its database skips the per-pattern syntax
//! check at load) against the published crate it was taken from: the same database, and
//! the same answers for a corpus of numbers from every territory in the metadata.

/// One input to parse: a raw string, read in `region` when it has no `+`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    pub region: Option<String>,
    pub raw: String,
}

/// Everything one crate says about an input: parse error or success, and for a parsed
/// number its validity, type, country and every format; one line, so two crates'
/// answers compare as strings.
macro_rules! answers_of {
    ($name:ident, $krate:ident) => {
        pub fn $name(case: &Case) -> String {
            use $krate::Mode;
            let region = match case.region.as_deref() {
                None => None,
                Some(id) => match id.parse::<$krate::country::Id>() {
                    Ok(id) => Some(id),
                    Err(_) => return format!("region {id} unknown"),
                },
            };
            let viable = $krate::is_viable(&case.raw);
            let number = match $krate::parse(region, &case.raw) {
                Ok(number) => number,
                Err(error) => return format!("viable={viable} error={error:?}"),
            };
            let database = &*$krate::metadata::DATABASE;
            let country = number.country();
            format!(
                "viable={viable} valid={} type={:?} code={} source={:?} id={:?} national={} \
                 ext={:?} carrier={:?} e164={} international={} national_format={} rfc3966={} \
                 region={:?}",
                $krate::is_valid(&number),
                number.number_type(database),
                number.code().value(),
                number.code().source(),
                country.id(),
                number.national(),
                number.extension().map(|e| e.to_string()),
                number.carrier().map(|c| c.to_string()),
                number.format().mode(Mode::E164),
                number.format().mode(Mode::International),
                number.format().mode(Mode::National),
                number.format().mode(Mode::Rfc3966),
                number.metadata(database).map(|m| m.id().to_owned()),
            )
        }
    };
}

answers_of!(published_answers, published);
answers_of!(vendored_answers, vendored);

/// A territory's metadata, every field the crate exposes, patterns by their source.
macro_rules! database_of {
    ($name:ident, $krate:ident, $source:expr) => {
        /// Every metadata entry by country calling code, in order (`by_code`, so the
        /// non-geographic entities that share the id `001` are all there).
        pub fn $name() -> Vec<String> {
            let database = &*$krate::metadata::DATABASE;
            let source = |source: &str| -> String { $source(source) };
            let mut entries = Vec::new();
            for code in 1..1000u16 {
                for meta in database.by_code(&code).unwrap_or_default() {
                    let d = meta.descriptors();
                    let descriptor = |name: &str, desc: Option<&$krate::metadata::Descriptor>| match desc {
                        None => format!("{name}: none"),
                        Some(desc) => format!(
                            "{name}: {} {:?} {:?} {:?}",
                            source(desc.national_number().as_str()),
                            desc.possible_length(),
                            desc.possible_local_length(),
                            desc.example()
                        ),
                    };
                    let format = |f: &$krate::metadata::Format| {
                        format!(
                            "{} -> {} lead {:?} prefix {:?} optional {} carrier {:?}",
                            source(f.pattern().as_str()),
                            f.format(),
                            f.leading_digits().iter().map(|r| source(r.as_str())).collect::<Vec<_>>(),
                            f.national_prefix(),
                            f.is_national_prefix_optional(),
                            f.domestic_carrier()
                        )
                    };
                    let fields = [
                        format!("{} +{} main={}", meta.id(), meta.country_code(), meta.is_main_country_for_code()),
                        format!("international prefix {:?}", meta.international_prefix().map(|r| source(r.as_str()))),
                        format!("preferred international {:?}", meta.preferred_international_prefix()),
                        format!("national prefix {:?}", meta.national_prefix()),
                        format!("extension prefix {:?}", meta.preferred_extension_prefix()),
                        format!("for parsing {:?}", meta.national_prefix_for_parsing().map(|r| source(r.as_str()))),
                        format!("transform {:?}", meta.national_prefix_transform_rule()),
                        format!("leading {:?}", meta.leading_digits().map(|r| source(r.as_str()))),
                        format!("portable {}", meta.is_mobile_number_portable()),
                        descriptor("general", Some(d.general())),
                        descriptor("fixed_line", d.fixed_line()),
                        descriptor("mobile", d.mobile()),
                        descriptor("toll_free", d.toll_free()),
                        descriptor("premium_rate", d.premium_rate()),
                        descriptor("shared_cost", d.shared_cost()),
                        descriptor("personal_number", d.personal_number()),
                        descriptor("voip", d.voip()),
                        descriptor("pager", d.pager()),
                        descriptor("uan", d.uan()),
                        descriptor("emergency", d.emergency()),
                        descriptor("voicemail", d.voicemail()),
                        descriptor("short_code", d.short_code()),
                        descriptor("standard_rate", d.standard_rate()),
                        descriptor("carrier", d.carrier()),
                        descriptor("no_international", d.no_international()),
                    ];
                    let formats = meta.formats().iter().map(format).collect::<Vec<_>>();
                    let international = meta.international_formats().iter().map(format).collect::<Vec<_>>();
                    entries.push(format!(
                        "{}\nformats:\n{}\ninternational formats:\n{}",
                        fields.join("\n"),
                        formats.join("\n"),
                        international.join("\n")
                    ));
                }
            }
            entries
        }
    };
}

database_of!(published_database, published, str::to_owned);
database_of!(vendored_database, vendored, unanchored);

/// The published source of a vendored pattern: the patched crate anchors each embedded
/// pattern at the start, as `^(?:pattern\n)`. Panics on a pattern not in that form, so
/// the database comparison also checks that every pattern is anchored, and only that.
pub fn unanchored(source: &str) -> String {
    source
        .strip_prefix("^(?:")
        .and_then(|rest| rest.strip_suffix("\n)"))
        .unwrap_or_else(|| panic!("a vendored pattern not anchored: {source:?}"))
        .to_owned()
}

/// Every descriptor of a metadata entry's `Descriptors`, for either crate (their types
/// differ, their methods do not).
macro_rules! every_descriptor {
    ($descriptors:expr) => {{
        let d = $descriptors;
        [
            Some(d.general()),
            d.fixed_line(),
            d.mobile(),
            d.toll_free(),
            d.premium_rate(),
            d.shared_cost(),
            d.personal_number(),
            d.voip(),
            d.pager(),
            d.uan(),
            d.emergency(),
            d.voicemail(),
            d.short_code(),
            d.standard_rate(),
            d.carrier(),
            d.no_international(),
        ]
    }};
}

/// Every pattern of the vendored database (by source), compiled with the flags the patched
/// crate gives them (`x`, whitespace ignored; ASCII classes) and with the published
/// crate's (Unicode classes): the syntax check the patched load skips, done once here for
/// the whole database. Returns the patterns that fail either way, with the error.
pub fn uncompilable_patterns() -> (usize, Vec<String>) {
    let database = &*vendored::metadata::DATABASE;
    let mut sources: Vec<String> = Vec::new();
    for code in 1..1000u16 {
        for meta in database.by_code(&code).unwrap_or_default() {
            let descriptors = every_descriptor!(meta.descriptors());
            sources.extend(descriptors.into_iter().flatten().map(|x| x.national_number().as_str().to_owned()));
            for format in meta.formats().iter().chain(meta.international_formats()) {
                sources.push(format.pattern().as_str().to_owned());
                sources.extend(format.leading_digits().iter().map(|r| r.as_str().to_owned()));
            }
            for regex in [meta.international_prefix(), meta.national_prefix_for_parsing(), meta.leading_digits()] {
                sources.extend(regex.map(|r| r.as_str().to_owned()));
            }
        }
    }
    let failures = sources
        .iter()
        .filter_map(|source| {
            [false, true].into_iter().find_map(|unicode| {
                let built = regex::RegexBuilder::new(source).ignore_whitespace(true).unicode(unicode).build();
                built.err().map(|e| format!("{source} (unicode {unicode}): {e}"))
            })
        })
        .collect();
    (sources.len(), failures)
}

/// The territories in the database, as (id, calling code, national prefix, examples).
pub struct Territory {
    pub id: String,
    pub code: u16,
    pub national_prefix: Option<String>,
    pub preferred_international_prefix: Option<String>,
    pub examples: Vec<String>,
}

/// Every metadata entry of the (published) database with its example numbers, one per
/// number type the entry describes.
pub fn territories() -> Vec<Territory> {
    let database = &*published::metadata::DATABASE;
    let mut territories = Vec::new();
    for code in 1..1000u16 {
        for meta in database.by_code(&code).unwrap_or_default() {
            let descriptors = every_descriptor!(meta.descriptors());
            let mut examples: Vec<String> = Vec::new();
            for example in descriptors.into_iter().flatten().filter_map(|x| x.example()) {
                if !example.is_empty() && !examples.iter().any(|e| e == example) {
                    examples.push(example.to_owned());
                }
            }
            territories.push(Territory {
                id: meta.id().to_owned(),
                code: meta.country_code(),
                national_prefix: meta.national_prefix().map(str::to_owned),
                preferred_international_prefix: meta.preferred_international_prefix().map(str::to_owned),
                examples,
            });
        }
    }
    territories
}

/// The inputs for one territory: each example number in international, national,
/// dialled-from-abroad, RFC 3966 and punctuated forms, with an extension, and the
/// invalid variants a user types (a digit short, a digit long, a digit wrong, letters).
pub fn cases_for(territory: &Territory) -> Vec<Case> {
    let cc = territory.code;
    let geographic = territory.id != "001";
    let region = geographic.then(|| territory.id.clone());
    let mut cases = Vec::new();
    let mut push = |region: Option<&String>, raw: String| cases.push(Case { region: region.cloned(), raw });
    for example in &territory.examples {
        let (head, tail) = example.split_at(example.len() / 2);
        let last = example.chars().last().and_then(|c| c.to_digit(10)).unwrap_or(0);
        let wrong_last = format!("{}{}", &example[..example.len() - 1], (last + 1) % 10);
        // Forms of the number itself.
        push(None, format!("+{cc}{example}"));
        push(None, format!("+{cc} {head} {tail}"));
        push(None, format!("+{cc}-({head})-{tail}"));
        push(None, format!("+{cc}.{head}.{tail}"));
        push(None, format!("tel:+{cc}-{head}-{tail}"));
        push(None, format!("tel:+{cc}{example};ext=123"));
        push(None, format!("+{cc} {example} ext. 42"));
        push(None, format!("+{cc}{example}#77"));
        push(None, format!("  +{cc}{example}  "));
        // The digits as other scripts write them (full-width, Arabic-Indic, Devanagari,
        // Bengali, Thai), which the parser normalises to ASCII before any pattern runs.
        for zero in ['０', '٠', '۰', '०', '০', '๐'] {
            let script = |digits: &str| -> String {
                digits
                    .chars()
                    .map(|c| c.to_digit(10).and_then(|d| char::from_u32(zero as u32 + d)).unwrap_or(c))
                    .collect()
            };
            push(None, format!("+{}{}", script(&cc.to_string()), script(example)));
            push(None, format!("+{cc} {} {tail}", script(head)));
        }
        // Invalid variants.
        push(None, format!("+{cc}{}", &example[..example.len() - 1]));
        push(None, format!("+{cc}{example}0"));
        push(None, format!("+{cc}{example}12345"));
        push(None, format!("+{cc}{wrong_last}"));
        push(None, format!("+{cc}0{example}"));
        push(None, format!("+{cc}{head}ABC"));
        push(None, format!("+{cc}"));
        if let Some(region) = region.as_ref() {
            push(Some(region), example.clone());
            push(Some(region), format!("{head} {tail}"));
            push(Some(region), format!("({head}) {tail}"));
            push(Some(region), format!("00{cc}{example}"));
            push(Some(region), format!("011{cc}{example}"));
            if let Some(prefix) = &territory.national_prefix {
                push(Some(region), format!("{prefix}{example}"));
                push(Some(region), format!("{prefix} {head}-{tail}"));
                push(Some(region), format!("+{cc} ({prefix}) {example}"));
            }
            if let Some(prefix) = &territory.preferred_international_prefix {
                push(Some(region), format!("{prefix}{cc}{example}"));
            }
            push(Some(region), example[..example.len() - 1].to_owned());
            push(Some(region), format!("{example}9"));
            push(Some(region), wrong_last.clone());
            // The number read as if it were another region's.
            let other = if territory.id == "US" { "GB" } else { "US" };
            push(Some(&other.to_owned()), example.clone());
        }
    }
    cases
}

/// Inputs that belong to no territory: empty, junk, overlong, odd Unicode, vanity.
pub fn edge_cases() -> Vec<Case> {
    let none = [
        "",
        " ",
        "+",
        "++1",
        "+0",
        "+00",
        "00",
        "abc",
        "+abc",
        "+1",
        "+1 800 FLOWERS",
        "+1-800-GOT-JUNK",
        "+44 (0) 20 7946 0958",
        "+1 (415) 555-0123",
        "+１ ４１５ ５５５ ０１２３",
        "+٩٧١٥٠١٢٣٤٥٦٧",
        "+999999999999999999999",
        "+12345678901234567890123456789",
        "+1\u{0}4155550123",
        "+1\t415\n555 0123",
        "tel:",
        "tel:+",
        "tel:+1-415-555-0123;phone-context=example.com",
        "tel:4155550123;phone-context=+1",
        "+14155550123;ext=",
        "+14155550123 x",
        "+14155550123 ext 9999999999",
        "+979123456789",
        "+80012345678",
        "+882",
        "+3",
        "+383 44 123 456",
        "+7 (495) 123-45-67",
        "+86 10 1234 5678",
        "+81 3-1234-5678",
        "+55 (11) 91234-5678",
        "+49 (0)30 123456",
        "+33 (0)1 23 45 67 89",
        "+39 06 1234 5678",
        "+39 312 345 6789",
        "+262 692 12 34 56",
        "+590 690 00 12 34",
    ];
    let regional = [
        ("US", "415 555 0123"),
        ("US", "1 (415) 555-0123"),
        ("US", "911"),
        ("GB", "07400 123456"),
        ("GB", "999"),
        ("GB", "+44 7400 123456"),
        ("DE", "030 123456"),
        ("DE", "0049 30 123456"),
        ("IT", "06 1234 5678"),
        ("IT", "312 345 6789"),
        ("BR", "(11) 91234-5678"),
        ("BR", "0 15 11 91234-5678"),
        ("AR", "011 15 2345 6789"),
        ("AR", "+54 9 11 2345 6789"),
        ("MX", "044 55 1234 5678"),
        ("CN", "010 1234 5678"),
        ("JP", "03-1234-5678"),
        ("RU", "8 (495) 123-45-67"),
        ("FR", "01 23 45 67 89"),
        ("IN", "098765 43210"),
        ("AU", "0412 345 678"),
        ("NZ", "021 123 4567"),
        ("ZA", "082 123 4567"),
        ("NG", "0803 123 4567"),
        ("KE", "0712 345678"),
        ("US", ""),
        ("US", "abc"),
        ("US", "0"),
    ];
    none.iter()
        .map(|raw| Case { region: None, raw: (*raw).to_owned() })
        .chain(regional.iter().map(|(id, raw)| Case { region: Some((*id).to_owned()), raw: (*raw).to_owned() }))
        .collect()
}
