//! A parsed number's territory and type, judged as libphonenumber judges them: on the
//! national significant number *with* its leading zeros (Italy's `0` of fixed lines, the
//! `0` of Ascension's and Gabon's numbers, ...).
//!
//! Why not the crate's `PhoneNumber::number_type`: it finds the territory and classifies
//! on the national number with its leading zeros removed, while its `is_valid` judges the
//! number with them. An Italian fixed line `+39 031 2342 2785` is then valid, and its
//! zero-less digits `3123422785` match Italy's *mobile* pattern: a landline served as a
//! mobile. The crate's metadata API (descriptors and their `is_match`, which applies a
//! type's possible lengths) gives everything libphonenumber's rules need, so they are
//! written here over it and the vendored crate stays the published one.

use phonenumber::metadata::{DATABASE, Metadata};
use phonenumber::{PhoneNumber, Type};

use super::NON_GEOGRAPHIC;

/// The territory `number` belongs to and its type there; `None` when no territory of its
/// calling code claims it. `Some((_, Type::Unknown))` is a number that is not valid (what
/// the crate's `is_valid` says too: it judges the same digits the same way).
pub(super) fn classify(number: &PhoneNumber) -> Option<(&'static Metadata, Type)> {
    // `Display` of the national number writes its leading zeros: the national
    // significant number, as the metadata's patterns and examples spell it.
    classify_nsn(number.code().value(), &number.national().to_string())
}

/// [`classify`] of a calling code and a national significant number.
fn classify_nsn(code: u16, nsn: &str) -> Option<(&'static Metadata, Type)> {
    let meta = territory(code, nsn)?;
    Some((meta, number_type(meta, nsn)))
}

/// libphonenumber's `getRegionCodeForNumber`: a calling code's only territory, or the
/// first of its territories whose leading digits start the number (or, for one without
/// leading digits, whose patterns know it).
fn territory(code: u16, nsn: &str) -> Option<&'static Metadata> {
    let regions = DATABASE.region(&code)?;
    if let [only] = regions[..] {
        return if only == NON_GEOGRAPHIC {
            DATABASE.by_code(&code)?.into_iter().find(|meta| meta.id() == NON_GEOGRAPHIC)
        } else {
            DATABASE.by_id(only)
        };
    }
    regions.into_iter().filter_map(|id| DATABASE.by_id(id)).find(|meta| match meta.leading_digits() {
        Some(leading) => leading.find(nsn).is_some_and(|found| found.start() == 0),
        None => number_type(meta, nsn) != Type::Unknown,
    })
}

