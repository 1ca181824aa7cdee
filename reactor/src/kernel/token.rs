//! How poller tokens name what is ready: the one map of the kernel's mio tokens.
//!
//! A token is one `usize` (64 bits here):
//!
//! | bits | what it names |
//! |---|---|
//! | `0…` (bit 63 clear) | a `select_*` watcher: descriptor slot in the low 32 bits, generation in bits 32-60 |
//! | `11…1` | the kernel's waker, which [posters](super::Poster) write |
//! | `11…1` minus `1 + n`, for `n` below [`MAX_SIGNALS`] | the pipe of the kernel's `n`-th OS signal |
//! | `1…` otherwise | a wheel source: wheel slot in the low 32 bits, generation in bits 32-60, bit 62 set for the wheel's second source |
//!
//! Generations make readiness for a slot that was freed and reused since the poll
//! recognisable, and ignored: every slot's generation is [`GEN_MASK`] wide.

use mio::Token;

/// Generations are 29 bits wide, so a generation never reaches the kind bits, and no wheel
/// token reaches the signal tokens.
pub(crate) const GEN_MASK: u32 = 0x1fff_ffff;

/// How many OS signal pipes one kernel may have: far more than there are signals.
pub(crate) const MAX_SIGNALS: usize = 64;

const WHEEL_BIT: usize = 1 << 63;
const SECOND_BIT: usize = 1 << 62;
const SIGNAL_TOP: usize = usize::MAX - 1;
const POSTER: usize = usize::MAX;
const KEY_MASK: usize = 0xffff_ffff;

/// What a token names.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Target {
    /// A `select_*` watcher's descriptor slot.
    Watcher { key: usize, gen: u32 },
    /// Source `which` (0 or 1) of the wheel in slot `key`.
    Wheel { key: usize, gen: u32, which: usize },
    /// The pipe of the kernel's OS signal number `index` (in the order it began watching).
    Signal(usize),
    /// The kernel's waker: another thread posted.
    Poster,
}

/// The token of a `select_*` watcher's descriptor slot.
pub(crate) fn watcher(key: usize, gen: u32) -> Token {
    Token((key & KEY_MASK) | (((gen & GEN_MASK) as usize) << 32))
}

/// The token of source `which` of the wheel in slot `key`.
pub(crate) fn wheel(key: usize, gen: u32, which: usize) -> Token {
    let second = if which == 1 { SECOND_BIT } else { 0 };
    Token(WHEEL_BIT | second | (((gen & GEN_MASK) as usize) << 32) | (key & KEY_MASK))
}

/// The token of the kernel's `index`-th OS signal pipe.
pub(crate) fn signal(index: usize) -> Token {
    debug_assert!(index < MAX_SIGNALS);
    Token(SIGNAL_TOP - index)
}

/// The token of the kernel's waker.
pub(crate) fn poster() -> Token {
    Token(POSTER)
}

/// What `t` names.
#[inline]
pub(crate) fn decode(t: Token) -> Target {
    let v = t.0;
    let key = v & KEY_MASK;
    let gen = ((v >> 32) as u32) & GEN_MASK;
    if v & WHEEL_BIT == 0 {
        Target::Watcher { key, gen }
    } else if v > SIGNAL_TOP - MAX_SIGNALS {
        if v == POSTER {
            Target::Poster
        } else {
            Target::Signal(SIGNAL_TOP - v)
        }
    } else {
        Target::Wheel {
            key,
            gen,
            which: usize::from(v & SECOND_BIT != 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_token_decodes_to_what_made_it() {
        for key in [0, 1, 12345, KEY_MASK] {
            for gen in [0, 1, 77, GEN_MASK] {
                assert_eq!(decode(watcher(key, gen)), Target::Watcher { key, gen });
                for which in [0, 1] {
                    assert_eq!(
                        decode(wheel(key, gen, which)),
                        Target::Wheel { key, gen, which }
                    );
                }
            }
        }
        for i in 0..MAX_SIGNALS {
            assert_eq!(decode(signal(i)), Target::Signal(i));
        }
        assert_eq!(decode(poster()), Target::Poster);
    }

    #[test]
    fn a_generation_past_its_width_wraps_instead_of_changing_the_kind() {
        assert_eq!(
            decode(watcher(3, u32::MAX)),
            Target::Watcher {
                key: 3,
                gen: GEN_MASK
            }
        );
    }
}
