//! `ServerTcp` and `ClientTcp` on UNIX sockets (POE's `Domain => AF_UNIX`, which
//! Server::TCP calls "unofficial"; POE has no test of it): a line echo over a path, over a
//! Linux abstract name and with POE's spelling (`Address`/`RemoteAddress` as the path),
//! `remote_ip` "LOCAL", the `Acceptor` getting a `UnixStream`, the line limit still
//! enforced, failures (a path in use, a path nobody listens at), the options refused for
//! UNIX sockets, and no descriptor left behind.

mod common;
use common::{assert_no_new_fds, timeout};
use mio::net::UnixStream;
use reactor::component::{
    ClientTcp, ClientTcpBuilder, ComponentError, ServerTcp, DEFAULT_LINE_LIMIT,
};
use reactor::errno::{EADDRINUSE, ENOENT};
use reactor::filter::FilterError;
use reactor::wheel::{Domain, WheelError};
use reactor::{HandlerError, Kernel};
use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Serialises the tests of this file, so that the descriptors one test opens are not taken
/// for another's leak.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The descriptors open now, after a kernel was made and dropped once.
fn fds_now() -> common::Fds {
    let mut k = Kernel::new().unwrap();
    k.run().unwrap();
    common::open_fds()
}

/// A temporary directory, removed when dropped.
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

#[derive(Default, Debug)]
struct Seen {
    server_got: Vec<String>,
    remote: Vec<(String, u16)>,
    connected: Vec<(Option<IpAddr>, u16)>,
    client_got: Vec<String>,
    errors: Vec<String>,
    local_addr: Option<Option<std::net::SocketAddr>>,
}

