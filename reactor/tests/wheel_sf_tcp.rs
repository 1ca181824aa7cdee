//! Port of poe-test-loops `wheel_sf_tcp.pm`, with the same exchange over IPv6
//! (`wheel_sf_ipv6.pm`), over a UNIX socket (`wheel_sf_unix.pm`) and over a UNIX socket with
//! a Linux abstract name.
//!
//! A listening SocketFactory hands each connection to a new session that echoes rot13'd
//! lines through a ReadWrite wheel reading 10 octets at a time (`BlockSize => 10`). A client
//! connects with a SocketFactory, swaps it for a ReadWrite (BlockSize 10), sends
//! "1: this is a test", sends the answer back as "2: ..." and closes when the second answer
//! comes. Checks: 19 octets and 1 message buffered after the first put, every put flushed
//! once, the server sees EOF as an ErrorEvent with errno 0, wheel IDs tell the wheels apart.
//!
//! Perl-only parts: upstream's server is `POE::Component::Server::TCP` with an `Acceptor`;
//! here the listening session is written out (listen, accept, spawn a session per
//! connection, `shutdown` event), which is what that component does. Peer addresses are
//! `Option<IpAddr>` rather than packed `sockaddr`s, so there is no `inet_ntoa`.
//!
//! `wheel_sf_unix.pm` as upstream has it: `tempfile` makes a file at the socket's path, the
//! server unlinks it before binding (`SocketDomain => PF_UNIX, BindAddress => $path`) and
//! unlinks the socket in its `_stop`; the client connects with `RemoteAddress => $path`;
//! the server keeps listening until its connection's session is gone (`_child` "lose").

mod common;
use common::timeout;
use mio::net::{TcpStream, UnixStream};
use reactor::filter::Line;
use reactor::wheel::ReadWriteBuilder;
use reactor::wheel::WheelError;
use reactor::wheel::{Domain, ReadWrite, SocketFactory};
use reactor::{Ctx, HandlerError, Kernel, Session, SessionId, WheelHandle, WheelId};
use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::rc::Rc;

/// Serialises the tests of this file, so that the descriptors one test opens are not taken
/// for another's leak (`common::assert_no_new_fds`).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The descriptors open now, after a kernel was made and dropped once (so that what the
/// first kernel sets up for the whole process is not counted).
fn fds_now() -> common::Fds {
    let mut k = Kernel::new().unwrap();
    k.run().unwrap();
    common::open_fds()
}

fn rot13(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'a'..='m' | 'A'..='M' => (c as u8 + 13) as char,
            'n'..='z' | 'N'..='Z' => (c as u8 - 13) as char,
            _ => c,
        })
        .collect()
}

fn text<H: 'static>(ctx: &Ctx<'_, H>) -> Result<String, HandlerError> {
    Ok(String::from_utf8(ctx.arg::<Vec<u8>>(0)?.clone())?)
}

#[derive(Clone, Debug)]
enum Transport {
    V4,
    V6,
    Unix(PathBuf),
    /// A Linux abstract name (no file).
    UnixAbstract(String),
}

impl Transport {
    fn is_unix(&self) -> bool {
        matches!(self, Transport::Unix(_) | Transport::UnixAbstract(_))
    }
}

/// A connected stream as SocketFactory delivers it.
enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Conn {
    fn take<H: 'static>(ctx: &mut Ctx<'_, H>, i: usize) -> Result<Conn, HandlerError> {
        if ctx.args().is::<TcpStream>(i) {
            Ok(Conn::Tcp(ctx.take_arg::<TcpStream>(i)?))
        } else {
            Ok(Conn::Unix(ctx.take_arg::<UnixStream>(i)?))
        }
    }

    /// `ReadWrite->new(Handle => $socket, Driver => SysRW->new(BlockSize => 10), Filter =>
    /// Line->new(), InputEvent => 'got_line', ErrorEvent => 'got_error', FlushedEvent =>
    /// 'got_flush')`.
    fn wheel(self) -> ReadWriteBuilder {
        let b = match self {
            Conn::Tcp(s) => ReadWrite::builder(s),
            Conn::Unix(s) => ReadWrite::builder(s),
        };
        b.block_size(10)
            .filter(Line::new())
            .input_event("got_line")
            .error_event("got_error")
            .flushed_event("got_flush")
    }
}

