//! The ids of sessions and wheels: plain numbers that handlers receive and compare, kept
//! apart from the kernel that hands them out so that values can copy them.

use std::fmt;

/// A session's numeric ID. IDs count up from 1 and are never reused within a process's
/// kernel; [`KERNEL`] (0) names the kernel itself.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SessionId(pub(crate) u64);

/// The kernel's own designator: a valid destination for `post`, `call` and `signal`
/// (a signal to the kernel reaches every session).
pub const KERNEL: SessionId = SessionId(0);

impl SessionId {
    /// The number (POE's `$session->ID`).
    pub fn get(self) -> u64 {
        self.0
    }

    /// Whether this is the kernel.
    pub fn is_kernel(self) -> bool {
        self.0 == 0
    }

    /// The ID with this number. Whether such a session lives is up to the kernel.
    pub fn from_raw(n: u64) -> Self {
        SessionId(n)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            f.write_str("SessionId(kernel)")
        } else {
            write!(f, "SessionId({})", self.0)
        }
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A wheel's ID: unique for the life of the kernel; every wheel event carries it as its last
/// argument, so one session can tell its wheels apart.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WheelId(pub(crate) u64);

impl WheelId {
    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Debug for WheelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WheelId({})", self.0)
    }
}

impl fmt::Display for WheelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