/// How the two components are told where the socket is.
enum Spelling<'a> {
    /// `unix_path` / `ClientTcp::unix`.
    Ours(&'a Path),
    /// `domain(Domain::Unix)` with the path as `Address` / `RemoteAddress`.
    Poe(&'a str),
}

/// A line echo server and a client that says two lines, then shuts both down.
fn echo(spelling: Spelling<'_>) -> Seen {
    let seen: Rc<RefCell<Seen>> = Rc::default();
    let mut k = Kernel::new().unwrap();
    let server = match &spelling {
        Spelling::Ours(p) => ServerTcp::builder().unix_path(p),
        Spelling::Poe(p) => ServerTcp::builder().domain(Domain::Unix).address(*p),
    };
    let (s1, s2) = (Rc::clone(&seen), Rc::clone(&seen));
    let handle = server
        .alias("unix_echo")
        .client_connected(move |ctx| {
            let h = ctx.heap();
            s1.borrow_mut()
                .remote
                .push((h.remote_ip.to_string(), h.remote_port));
        })
        .client_input(move |ctx| -> Result<(), HandlerError> {
            let line = String::from_utf8(ctx.take_arg::<Vec<u8>>(0)?)?;
            s2.borrow_mut().server_got.push(line.clone());
            ctx.client().ok_or("no client")?.put_one(line)?;
            Ok(())
        })
        .build(&mut k)
        .unwrap();
    seen.borrow_mut().local_addr = Some(handle.local_addr());
    let client: ClientTcpBuilder<()> = match &spelling {
        Spelling::Ours(p) => ClientTcp::unix(p),
        Spelling::Poe(p) => ClientTcpBuilder::new()
            .domain(Domain::Unix)
            .remote_address(*p)
            .remote_port(0),
    };
    let (s3, s4, s5) = (Rc::clone(&seen), Rc::clone(&seen), Rc::clone(&seen));
    client
        .connected(move |ctx| -> Result<(), HandlerError> {
            let peer = (*ctx.arg::<Option<IpAddr>>(1)?, *ctx.arg::<u16>(2)?);
            s3.borrow_mut().connected.push(peer);
            let server = ctx.server().ok_or("connected")?;
            server.put_one("hello")?;
            server.put_one("wörld")?;
            Ok(())
        })
        .connect_error(move |ctx| -> Result<(), HandlerError> {
            s5.borrow_mut()
                .errors
                .push(ctx.arg::<WheelError>(0)?.to_string());
            ctx.post("unix_echo", "shutdown", ())?;
            Ok(())
        })
        .server_input(move |ctx| -> Result<(), HandlerError> {
            let line = String::from_utf8(ctx.take_arg::<Vec<u8>>(0)?)?;
            let mut s = s4.borrow_mut();
            s.client_got.push(line);
            if s.client_got.len() == 2 {
                ctx.yield_("shutdown", ())?;
                ctx.post("unix_echo", "shutdown", ())?;
            }
            Ok(())
        })
        .build(&mut k)
        .unwrap();
    let _guard = timeout(10, "unix echo");
    k.run().unwrap();
    drop(k);
    let out = std::mem::take(&mut *seen.borrow_mut());
    out
}

fn check_echo(s: &Seen) {
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    assert_eq!(s.server_got, ["hello", "wörld"]);
    assert_eq!(s.client_got, ["hello", "wörld"]);
    // $_[HEAP]{remote_ip} is "LOCAL" on a UNIX socket; there is no port.
    assert_eq!(s.remote, [("LOCAL".to_owned(), 0)]);
    assert_eq!(s.connected, [(None, 0)]);
    // No Internet address to report.
    assert_eq!(s.local_addr, Some(None));
}

#[test]
fn a_line_echo_over_a_unix_path() {
    let _serial = serial();
    let before = fds_now();
    let dir = TempDir::new("comp-unix");
    let path = dir.0.join("echo.sock");
    let s = echo(Spelling::Ours(&path));
    check_echo(&s);
    // As in POE, the socket file stays when the server stops.
    assert!(path.exists());
    drop(dir);
    assert_no_new_fds(&before);
}

#[test]
fn a_line_echo_with_poe_s_spelling() {
    let _serial = serial();
    let dir = TempDir::new("comp-unix-poe");
    let path = dir.0.join("echo.sock");
    let s = echo(Spelling::Poe(path.to_str().unwrap()));
    check_echo(&s);
}

#[test]
fn a_line_echo_over_an_abstract_name() {
    let _serial = serial();
    let before = fds_now();
    let name = format!("\0reactor-comp-unix-{}", std::process::id());
    let s = echo(Spelling::Ours(Path::new(&name)));
    check_echo(&s);
    assert_no_new_fds(&before);
}

#[test]
fn the_acceptor_gets_a_unix_stream() {
    let _serial = serial();
    let dir = TempDir::new("comp-unix-acceptor");
    let path = dir.0.join("acceptor.sock");
    /// (ARG0 is a UnixStream, ARG1, ARG2) per accepted connection.
    type Accepted = Vec<(bool, Option<IpAddr>, u16)>;
    let got: Rc<RefCell<Accepted>> = Rc::default();
    let g = Rc::clone(&got);
    let mut k = Kernel::new().unwrap();
    ServerTcp::builder()
        .unix_path(&path)
        .alias("acceptor")
        .acceptor(move |ctx| -> Result<(), HandlerError> {
            let is_unix = ctx.args().is::<UnixStream>(0);
            let peer = (*ctx.arg::<Option<IpAddr>>(1)?, *ctx.arg::<u16>(2)?);
            g.borrow_mut().push((is_unix, peer.0, peer.1));
            // POE's Acceptor sessions say "disconnected" themselves; here the socket just
            // closes, and the server goes.
            ctx.yield_("shutdown", ())?;
            Ok(())
        })
        .build(&mut k)
        .unwrap();
    let client = std::os::unix::net::UnixStream::connect(&path).unwrap();
    let _guard = timeout(10, "acceptor");
    k.run().unwrap();
    drop(client);
    assert_eq!(*got.borrow(), [(true, None, 0)]);
}

#[test]
fn the_line_limit_holds_on_a_unix_socket_too() {
    let _serial = serial();
    let dir = TempDir::new("comp-unix-limit");
    let path = dir.0.join("limit.sock");
    let errors: Rc<RefCell<Vec<WheelError>>> = Rc::default();
    let e = Rc::clone(&errors);
    let mut k = Kernel::new().unwrap();
    ServerTcp::builder()
        .unix_path(&path)
        .alias("limited")
        .client_input(|_| {})
        .client_error(move |ctx| -> Result<(), HandlerError> {
            e.borrow_mut().push(ctx.arg::<WheelError>(0)?.clone());
            ctx.post("limited", "shutdown", ())?;
            Ok(())
        })
        .build(&mut k)
        .unwrap();
    // A client that sends more than the limit without a newline, then reads to the end.
    // What it sent is counted by what the socket took: the server may close the
    // connection as soon as it has read past the limit, in the middle of a chunk.
    let mut client = std::os::unix::net::UnixStream::connect(&path).unwrap();
    let writer = std::thread::spawn(move || {
        let chunk = vec![b'x'; 64 * 1024];
        let mut sent = 0;
        while sent <= DEFAULT_LINE_LIMIT {
            match client.write(&chunk) {
                Ok(n) if n > 0 => sent += n,
                _ => break,
            }
        }
        let mut rest = Vec::new();
        let _ = client.read_to_end(&mut rest);
        sent
    });
    let _guard = timeout(10, "line limit");
    k.run().unwrap();
    assert!(writer.join().unwrap() > DEFAULT_LINE_LIMIT);
    let errors = errors.borrow();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        matches!(
            errors[0].filter.as_deref(),
            Some(FilterError::BufferTooLarge { max, .. }) if *max == DEFAULT_LINE_LIMIT
        ),
        "{:?}",
        errors[0]
    );
}