#[derive(Default, Debug)]
struct Results {
    server_addr: Option<SocketAddr>,
    /// "received connection": the listener's address and the peer's, per accept.
    received_connection: Vec<(Option<SocketAddr>, Option<IpAddr>)>,
    client_count: usize,
    lost_expected_child: Option<bool>,
    server_test_two: Option<bool>,
    sss_errors: Vec<(String, i32, String)>,
    sss_test_two: Option<bool>,
    sss_put_flush: Option<(usize, usize)>,
    sss_wrong_id: usize,
    client_connected_to: Option<(Option<IpAddr>, u16)>,
    client_buffered: Option<(usize, usize)>,
    client_received: Option<String>,
    client_test_five: Option<bool>,
    client_test_seven: Option<bool>,
    client_put_flush: Option<(usize, usize)>,
    warnings: Vec<String>,
}

type Shared = Rc<RefCell<Results>>;

// ---------------------------------------------------------------------------------------
// The server session for one connection (sss_*).

struct Sss {
    wheel: Option<WheelHandle>,
    wheel_id: Option<WheelId>,
    test_two: bool,
    flush_count: usize,
    put_count: usize,
    r: Shared,
}

fn sss_new(r: Shared, conn: Conn) -> Session<Sss> {
    let conn = RefCell::new(Some(conn));
    Session::new(Sss {
        wheel: None,
        wheel_id: None,
        test_two: false,
        flush_count: 0,
        put_count: 0,
        r,
    })
    .on(
        "_start",
        move |ctx: &mut Ctx<'_, Sss>| -> Result<(), HandlerError> {
            let conn = conn.borrow_mut().take().ok_or("started twice")?;
            let w = conn.wheel().build(ctx)?;
            let heap = ctx.heap();
            heap.wheel_id = Some(w.id());
            heap.wheel = Some(w);
            heap.test_two = true;
            heap.flush_count = 0;
            heap.put_count = 0;
            Ok(())
        },
    )
    .on(
        "got_line",
        |ctx: &mut Ctx<'_, Sss>| -> Result<(), HandlerError> {
            let line = rot13(&text(ctx)?);
            let id = *ctx.arg::<WheelId>(1)?;
            if Some(id) != ctx.heap().wheel_id {
                ctx.heap().r.borrow_mut().sss_wrong_id += 1;
            }
            ctx.wheel_mut::<ReadWrite>(id)
                .ok_or("no wheel")?
                .put_one(line)?;
            ctx.heap().put_count += 1;
            Ok(())
        },
    )
    .on(
        "got_error",
        |ctx: &mut Ctx<'_, Sss>| -> Result<(), HandlerError> {
            let op = ctx.arg::<WheelError>(0)?.operation.to_owned();
            let errnum = ctx.arg::<WheelError>(0)?.errno;
            let errstr = ctx.arg::<WheelError>(0)?.message.clone();
            let id = *ctx.arg::<WheelId>(1)?;
            let heap = ctx.heap();
            if Some(id) != heap.wheel_id {
                heap.r.borrow_mut().sss_wrong_id += 1;
            }
            // ok(!$errnum, "sss expecting errnum 0; got $errnum")
            heap.r.borrow_mut().sss_errors.push((op, errnum, errstr));
            if errnum != 0 {
                heap.test_two = false;
            }
            heap.wheel = None;
            Ok(())
        },
    )
    .on("got_flush", |ctx: &mut Ctx<'_, Sss>| {
        ctx.heap().flush_count += 1;
    })
    .on("_stop", |ctx: &mut Ctx<'_, Sss>| {
        let heap = ctx.heap();
        let mut r = heap.r.borrow_mut();
        r.sss_test_two = Some(heap.test_two);
        r.sss_put_flush = Some((heap.put_count, heap.flush_count));
    })
}

