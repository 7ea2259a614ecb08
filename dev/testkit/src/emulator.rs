//! The Firestore emulator (`FIRESTORE_EMULATOR_HOST`, which `scripts/test` starts) and
//! Firestore stores on it.

use std::time::Duration;

use otp_core::adapters::firestore::{FirestoreAuth, FirestoreConfig, FirestoreStore};
use rand::RngCore;

/// The emulator's address. Without one the test fails, unless the run opts out with
/// `OTP_SKIP_EMULATOR=1`: then it is skipped, loudly (`scripts/test` always starts it).
pub fn host(test: &str) -> Option<String> {
    if let Some(host) = std::env::var("FIRESTORE_EMULATOR_HOST").ok().filter(|h| !h.trim().is_empty()) {
        return Some(host);
    }
    assert!(
        std::env::var("OTP_SKIP_EMULATOR").as_deref() == Ok("1"),
        "FIRESTORE_EMULATOR_HOST is not set: run scripts/test (it starts the Firestore emulator), \
         or set OTP_SKIP_EMULATOR=1 to skip the Firestore tests"
    );
    crate::skip_loudly(&format!(
        "Firestore test `{test}` (OTP_SKIP_EMULATOR=1).\n## Run scripts/test, which starts the emulator, to run it."
    ));
    None
}

/// The call timeout of the stores on the emulator. Calls may take far longer than
/// production's 3 s: an emulator on a loaded machine (CI's two cores shared with a build)
/// is slow, and no test here is about its speed.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// A fresh project on the emulator per store, so tests never see each other's records.
pub fn config() -> FirestoreConfig {
    FirestoreConfig {
        call_timeout: CALL_TIMEOUT,
        ..FirestoreConfig::new(format!("demo-test-{:016x}", rand::rng().next_u64()))
    }
}

/// The store on the emulator at `host` with `config` (two stores of one config share
/// their records, as two Lambda instances do).
pub fn store(host: String, config: FirestoreConfig) -> FirestoreStore {
    FirestoreStore::new(config, FirestoreAuth::Emulator(host))
}

/// A store of its own on the emulator, or `None` when the run skips the emulator.
pub fn fresh_store(test: &str) -> Option<FirestoreStore> {
    Some(store(host(test)?, config()))
}
