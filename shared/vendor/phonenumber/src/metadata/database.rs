// Copyright (C) 2017 1aim GmbH
//
// Licensed under the Apache License, Version 2.0 (the "License");
// you may not use this file except in compliance with the License.
// You may obtain a copy of the License at
//
// http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing, software
// distributed under the License is distributed on an "AS IS" BASIS,
// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
// See the License for the specific language governing permissions and
// limitations under the License.

use crate::error;
use crate::metadata::loader;
use crate::Metadata;
use fnv::FnvHashMap;
use once_cell::sync::{Lazy, OnceCell};
use regex_cache::{CachedRegex, CachedRegexBuilder, RegexCache};
use std::borrow::Borrow;
use std::fmt;
use std::fs::File;
use std::hash::Hash;
use std::io::{BufReader, Cursor};
use std::path::Path;
use std::sync::{Arc, Mutex};

const DATABASE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/database.bin"));

/// The Google provided metadata database, used as default.
///
/// Its patterns are not syntax-checked when it loads: they are libphonenumber's, fixed
/// for each release of this crate, and checking all of them costs over 100 ms at every
/// program start. A pattern is still compiled, and checked, on its first use.
///
/// They are compiled with ASCII classes (`\d` is `[0-9]`): they only ever match national
/// numbers, which the parser has normalised to ASCII digits, so every match is the same,
/// and a pattern compiles in a fraction of the time and memory that Unicode's digit class
/// costs. And they are anchored at the start (`^(?:pattern)`): the crate only ever counts
/// a match that starts at the beginning of the text (`find` and then `start() == 0`), and
/// the leftmost match that starts there is the anchored match, so every answer is the
/// same, while an anchored pattern compiles in about half the time (the regex engine
/// skips the literal prefilter it would otherwise build).
///
/// Each territory is decoded when it is first used, not at load: a program that serves a
/// few countries decodes a few territories, not all of them.
pub static DEFAULT: Lazy<Database> =
    Lazy::new(|| Database::embedded(DATABASE).expect("the embedded database's index decodes"));

/// Representation of a database of metadata for phone number.
#[derive(Clone, Debug)]
pub struct Database {
    cache: Arc<Mutex<RegexCache>>,
    entries: Vec<Entry>,
    by_id: FnvHashMap<String, usize>,
    by_code: FnvHashMap<u16, Vec<usize>>,
    regions: FnvHashMap<u16, Vec<String>>,
}

/// One territory: its metadata, decoded from `encoded` on first use when the database is
/// the embedded one.
#[derive(Clone)]
struct Entry {
    metadata: OnceCell<Arc<super::Metadata>>,
    encoded: &'static [u8],
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("metadata", &self.metadata.get())
            .finish()
    }
}

impl Database {
    /// Load a database from the given file.
    pub fn load<P: AsRef<Path>>(path: P) -> Result<Self, error::LoadMetadata> {
        Database::from(loader::load(BufReader::new(File::open(path)?))?)
    }

    /// Parse a database from the given string.
    pub fn parse<S: AsRef<str>>(content: S) -> Result<Self, error::LoadMetadata> {
        Database::from(loader::load(Cursor::new(content.as_ref()))?)
    }

    /// Create a database from a loaded database.
    pub fn from(meta: Vec<loader::Metadata>) -> Result<Self, error::LoadMetadata> {
        let mut database = Database::empty();
        for meta in meta {
            let meta = Database::territory(meta, &database.cache, false)?;
            let (id, code, main) = (
                meta.id.clone(),
                meta.country_code,
                meta.main_country_for_code,
            );
            let entry = Entry {
                metadata: OnceCell::with_value(Arc::new(meta)),
                encoded: &[],
            };
            database.insert(id, code, main, entry);
        }
        Ok(database)
    }