// ---------------------------------------------------------------------------------------
// The listening session (Server::TCP with an Acceptor, or wheel_sf_unix's server).

struct Server {
    listener: Option<WheelHandle>,
    child: Option<SessionId>,
    test_two: bool,
    /// TCP (upstream's "badness just for testing"): drop the listener after the first
    /// accept. UNIX: keep it until the connection's session is gone.
    drop_on_accept: bool,
    r: Shared,
}

fn server(r: Shared, t: &Transport) -> Session<Server> {
    let t = t.clone();
    let stop_t = t.clone();
    Session::new(Server {
        listener: None,
        child: None,
        test_two: true,
        drop_on_accept: !t.is_unix(),
        r,
    })
    .on(
        "_start",
        move |ctx: &mut Ctx<'_, Server>| -> Result<(), HandlerError> {
            let b = match &t {
                Transport::V4 => SocketFactory::listen().bind_address("127.0.0.1"),
                Transport::V6 => SocketFactory::listen()
                    .domain(Domain::Inet6)
                    .bind_address("::1"),
                Transport::Unix(path) => {
                    // unlink $unix_server_socket if -e $unix_server_socket;
                    if path.exists() {
                        std::fs::remove_file(path)?;
                    }
                    // SocketDomain => PF_UNIX, BindAddress => $unix_server_socket
                    SocketFactory::listen()
                        .domain(Domain::Unix)
                        .bind_address(path.to_str().ok_or("path")?)
                }
                Transport::UnixAbstract(name) => SocketFactory::unix_abstract(name),
            };
            let w = b
                .success_event("got_client")
                .failure_event("got_error")
                .build(ctx)?;
            let addr = ctx
                .wheel_ref::<SocketFactory>(w.id())
                .and_then(|f| f.getsockname());
            ctx.heap().r.borrow_mut().server_addr = addr;
            ctx.heap().listener = Some(w);
            ctx.alias_set("tcp_server")?;
            Ok(())
        },
    )
    .on(
        "got_client",
        |ctx: &mut Ctx<'_, Server>| -> Result<(), HandlerError> {
            let conn = Conn::take(ctx, 0)?;
            let peer = *ctx.arg::<Option<IpAddr>>(1)?;
            let _peer_port = *ctx.arg::<u16>(2)?;
            let id = *ctx.arg::<WheelId>(3)?;
            let listener_addr = ctx
                .wheel_ref::<SocketFactory>(id)
                .and_then(|f| f.getsockname());
            let r = Rc::clone(&ctx.heap().r);
            {
                let mut r = r.borrow_mut();
                r.client_count += 1;
                r.received_connection.push((listener_addr, peer));
            }
            ctx.create(sss_new(Rc::clone(&r), conn))?;
            if ctx.heap().drop_on_accept {
                ctx.heap().listener = None;
            }
            Ok(())
        },
    )
    .on(
        "got_error",
        |ctx: &mut Ctx<'_, Server>| -> Result<(), HandlerError> {
            let op = ctx.arg::<WheelError>(0)?.operation.to_owned();
            let errno = ctx.arg::<WheelError>(0)?.errno;
            let heap = ctx.heap();
            heap.r
                .borrow_mut()
                .warnings
                .push(format!("server got {op} error {errno}"));
            heap.listener = None;
            heap.test_two = false;
            Ok(())
        },
    )
    .on(
        "_child",
        |ctx: &mut Ctx<'_, Server>| -> Result<(), HandlerError> {
            let what = ctx.arg::<String>(0)?.clone();
            let child = *ctx.arg::<SessionId>(1)?;
            match what.as_str() {
                "create" => ctx.heap().child = Some(child),
                "lose" => {
                    let heap = ctx.heap();
                    heap.listener = None;
                    // ok($_[ARG1] == $_[HEAP]->{child}, "lost expected child session")
                    heap.r.borrow_mut().lost_expected_child = Some(heap.child == Some(child));
                }
                _ => {}
            }
            Ok(())
        },
    )
    .on(
        "shutdown",
        |ctx: &mut Ctx<'_, Server>| -> Result<(), HandlerError> {
            ctx.heap().listener = None;
            ctx.alias_remove("tcp_server")?;
            Ok(())
        },
    )
    .on("_stop", move |ctx: &mut Ctx<'_, Server>| {
        let heap = ctx.heap();
        heap.listener = None;
        heap.r.borrow_mut().server_test_two = Some(heap.test_two);
        // unlink $unix_server_socket if -e $unix_server_socket;
        if let Transport::Unix(path) = &stop_t {
            if path.exists() {
                let _ = std::fs::remove_file(path);
            }
        }
    })
}

