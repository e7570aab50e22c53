//! The wall clock.

use chrono::{DateTime, Utc};

use crate::ports::Clock;

/// [`Clock`] reading the system time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