#[test]
fn a_path_in_use_reaches_error_and_a_missing_one_reaches_connect_error() {
    let _serial = serial();
    let dir = TempDir::new("comp-unix-fail");
    let taken = dir.0.join("taken");
    std::fs::write(&taken, b"").unwrap();
    let missing = dir.0.join("missing");
    let seen: Rc<RefCell<Vec<(&'static str, i32)>>> = Rc::default();
    let (s1, s2) = (Rc::clone(&seen), Rc::clone(&seen));
    let mut k = Kernel::new().unwrap();
    ServerTcp::builder()
        .unix_path(&taken)
        .client_input(|_| {})
        .error(move |ctx| -> Result<(), HandlerError> {
            let e = ctx.arg::<WheelError>(0)?;
            s1.borrow_mut().push((e.operation, e.errno));
            ctx.heap().listener = None;
            Ok(())
        })
        .build(&mut k)
        .unwrap();
    ClientTcp::unix(&missing)
        .server_input(|_| {})
        .connect_error(move |ctx| -> Result<(), HandlerError> {
            let e = ctx.arg::<WheelError>(0)?;
            s2.borrow_mut().push((e.operation, e.errno));
            Ok(())
        })
        .build(&mut k)
        .unwrap();
    let _guard = timeout(10, "failures");
    k.run().unwrap();
    let mut seen = seen.borrow().clone();
    seen.sort();
    assert_eq!(seen, [("bind", EADDRINUSE), ("connect", ENOENT)]);
    // The file that was there is still there: the server removes nothing.
    assert!(taken.exists());
}

#[test]
fn options_for_tcp_only_are_refused_for_unix_sockets() {
    let _serial = serial();
    let mut k = Kernel::new().unwrap();
    let e = ServerTcp::builder()
        .unix_path("/nonexistent/never-bound")
        .client_input(|_| {})
        .client_pre_connect(|_, s| Some(s))
        .build(&mut k)
        .unwrap_err();
    assert!(
        matches!(e, ComponentError::TcpOnly("ClientPreConnect")),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "ClientPreConnect works on TCP connections, not on a UNIX socket"
    );
    let e = ClientTcp::unix("/nonexistent/never-bound")
        .server_input(|_| {})
        .pre_connect(|_, s| Some(s))
        .build(&mut k)
        .unwrap_err();
    assert!(matches!(e, ComponentError::TcpOnly("PreConnect")), "{e}");
    let e = ServerTcp::builder()
        .domain(Domain::Unix)
        .client_input(|_| {})
        .build(&mut k)
        .unwrap_err();
    assert!(matches!(e, ComponentError::MissingUnixPath), "{e}");
    assert_eq!(k.session_count(), 0);
}
