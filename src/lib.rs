//! Keep-alive connection manager: a Rust port of `POE::Component::Client::Keepalive`.
//!
//! This crate is the root of the workspace. The manager itself is built on the
//! [`reactor`] kernel; until it lands, the crate re-exports the kernel so that a
//! program depending on `keepalive` reaches the whole event model.

pub mod http;
mod manager;
pub mod pool;
pub mod resolver;
mod stream;
pub mod tls;

pub use manager::{Connection, Error, Keepalive, KeepaliveBuilder, Request, Response};
pub use pool::{Failure, Origin, PoolKey, RequestId, Settings, Stats};
pub use reactor;
pub use resolver::ResolverKind;
pub use stream::Stream;

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
