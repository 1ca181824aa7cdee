//! Keep-alive connection manager: a Rust port of `POE::Component::Client::Keepalive`.
//!
//! This crate is the root of the workspace. The manager itself is built on the
//! [`reactor`] kernel; until it lands, the crate re-exports the kernel so that a
//! program depending on `keepalive` reaches the whole event model.

pub mod pool;
pub use reactor;

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
