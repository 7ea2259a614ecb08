use std::env;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;

#[path = "src/metadata/loader.rs"]
mod loader;

#[path = "src/error.rs"]
mod error;

fn main() {
    let pnm_path = "assets/PhoneNumberMetadata.xml";
    let metadata = loader::load(BufReader::new(
        File::open(pnm_path).expect("could not open metadata file"),
    ))
    .expect("failed to load metadata");
    println!("cargo:rerun-if-changed={pnm_path}");

    let mut out = BufWriter::new(
        File::create(Path::new(&env::var("OUT_DIR").unwrap()).join("database.bin"))
            .expect("could not create database file"),
    );

    // Each territory encoded on its own, behind the keys it is found by: a program
    // decodes only the territories it uses (`metadata::Database`).
    let blobs = metadata
        .iter()
        .map(postcard::to_stdvec)
        .collect::<Result<Vec<_>, _>>()
        .expect("failed to serialize a territory");
    let encoded = metadata
        .iter()
        .zip(&blobs)
        .map(|(meta, blob)| loader::Encoded {
            id: meta.id.clone().expect("a territory without an id"),
            country_code: meta
                .country_code
                .expect("a territory without a country code"),
            main_country_for_code: meta.main_country_for_code,
            metadata: loader::Bytes(blob),
        })
        .collect::<Vec<_>>();
    postcard::to_io(&encoded, &mut out).expect("failed to serialize database");
}