    /// Converts a loaded territory into `Metadata`, its patterns compiled through
    /// `cache`. Unless `embedded`, the syntax of every pattern is checked first; if
    /// `embedded`, the patterns are anchored and use ASCII classes (see `DEFAULT`).
    fn territory(
        meta: loader::Metadata,
        cache: &Arc<Mutex<RegexCache>>,
        embedded: bool,
    ) -> Result<super::Metadata, error::LoadMetadata> {
        fn tranpose<T, E>(value: Option<Result<T, E>>) -> Result<Option<T>, E> {
            match value {
                None => Ok(None),

                Some(Ok(value)) => Ok(Some(value)),

                Some(Err(err)) => Err(err),
            }
        }

        let regex = |value: String| -> Result<CachedRegex, error::LoadMetadata> {
            if embedded {
                // The newline ends a comment, were a pattern ever to end in one (`x` mode).
                let anchored = format!("^(?:{value}\n)");
                Ok(CachedRegexBuilder::new(cache.clone(), &anchored)
                    .ignore_whitespace(true)
                    .unicode(false)
                    .build_unchecked())
            } else {
                Ok(CachedRegexBuilder::new(cache.clone(), &value)
                    .ignore_whitespace(true)
                    .build()?)
            }
        };

        let descriptor =
            |desc: loader::Descriptor| -> Result<super::Descriptor, error::LoadMetadata> {
                desc.national_number.as_ref().unwrap();
                desc.national_number.as_ref().unwrap();

                Ok(super::Descriptor {
                    national_number: desc
                        .national_number
                        .ok_or_else(|| {
                            error::LoadMetadata::from(error::Metadata::MissingValue {
                                phase: "descriptor".into(),
                                name: "national_number".into(),
                            })
                        })
                        .and_then(regex)?,

                    possible_length: desc.possible_length,
                    possible_local_length: desc.possible_local_length,
                    example: desc.example,
                })
            };

        let format = |format: loader::Format| -> Result<super::Format, error::LoadMetadata> {
            Ok(super::Format {
                pattern: format
                    .pattern
                    .ok_or_else(|| {
                        error::LoadMetadata::from(error::Metadata::MissingValue {
                            phase: "format".into(),
                            name: "pattern".into(),
                        })
                    })
                    .and_then(regex)?,

                format: format.format.ok_or_else(|| {
                    error::LoadMetadata::from(error::Metadata::MissingValue {
                        phase: "format".into(),
                        name: "format".into(),
                    })
                })?,

                leading_digits: format
                    .leading_digits
                    .into_iter()
                    .map(&regex)
                    .collect::<Result<_, _>>()?,

                national_prefix: format.national_prefix_formatting_rule,
                national_prefix_optional: format.national_prefix_optional_when_formatting,

                domestic_carrier: format.domestic_carrier,
            })
        };

        let metadata = |meta: loader::Metadata| -> Result<super::Metadata, error::LoadMetadata> {
            Ok(super::Metadata {
                descriptors: super::Descriptors {
                    general: descriptor(meta.general.ok_or_else(|| {
                        error::LoadMetadata::from(error::Metadata::MissingValue {
                            phase: "metadata".into(),
                            name: "generalDesc".into(),
                        })
                    })?)?,

                    fixed_line: tranpose(meta.fixed_line.map(descriptor))?,
                    mobile: tranpose(meta.mobile.map(descriptor))?,
                    toll_free: tranpose(meta.toll_free.map(descriptor))?,
                    premium_rate: tranpose(meta.premium_rate.map(descriptor))?,
                    shared_cost: tranpose(meta.shared_cost.map(descriptor))?,
                    personal_number: tranpose(meta.personal_number.map(descriptor))?,
                    voip: tranpose(meta.voip.map(descriptor))?,
                    pager: tranpose(meta.pager.map(descriptor))?,
                    uan: tranpose(meta.uan.map(descriptor))?,
                    emergency: tranpose(meta.emergency.map(descriptor))?,
                    voicemail: tranpose(meta.voicemail.map(descriptor))?,
                    short_code: tranpose(meta.short_code.map(descriptor))?,
                    standard_rate: tranpose(meta.standard_rate.map(descriptor))?,
                    carrier: tranpose(meta.carrier.map(descriptor))?,
                    no_international: tranpose(meta.no_international.map(descriptor))?,
                },

                id: meta.id.ok_or_else(|| {
                    error::LoadMetadata::from(error::Metadata::MissingValue {
                        phase: "metadata".into(),
                        name: "id".into(),
                    })
                })?,

                country_code: meta.country_code.ok_or_else(|| {
                    error::LoadMetadata::from(error::Metadata::MissingValue {
                        phase: "metadata".into(),
                        name: "countryCode".into(),
                    })
                })?,

                international_prefix: tranpose(meta.international_prefix.map(regex))?,
                preferred_international_prefix: meta.preferred_international_prefix,
                national_prefix: meta.national_prefix,
                preferred_extension_prefix: meta.preferred_extension_prefix,
                national_prefix_for_parsing: tranpose(meta.national_prefix_for_parsing.map(regex))?,
                national_prefix_transform_rule: meta.national_prefix_transform_rule,

                formats: meta
                    .formats
                    .into_iter()
                    .map(&format)
                    .collect::<Result<_, _>>()?,
                international_formats: meta
                    .international_formats
                    .into_iter()
                    .map(&format)
                    .collect::<Result<_, _>>()?,

                main_country_for_code: meta.main_country_for_code,
                leading_digits: tranpose(meta.leading_digits.map(regex))?,
                mobile_number_portable: meta.mobile_number_portable,
            })
        };

        metadata(meta)
    }

