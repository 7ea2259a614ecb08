//! The system clock. (Tests move a manual one: `otp-testkit`'s `ManualClock`.)

use chrono::{DateTime, Utc};

use crate::ports::Clock;

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
