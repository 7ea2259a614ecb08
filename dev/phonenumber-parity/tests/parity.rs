//! The vendored `phonenumber` answers exactly as the published one, for the whole
//! database and a corpus built from every territory's example numbers.

use std::collections::BTreeSet;

use phonenumber_parity::{
    cases_for, edge_cases, published_answers, published_database, territories, uncompilable_patterns,
    vendored_answers, vendored_database,
};

/// The territories the vendored metadata file declares, counted in the XML itself, so
/// the corpus cannot silently cover fewer than the database holds.
fn territories_in_the_xml() -> usize {
    let xml = include_str!("../../../shared/vendor/phonenumber/assets/PhoneNumberMetadata.xml");
    xml.matches("<territory ").count()
}

#[test]
fn both_databases_hold_the_same_metadata() {
    let published = published_database();
    let vendored = vendored_database();
    assert_eq!(published.len(), territories_in_the_xml(), "one entry per territory of the XML");
    assert_eq!(published.len(), vendored.len());
    for (published, vendored) in published.iter().zip(&vendored) {
        assert_eq!(published, vendored);
    }
}

#[test]
fn every_pattern_of_the_database_compiles() {
    // What the published load checks at every start (syntax) and more (a full compile).
    let (checked, failures) = uncompilable_patterns();
    // Every territory has at least a general and one typed descriptor.
    assert!(checked > 2 * territories_in_the_xml(), "only {checked} patterns found");
    assert!(failures.is_empty(), "{} of {checked} patterns do not compile:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn both_crates_answer_alike_for_every_territory() {
    let territories = territories();
    assert_eq!(territories.len(), territories_in_the_xml());
    let mut cases = Vec::new();
    let mut codes = BTreeSet::new();
    for territory in &territories {
        assert!(!territory.examples.is_empty(), "{} +{} has no example number", territory.id, territory.code);
        codes.insert(territory.code);
        cases.extend(cases_for(territory));
    }
    cases.extend(edge_cases());

    let mut mismatches = Vec::new();
    let (mut valid, mut parsed) = (0, 0);
    for case in &cases {
        let published = published_answers(case);
        let vendored = vendored_answers(case);
        parsed += usize::from(!published.contains("error="));
        valid += usize::from(published.contains("valid=true"));
        if published != vendored {
            mismatches.push(format!("{case:?}\n  published: {published}\n  vendored:  {vendored}"));
        }
    }
    println!(
        "{} territories ({} calling codes), {} inputs: {parsed} parsed, {valid} valid, {} differ",
        territories.len(),
        codes.len(),
        cases.len(),
        mismatches.len()
    );
    // The corpus must exercise both sides of each check, or agreeing would prove little.
    assert!(valid > 2000 && parsed - valid > 2000 && cases.len() - parsed > 2000, "corpus too one-sided");
    assert!(mismatches.is_empty(), "{} inputs differ:\n{}", mismatches.len(), mismatches.join("\n"));
}