// ---------------------------------------------------------------------------------------
// The client session (client_tcp_*).

struct Client {
    wheel: Option<WheelHandle>,
    socket_wheel_id: Option<WheelId>,
    readwrite_wheel_id: Option<WheelId>,
    test_five: bool,
    test_seven: bool,
    flush_count: usize,
    put_count: usize,
    r: Shared,
}

fn client(r: Shared, t: &Transport, port: u16) -> Session<Client> {
    let t = t.clone();
    Session::new(Client {
        wheel: None,
        socket_wheel_id: None,
        readwrite_wheel_id: None,
        test_five: false,
        test_seven: false,
        flush_count: 0,
        put_count: 0,
        r,
    })
    .on(
        "_start",
        move |ctx: &mut Ctx<'_, Client>| -> Result<(), HandlerError> {
            let b = match &t {
                Transport::V4 => SocketFactory::connect("127.0.0.1", port),
                // wheel_sf_ipv6.pm also binds the client to ::1.
                Transport::V6 => SocketFactory::connect("::1", port)
                    .domain(Domain::Inet6)
                    .bind_address("::1"),
                // SocketDomain => PF_UNIX, RemoteAddress => $unix_server_socket
                Transport::Unix(path) => {
                    SocketFactory::connect(path.to_str().ok_or("path")?, 0).domain(Domain::Unix)
                }
                Transport::UnixAbstract(name) => SocketFactory::unix_abstract(name).unix_connect(),
            };
            let w = b
                .success_event("got_server")
                .failure_event("got_error")
                .build(ctx)?;
            let heap = ctx.heap();
            heap.socket_wheel_id = Some(w.id());
            heap.wheel = Some(w);
            heap.test_five = true;
            Ok(())
        },
    )
    .on(
        "got_server",
        |ctx: &mut Ctx<'_, Client>| -> Result<(), HandlerError> {
            let conn = Conn::take(ctx, 0)?;
            let peer = (*ctx.arg::<Option<IpAddr>>(1)?, *ctx.arg::<u16>(2)?);
            ctx.heap().r.borrow_mut().client_connected_to = Some(peer);
            // delete $heap->{wheel}: the SocketFactory goes, the ReadWrite takes its place.
            ctx.heap().wheel = None;
            let w = conn.wheel().build(ctx)?;
            let id = w.id();
            let heap = ctx.heap();
            heap.readwrite_wheel_id = Some(id);
            heap.wheel = Some(w);
            heap.test_seven = true;
            heap.flush_count = 0;
            heap.put_count = 1;
            let rw = ctx.wheel_mut::<ReadWrite>(id).ok_or("no wheel")?;
            rw.put_one("1: this is a test")?;
            // ok(driver_out_octets() == 19) and ok(driver_out_messages() == 1)
            let buffered = (rw.driver_out_octets(), rw.driver_out_messages());
            ctx.heap().r.borrow_mut().client_buffered = Some(buffered);
            Ok(())
        },
    )
    .on(
        "got_line",
        |ctx: &mut Ctx<'_, Client>| -> Result<(), HandlerError> {
            let line = text(ctx)?;
            let id = *ctx.arg::<WheelId>(1)?;
            if let Some(rest) = line.strip_prefix("1: ") {
                ctx.heap().put_count += 1;
                ctx.wheel_mut::<ReadWrite>(id)
                    .ok_or("no wheel")?
                    .put_one(format!("2: {rest}"))?;
            } else if let Some(rest) = line.strip_prefix("2: ") {
                // ok($line eq 'this is a test', "received test message")
                ctx.heap().r.borrow_mut().client_received = Some(rest.to_owned());
                ctx.heap().wheel = None;
            }
            Ok(())
        },
    )
    .on(
        "got_error",
        |ctx: &mut Ctx<'_, Client>| -> Result<(), HandlerError> {
            let op = ctx.arg::<WheelError>(0)?.operation.to_owned();
            let errnum = ctx.arg::<WheelError>(0)?.errno;
            let errstr = ctx.arg::<WheelError>(0)?.message.clone();
            let id = *ctx.arg::<WheelId>(1)?;
            let heap = ctx.heap();
            if Some(id) == heap.socket_wheel_id {
                heap.test_five = false;
            }
            if Some(id) == heap.readwrite_wheel_id {
                heap.test_seven = false;
            }
            heap.wheel = None;
            heap.r
                .borrow_mut()
                .warnings
                .push(format!("client {op} error {errnum}: {errstr}"));
            Ok(())
        },
    )
    .on("got_flush", |ctx: &mut Ctx<'_, Client>| {
        ctx.heap().flush_count += 1;
    })
    .on(
        "_stop",
        |ctx: &mut Ctx<'_, Client>| -> Result<(), HandlerError> {
            let heap = ctx.heap();
            {
                let mut r = heap.r.borrow_mut();
                r.client_test_five = Some(heap.test_five);
                r.client_test_seven = Some(heap.test_seven);
                r.client_put_flush = Some((heap.put_count, heap.flush_count));
            }
            // The server may already be gone (UNIX variant): then there is no one to tell.
            let _ = ctx.post("tcp_server", "shutdown", ());
            Ok(())
        },
    )
}

