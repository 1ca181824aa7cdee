//! The errno numbers that POE programs compare `$!` and error events with, as Linux numbers
//! them: taken from [`rustix::io::Errno`] here, in one place, rather than written as literals.
//!
//! Wheels and components report an error's errno as an `i32` (POE's numeric `$!`), and
//! [`Error::errno`](crate::Error::errno) gives the number POE would set for a refused kernel
//! call; compare them with these.

use rustix::io::Errno;

/// Operation not permitted: a kernel call on something another session owns.
pub const EPERM: i32 = Errno::PERM.raw_os_error();
/// No such file or directory (epoll: the descriptor is not registered).
pub const ENOENT: i32 = Errno::NOENT.raw_os_error();
/// No such process: POE's "no such session, alias or alarm".
pub const ESRCH: i32 = Errno::SRCH.raw_os_error();
/// Interrupted system call.
pub const EINTR: i32 = Errno::INTR.raw_os_error();
/// File exists: an alias or a watched descriptor already taken (epoll: already registered).
pub const EEXIST: i32 = Errno::EXIST.raw_os_error();
/// Invalid argument.
pub const EINVAL: i32 = Errno::INVAL.raw_os_error();
/// Too many open files in this process.
pub const EMFILE: i32 = Errno::MFILE.raw_os_error();
/// Too many open files in the system.
pub const ENFILE: i32 = Errno::NFILE.raw_os_error();
/// Broken pipe: writing to a peer that has gone.
pub const EPIPE: i32 = Errno::PIPE.raw_os_error();
/// Protocol error: `accept` found a connection that failed before it was taken.
pub const EPROTO: i32 = Errno::PROTO.raw_os_error();
/// Connection aborted before `accept` took it.
pub const ECONNABORTED: i32 = Errno::CONNABORTED.raw_os_error();
/// Connection reset by peer: a normal disconnection for the components' default handlers.
pub const ECONNRESET: i32 = Errno::CONNRESET.raw_os_error();
/// No buffer space available.
pub const ENOBUFS: i32 = Errno::NOBUFS.raw_os_error();
/// Out of memory.
pub const ENOMEM: i32 = Errno::NOMEM.raw_os_error();
/// Connection timed out: also the errno of a Client::TCP `ConnectTimeout`.
pub const ETIMEDOUT: i32 = Errno::TIMEDOUT.raw_os_error();
/// Cannot assign the requested address (a bind to an address not on this host).
pub const EADDRNOTAVAIL: i32 = Errno::ADDRNOTAVAIL.raw_os_error();
/// Operation canceled.
pub const ECANCELED: i32 = Errno::CANCELED.raw_os_error();
/// Connection refused.
pub const ECONNREFUSED: i32 = Errno::CONNREFUSED.raw_os_error();
/// A non-blocking connect is under way.
pub const EINPROGRESS: i32 = Errno::INPROGRESS.raw_os_error();
/// No route to the host (a datagram's ICMP answer, reported by the next call on the socket).
pub const EHOSTUNREACH: i32 = Errno::HOSTUNREACH.raw_os_error();
/// The network is unreachable.
pub const ENETUNREACH: i32 = Errno::NETUNREACH.raw_os_error();
/// A datagram too long for the socket or the path.
pub const EMSGSIZE: i32 = Errno::MSGSIZE.raw_os_error();
/// A datagram sent without a destination on a socket that is not connected.
pub const EDESTADDRREQ: i32 = Errno::DESTADDRREQ.raw_os_error();
/// Operation not supported on the socket (`listen` on a datagram socket).
pub const EOPNOTSUPP: i32 = Errno::OPNOTSUPP.raw_os_error();
/// The protocol does not have that kind of socket (TCP datagrams).
pub const EPROTONOSUPPORT: i32 = Errno::PROTONOSUPPORT.raw_os_error();
/// The address is in use: a port or a UNIX socket path taken by another socket.
pub const EADDRINUSE: i32 = Errno::ADDRINUSE.raw_os_error();

#[cfg(test)]
mod tests {
    #[test]
    fn the_numbers_are_linux_numbers() {
        use super::*;
        assert_eq!(
            [EPERM, ENOENT, ESRCH, EINTR, EEXIST, EINVAL, EPIPE, ECONNRESET, ETIMEDOUT],
            [1, 2, 3, 4, 17, 22, 32, 104, 110]
        );
        assert_eq!(
            [ECONNABORTED, EINPROGRESS, EPROTO, EMFILE],
            [103, 115, 71, 24]
        );
        assert_eq!(
            [
                EHOSTUNREACH,
                ENETUNREACH,
                EMSGSIZE,
                EDESTADDRREQ,
                EOPNOTSUPP
            ],
            [113, 101, 90, 89, 95]
        );
    }
}
