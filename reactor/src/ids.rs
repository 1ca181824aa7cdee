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
///
/// It is the wheel's number (1, 2, 3, ... as POE counts them: [`WheelId::get`], and what
/// it prints as) with the slot the wheel occupies in the kernel's table beside it, so the
/// kernel finds a wheel by its id without a lookup table. Ids order by number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WheelId(pub(crate) u64);

/// Bits of a [`WheelId`] that hold the slot: 16 million wheels at once; the number has the
/// other 40 (a trillion wheels in a kernel's life).
const WHEEL_KEY_BITS: u32 = 24;

impl WheelId {
    /// The id of no wheel: what a parked slot holds.
    pub(crate) const PARKED: WheelId = WheelId(u64::MAX);

    /// The largest slot a wheel id can name.
    pub(crate) const MAX_KEY: usize = (1 << WHEEL_KEY_BITS) - 1;

    /// Wheel number `seq` in slot `key` (at most [`WheelId::MAX_KEY`]).
    pub(crate) fn new(seq: u64, key: usize) -> WheelId {
        debug_assert!(key <= Self::MAX_KEY);
        WheelId((seq << WHEEL_KEY_BITS) | (key as u64 & Self::MAX_KEY as u64))
    }

    /// The slot the wheel occupies.
    #[inline]
    pub(crate) fn key(self) -> usize {
        (self.0 & Self::MAX_KEY as u64) as usize
    }

    /// The number.
    pub fn get(self) -> u64 {
        self.0 >> WHEEL_KEY_BITS
    }
}

impl fmt::Debug for WheelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WheelId({})", self.get())
    }
}

impl fmt::Display for WheelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.get())
    }
}
