//! Wheels: I/O state machines that live in the kernel and turn readiness into named
//! events for the session that made them (POE's `POE::Wheel::*`): [`ReadWrite`],
//! [`SocketFactory`], [`ListenAccept`], [`Run`], [`FollowTail`] and [`Udp`] (datagrams,
//! CPAN's `POE::Wheel::UDP`). The kernel knows them only through the [`Wheel`] trait,
//! which other crates may implement for wheels of their own; a wheel that works by time
//! rather than by readiness asks the kernel for wake-ups
//! ([`Kernel::wheel_wake`](crate::Kernel::wheel_wake)).

mod error;
mod filter_slot;
mod followtail;
mod out_queue;
mod readwrite;
mod run;
mod socketfactory;
mod udp;

pub use crate::kernel::wakes::WakeFn;
pub use crate::kernel::wheels::{
    Parking, Readiness, Wheel, WheelHandle, WheelId, WriteOut, WriteVisit,
};
pub use error::WheelError;
pub use followtail::{FollowTail, FollowTailBuilder, TailEvent, TailWatch};
pub use readwrite::RwEvent;
pub use readwrite::{ReadHandle, ReadWrite, ReadWriteBuilder, WriteHandle};
pub use run::{child_main, ChildFn, Conduit, Program, Redirect, Run, RunBuilder, RunEvent};
pub use socketfactory::{
    Domain, ListenAccept, Protocol, SocketFactory, SocketFactoryBuilder, SocketType,
};
pub use udp::{QueueFull, Udp, UdpBuilder, UdpEvent, DEFAULT_MAX_QUEUED};

/// The text of an OS error as POE's `$!` gives it: "Connection refused", without Rust's
/// " (os error 111)" suffix. Wheels report it in their error events; components built on
/// them use it for their own error texts.
pub fn errstr(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => s[..i].to_owned(),
        _ => s,
    }
}