fn exchange(t: Transport) -> Results {
    let r: Shared = Rc::default();
    let mut k = Kernel::new().unwrap();
    k.create(server(Rc::clone(&r), &t)).unwrap();
    let port = match t {
        Transport::Unix(_) | Transport::UnixAbstract(_) => 0,
        _ => r.borrow().server_addr.expect("listening address").port(),
    };
    k.create(client(Rc::clone(&r), &t, port)).unwrap();
    let _guard = timeout(10, "exchange");
    let run = k.run();
    eprintln!("{:#?}", r.borrow());
    run.unwrap();
    let out = std::mem::take(&mut *r.borrow_mut());
    out
}

/// The assertions common to every transport.
fn check_common(r: &Results) {
    assert!(r.warnings.is_empty(), "errors: {:?}", r.warnings);
    // ok(driver_out_octets() == 19, "buffered 19 octets"), ...messages() == 1
    assert_eq!(
        r.client_buffered,
        Some((19, 1)),
        "buffered 19 octets in 1 message"
    );
    // ok($line eq 'this is a test', "received test message")
    assert_eq!(r.client_received.as_deref(), Some("this is a test"));
    // ok(!$errnum, "sss expecting errnum 0"): the client's close is EOF.
    assert_eq!(r.sss_errors, [("read".to_owned(), 0, String::new())]);
    // ok($heap->{test_two}, "test two")
    assert_eq!(r.sss_test_two, Some(true), "test two");
    // ok($heap->{put_count} == $heap->{flush_count}, "flushed all put data")
    assert_eq!(r.sss_put_flush, Some((2, 2)), "server flushed all put data");
    assert_eq!(
        r.client_put_flush,
        Some((2, 2)),
        "client flushed all put data"
    );
    // ok($heap->{test_five}, "test five"), ok($heap->{test_seven}, "test seven")
    assert_eq!(r.client_test_five, Some(true), "test five");
    assert_eq!(r.client_test_seven, Some(true), "test seven");
    assert_eq!(r.sss_wrong_id, 0, "wheel ids");
    assert_eq!(r.client_count, 1, "only one client");
    assert_eq!(r.server_test_two, Some(true), "server test two");
}