/// libphonenumber's `getNumberTypeHelper`: the first special type whose pattern matches,
/// else fixed line, mobile, or both where the two cannot be told apart.
fn number_type(meta: &Metadata, nsn: &str) -> Type {
    let d = meta.descriptors();
    if !d.general().is_match(nsn) {
        return Type::Unknown;
    }
    let special = [
        (d.premium_rate(), Type::PremiumRate),
        (d.toll_free(), Type::TollFree),
        (d.shared_cost(), Type::SharedCost),
        (d.voip(), Type::Voip),
        (d.personal_number(), Type::PersonalNumber),
        (d.pager(), Type::Pager),
        (d.uan(), Type::Uan),
        (d.voicemail(), Type::Voicemail),
    ];
    if let Some((_, kind)) = special.iter().find(|(desc, _)| desc.is_some_and(|desc| desc.is_match(nsn))) {
        return *kind;
    }
    let same_pattern = match (d.fixed_line(), d.mobile()) {
        (Some(fixed), Some(mobile)) => fixed.national_number().as_str() == mobile.national_number().as_str(),
        _ => false,
    };
    let mobile = || d.mobile().is_some_and(|desc| desc.is_match(nsn));
    if d.fixed_line().is_some_and(|desc| desc.is_match(nsn)) {
        return if same_pattern || mobile() { Type::FixedLineOrMobile } else { Type::FixedLine };
    }
    if !same_pattern && mobile() { Type::Mobile } else { Type::Unknown }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Type::*;

    /// Every territory's example number of every type, as the metadata gives it: its
    /// territory, its calling code, its national significant number, and the types
    /// libphonenumber promises it is (its `ExampleNumbersTest`: an example is valid and of
    /// its own type, where a fixed line's or a mobile's may also be fixed-line-or-mobile,
    /// the two patterns overlapping in many countries: the US, ...).
    fn examples() -> Vec<(&'static str, u16, &'static str, &'static [Type])> {
        let mut all = Vec::new();
        for meta in DATABASE.iter() {
            let d = meta.descriptors();
            let kinds: [(_, &'static [Type]); 10] = [
                (d.fixed_line(), &[FixedLine, FixedLineOrMobile]),
                (d.mobile(), &[Mobile, FixedLineOrMobile]),
                (d.toll_free(), &[TollFree]),
                (d.premium_rate(), &[PremiumRate]),
                (d.shared_cost(), &[SharedCost]),
                (d.voip(), &[Voip]),
                (d.personal_number(), &[PersonalNumber]),
                (d.pager(), &[Pager]),
                (d.uan(), &[Uan]),
                (d.voicemail(), &[Voicemail]),
            ];
            for (desc, expected) in kinds {
                if let Some(example) = desc.and_then(|desc| desc.example()) {
                    all.push((meta.id(), meta.country_code(), example, expected));
                }
            }
        }
        assert!(all.len() > 1000, "{}", all.len());
        all
    }

    #[test]
    fn every_territorys_example_numbers_are_of_their_own_type() {
        let mut wrong = Vec::new();
        for (id, code, example, expected) in examples() {
            let kind = classify_nsn(code, example).map_or(Unknown, |(_, kind)| kind);
            if !expected.contains(&kind) {
                wrong.push(format!("{id} +{code} {example}: {kind:?}, not {expected:?}"));
            }
        }
        assert!(wrong.is_empty(), "{} examples misjudged:\n{}", wrong.len(), wrong.join("\n"));
    }

    /// The same examples written in E.164, through the crate's parser as a request is. The
    /// parser keeps each example's digits, leading zeros included, but for a few numbers
    /// that start with their country's trunk prefix (`8` in Russia, Kazakhstan, Belarus and
    /// Lithuania: their `8 800` toll-free ranges), which it strips where libphonenumber
    /// would see the number then no longer fits; those come out as no valid number, so they
    /// are refused as well, and no other example is touched.
    #[test]
    fn every_territorys_example_numbers_parse_to_their_own_type() {
        let mut wrong = Vec::new();
        let mut trunk_stripped = Vec::new();
        for (id, code, example, expected) in examples() {
            let raw = format!("+{code}{example}");
            let number = phonenumber::parse(None, &raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            let kind = classify(&number).map_or(Unknown, |(_, kind)| kind);
            assert_eq!(kind != Unknown, phonenumber::is_valid(&number), "validity as the crate judges it: {raw}");
            let national = number.national().to_string();
            if national != example {
                let dropped_trunk_prefix = ["RU", "KZ", "BY", "LT"].contains(&id) && example.starts_with('8');
                assert!(
                    dropped_trunk_prefix && example.ends_with(&national) && kind == Unknown,
                    "{raw}: parsed as {national}, {kind:?}"
                );
                trunk_stripped.push(raw);
            } else if !expected.contains(&kind) {
                wrong.push(format!("{id} {raw}: {kind:?}, not {expected:?}"));
            }
        }
        assert!(wrong.is_empty(), "{} examples misjudged:\n{}", wrong.len(), wrong.join("\n"));
        assert_eq!(trunk_stripped.len(), 10, "{trunk_stripped:?}");
    }

    #[test]
    fn leading_zeros_are_part_of_the_number_judged() {
        for (raw, territory, expected) in [
            // Italian fixed lines (Como, Pordenone): their zero-less digits match Italy's
            // mobile pattern.
            ("+39 031 2342 2785", "IT", FixedLine),
            ("+39 0431 234 5678", "IT", FixedLine),
            // Ascension: a UAN number by the metadata.
            ("+247 040914", "AC", Uan),
            // An Italian mobile, for contrast, and a Vatican fixed line: its territory too is
            // told by its leading zero (Vatican City's leading digits are `06698`).
            ("+39 312 345 6789", "IT", Mobile),
            ("+39 06 698 12345", "VA", FixedLine),
        ] {
            let number = phonenumber::parse(None, raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            let (meta, kind) = classify(&number).unwrap_or_else(|| panic!("{raw}: no territory"));
            assert_eq!((meta.id(), kind), (territory, expected), "{raw}");
        }
    }
}