    /// The embedded database: its index, each territory's metadata left encoded until it
    /// is first used.
    fn embedded(encoded: &'static [u8]) -> Result<Self, postcard::Error> {
        let territories: Vec<loader::Encoded<'static>> = postcard::from_bytes(encoded)?;
        let mut database = Database::empty();
        for territory in territories {
            let entry = Entry {
                metadata: OnceCell::new(),
                encoded: territory.metadata.0,
            };
            let (id, code, main) = (
                territory.id,
                territory.country_code,
                territory.main_country_for_code,
            );
            database.insert(id, code, main, entry);
        }
        Ok(database)
    }

    fn empty() -> Self {
        Database {
            cache: Arc::new(Mutex::new(RegexCache::new(100))),
            entries: Vec::new(),
            by_id: FnvHashMap::default(),
            by_code: FnvHashMap::default(),
            regions: FnvHashMap::default(),
        }
    }

    fn insert(&mut self, id: String, code: u16, main: bool, entry: Entry) {
        let index = self.entries.len();
        self.entries.push(entry);

        let by_code = self.by_code.entry(code).or_insert_with(Vec::new);
        let regions = self.regions.entry(code).or_insert_with(Vec::new);

        if main {
            by_code.insert(0, index);
            regions.insert(0, id.clone())
        } else {
            by_code.push(index);
            regions.push(id.clone());
        }

        self.by_id.insert(id, index);
    }

    /// The metadata of the territory at `index`, decoded now if this is its first use.
    fn get(&self, index: usize) -> &super::Metadata {
        let entry = &self.entries[index];
        entry.metadata.get_or_init(|| {
            let meta = postcard::from_bytes(entry.encoded).expect("the embedded territory decodes");
            Arc::new(
                Database::territory(meta, &self.cache, true)
                    .expect("the embedded territory is complete"),
            )
        })
    }

    /// How many territories have been decoded so far (all of them, for a database that
    /// was not the embedded one).
    pub fn decoded(&self) -> usize {
        self.entries
            .iter()
            .filter(|entry| entry.metadata.get().is_some())
            .count()
    }

    /// Get the regular expression cache.
    pub fn cache(&self) -> Arc<Mutex<RegexCache>> {
        self.cache.clone()
    }

    /// Get a metadata entry by country ID.
    pub fn by_id<Q>(&self, key: &Q) -> Option<&super::Metadata>
    where
        Q: ?Sized + Hash + Eq,
        String: Borrow<Q>,
    {
        self.by_id.get(key).map(|&index| self.get(index))
    }

    /// Get metadata entries by country code.
    pub fn by_code<Q>(&self, key: &Q) -> Option<Vec<&super::Metadata>>
    where
        Q: ?Sized + Hash + Eq,
        u16: Borrow<Q>,
    {
        self.by_code
            .get(key)
            .map(|m| m.iter().map(|&index| self.get(index)).collect())
    }

    /// Get all country IDs corresponding to the given country code.
    pub fn region<Q>(&self, code: &Q) -> Option<Vec<&str>>
    where
        Q: ?Sized + Hash + Eq,
        u16: Borrow<Q>,
    {
        self.regions
            .get(code)
            .map(|m| m.iter().map(AsRef::as_ref).collect())
    }

    /// Iterator over all `Metadata` entries in this database.
    pub fn iter(&self) -> impl Iterator<Item = &Metadata> {
        self.by_id.values().map(|&index| self.get(index))
    }
}