#[test]
fn tcp_rot13_echo_with_block_size_10() {
    let _serial = serial();
    let r = exchange(Transport::V4);
    check_common(&r);
    let server = r.server_addr.expect("bound");
    assert_eq!(server.ip(), IpAddr::from([127, 0, 0, 1]));
    assert_ne!(server.port(), 0);
    // ok($addr eq '127.0.0.1' && $port == $tcp_server_port, "received connection")
    assert_eq!(
        r.received_connection,
        [(Some(server), Some(IpAddr::from([127, 0, 0, 1])))],
        "received connection"
    );
    assert_eq!(
        r.client_connected_to,
        Some((Some(server.ip()), server.port()))
    );
}

fn ipv6_loopback_available() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

#[test]
fn ipv6_rot13_echo() {
    let _serial = serial();
    if !ipv6_loopback_available() {
        // wheel_sf_ipv6.pm skips too: "IPv6 tests require a configured IPv6 localhost".
        eprintln!("skipped: no IPv6 loopback address here");
        return;
    }
    let r = exchange(Transport::V6);
    check_common(&r);
    let server = r.server_addr.expect("bound");
    let lo6: IpAddr = "::1".parse().unwrap();
    assert_eq!(server.ip(), lo6);
    assert_eq!(r.received_connection, [(Some(server), Some(lo6))]);
    assert_eq!(r.client_connected_to, Some((Some(lo6), server.port())));
}

/// A temporary directory, removed when dropped (even when the test fails).
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let base = std::env::temp_dir();
        for n in 0..1000 {
            let p = base.join(format!("reactor-{tag}-{}-{n}", std::process::id()));
            if std::fs::create_dir(&p).is_ok() {
                return TempDir(p);
            }
        }
        panic!("cannot create a temporary directory in {}", base.display());
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn unix_socket_rot13_echo() {
    let _serial = serial();
    let before = fds_now();
    let dir = TempDir::new("sf-unix");
    let path = dir.0.join("poe-usrv");
    // my (undef, $unix_server_socket) = tempfile('poe-usrv-XXXXXX'): a plain file is there
    // first, and the server removes it before binding.
    std::fs::write(&path, b"").unwrap();
    let r = exchange(Transport::Unix(path.clone()));
    check_common(&r);
    // No addresses on a UNIX socket: the peer address is undef (None) on both sides.
    assert_eq!(r.received_connection, [(None, None)]);
    assert_eq!(r.client_connected_to, Some((None, 0)));
    // ok($_[ARG1] == $_[HEAP]->{child}, "lost expected child session")
    assert_eq!(r.lost_expected_child, Some(true));
    // The server's _stop unlinked its socket.
    assert!(!path.exists(), "the server removed its socket");
    drop(dir);
    common::assert_no_new_fds(&before);
}

#[test]
fn unix_abstract_name_rot13_echo() {
    let _serial = serial();
    let before = fds_now();
    let name = format!("reactor-sf-unix-{}", std::process::id());
    let r = exchange(Transport::UnixAbstract(name.clone()));
    check_common(&r);
    assert_eq!(r.received_connection, [(None, None)]);
    assert_eq!(r.client_connected_to, Some((None, 0)));
    assert_eq!(r.lost_expected_child, Some(true));
    // The name went with the listener: it can be bound again.
    let again = std::os::unix::net::UnixListener::bind_addr(
        &<std::os::unix::net::SocketAddr as std::os::linux::net::SocketAddrExt>::from_abstract_name(
            name.as_bytes(),
        )
        .unwrap(),
    );
    assert!(again.is_ok(), "{again:?}");
    drop(again);
    common::assert_no_new_fds(&before);
}
