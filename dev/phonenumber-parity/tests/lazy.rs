//! The vendored database decodes a territory on its first use, not at load: its own
//! process (a test binary of its own), so no other test has decoded anything before.

use vendored::metadata::DATABASE;

#[test]
fn a_territory_is_decoded_on_its_first_use_and_only_then() {
    let database = &*DATABASE;
    assert_eq!(database.decoded(), 0, "loading the database decodes no territory");

    let us = vendored::parse(None, "+1 201 555 0123").expect("a US number parses");
    assert!(vendored::is_valid(&us));
    assert_eq!(us.country().id().map(|id| id.as_ref().to_owned()).as_deref(), Some("US"));
    // +1 is shared by 25 territories; the US is the code's main one and claims the number.
    assert_eq!(database.region(&1).map(|regions| regions.len()), Some(25));
    assert_eq!(database.decoded(), 1, "a US number decodes the US only");

    let gb = vendored::parse(None, "+44 7400 123456").expect("a GB number parses");
    assert!(vendored::is_valid(&gb));
    assert_eq!(database.decoded(), 2, "then a GB number decodes GB");

    // Asking again decodes nothing more; asking for everything decodes everything.
    assert!(database.by_id("US").is_some());
    assert_eq!(database.decoded(), 2);
    let territories = database.iter().count();
    assert!(territories > 240, "{territories} territories");
    assert!(database.decoded() >= territories, "iterating decodes every territory");
}
