//! A non-blocking TLS client stream: rustls over a `mio` TCP socket.
//!
//! [`TlsStream`] wraps a connected, non-blocking [`mio::net::TcpStream`] and a
//! [`rustls::ClientConnection`]. It never blocks: every method does what the
//! socket allows right now and reports [`io::ErrorKind::WouldBlock`] (or
//! [`Handshake::WantRead`] / [`Handshake::WantWrite`]) when it has to wait.
//!
//! The stream is meant for an edge-triggered event loop:
//!
//! * drive [`TlsStream::handshake`] on every readiness event until it returns
//!   [`Handshake::Done`]; it returns `WantRead` only after the socket reported
//!   `WouldBlock` on a read, and `WantWrite` only after it did so on a write;
//! * then use [`Read`] and [`Write`] on the plaintext. `read` returns
//!   `WouldBlock` only when no plaintext is buffered *and* the socket is
//!   drained; `write` refuses plaintext (with `WouldBlock`) while earlier TLS
//!   output is still queued, and `flush` pushes that output out;
//! * a pooled, idle connection can be vetted with [`TlsStream::idle_check`].
//!
//! Plaintext may already be buffered inside rustls when the handshake finishes
//! (a server may send data in the same flight as its last handshake message),
//! so a caller that wants to read should try [`Read::read`] right after
//! [`Handshake::Done`] instead of waiting for the next readable edge.

use std::fmt;
use std::io::{self, Read, Write};
use std::sync::{Arc, OnceLock};

use mio::event::Source;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

/// The most plaintext one [`Write::write`] call hands to rustls.
const MAX_PLAINTEXT_PER_WRITE: usize = 64 * 1024;

/// Builds the default client config: webpki-roots trust anchors, ring provider, TLS 1.2+1.3, no client auth, ALPN none.
///
/// The config is built once per process and shared; each call returns another
/// handle to it, so TLS session resumption works across connections.
pub fn default_client_config() -> Arc<ClientConfig> {
    static DEFAULT: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    DEFAULT
        .get_or_init(|| {
            let roots = RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            build_config(roots).expect("the ring provider supports TLS 1.2 and TLS 1.3")
        })
        .clone()
}

/// A config trusting exactly these DER root certificates (for private CAs / tests).
///
/// Fails if a certificate cannot be parsed as a trust anchor. Other settings
/// are those of [`default_client_config`].
pub fn client_config_with_roots(
    roots: impl IntoIterator<Item = CertificateDer<'static>>,
) -> Result<Arc<ClientConfig>, rustls::Error> {
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add(root)?;
    }
    build_config(store)
}

/// The common part of both config constructors.
fn build_config(roots: RootCertStore) -> Result<Arc<ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Where a handshake stands after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    /// The handshake is complete and all of its output has been sent.
    Done,
    /// The socket has nothing more to read yet: wait until it is readable.
    WantRead,
    /// The socket cannot take more output yet: wait until it is writable.
    WantWrite,
}

/// A TLS client session over a non-blocking `mio` TCP socket.
///
/// See the [module documentation](self) for the readiness contract.
pub struct TlsStream {
    tcp: TcpStream,
    conn: ClientConnection,
    server_name: String,
    /// The socket has reported end of file.
    eof: bool,
    /// Why the handshake failed, once it has.
    failed: Option<(io::ErrorKind, String)>,
}

impl fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream")
            .field("tcp", &self.tcp)
            .field("server_name", &self.server_name)
            .field("handshaking", &self.conn.is_handshaking())
            .field("eof", &self.eof)
            .finish_non_exhaustive()
    }
}

impl TlsStream {
    /// Starts a client session for `server_name` (a DNS name or an IP literal; SNI is sent for DNS names, certificates verified against it) over a connected non-blocking socket.
    ///
    /// An IPv6 literal may be written with or without brackets (`[::1]` or
    /// `::1`). Nothing is sent yet: the first [`TlsStream::handshake`] call
    /// sends the ClientHello.
    pub fn new(
        tcp: TcpStream,
        config: Arc<ClientConfig>,
        server_name: &str,
    ) -> Result<TlsStream, String> {
        let bare = server_name
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or(server_name);
        let name = ServerName::try_from(bare.to_owned())
            .map_err(|e| format!("invalid TLS server name {server_name:?}: {e}"))?;
        let conn = ClientConnection::new(config, name)
            .map_err(|e| format!("cannot start a TLS session with {server_name}: {e}"))?;
        Ok(TlsStream {
            tcp,
            conn,
            server_name: server_name.to_owned(),
            eof: false,
            failed: None,
        })
    }

    /// Advances the handshake without blocking: reads and writes what the socket allows. Err = handshake failed (certificate error, alert, EOF during handshake) with a readable message inside the io::Error.
    ///
    /// Returns [`Handshake::Done`] only once the handshake is complete *and*
    /// its last flight (the client Finished) has been handed to the socket.
    /// Calling it again after `Done` returns `Done` at once. On a TLS error
    /// the alert rustls queued for the peer is sent on a best-effort basis,
    /// and every later call fails with the same error.
    pub fn handshake(&mut self) -> io::Result<Handshake> {
        if let Some((kind, msg)) = &self.failed {
            return Err(io::Error::new(*kind, msg.clone()));
        }
        let result = self.handshake_step();
        if let Err(e) = &result {
            self.failed = Some((e.kind(), e.to_string()));
        }
        result
    }

    /// One [`TlsStream::handshake`] call, without the memory of failure.
    fn handshake_step(&mut self) -> io::Result<Handshake> {
        loop {
            match self.send_pending() {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Handshake::WantWrite),
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("TLS handshake with {} failed: {e}", self.server_name),
                    ))
                }
            }
            if !self.conn.is_handshaking() {
                return Ok(Handshake::Done);
            }
            match self.conn.read_tls(&mut self.tcp) {
                Ok(0) => {
                    self.eof = true;
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "TLS handshake with {} failed: connection closed by peer",
                            self.server_name
                        ),
                    ));
                }
                Ok(_) => {
                    if let Err(e) = self.conn.process_new_packets() {
                        self.send_pending_best_effort();
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("TLS handshake with {} failed: {e}", self.server_name),
                        ));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Handshake::WantRead),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("TLS handshake with {} failed: {e}", self.server_name),
                    ))
                }
            }
        }
    }

    /// The TCP socket.
    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// The rustls session (negotiated protocol version, cipher suite, ALPN, peer certificates).
    pub fn connection(&self) -> &ClientConnection {
        &self.conn
    }

    /// The server name this session was started for, as given to [`TlsStream::new`].
    pub fn server_name(&self) -> &str {
        &self.server_name
    }

    /// Whether the handshake is still in progress.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Whether TLS output is queued that the socket has not taken yet.
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// For a pooled idle connection: consumes whatever the socket has (e.g. TLS 1.3 NewSessionTicket messages that servers send after the handshake) without blocking. Returns true if the connection is still clean and reusable: no application data arrived, no close_notify/EOF, no error. Returns false otherwise.
    ///
    /// A session still in its handshake is not idle and yields false. Once it
    /// has returned false the connection should be dropped: application data
    /// that made it return false may have been left unread.
    pub fn idle_check(&mut self) -> bool {
        if self.eof || self.conn.is_handshaking() {
            return false;
        }
        // Something left over from earlier reads, or an earlier error?
        match self.conn.process_new_packets() {
            Ok(state) if state.plaintext_bytes_to_read() == 0 && !state.peer_has_closed() => {}
            _ => return false,
        }
        loop {
            match self.conn.read_tls(&mut self.tcp) {
                Ok(0) => {
                    self.eof = true;
                    return false;
                }
                Ok(_) => match self.conn.process_new_packets() {
                    Ok(state) => {
                        if state.plaintext_bytes_to_read() > 0 || state.peer_has_closed() {
                            return false;
                        }
                    }
                    Err(_) => {
                        self.send_pending_best_effort();
                        return false;
                    }
                },
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        // Answer anything the peer's messages asked for (a KeyUpdate, say).
        match self.send_pending() {
            Ok(()) => true,
            Err(e) => e.kind() == io::ErrorKind::WouldBlock,
        }
    }

    /// Sends close_notify (best effort, non-blocking) — used before dropping.
    ///
    /// Queues the alert and pushes as much pending TLS output as the socket
    /// takes; errors and `WouldBlock` are ignored.
    pub fn send_close_notify(&mut self) {
        self.conn.send_close_notify();
        self.send_pending_best_effort();
    }

    /// Writes queued TLS output until none is left (`Ok`) or the socket
    /// refuses more (`Err(WouldBlock)`, or a real error).
    fn send_pending(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.tcp) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// [`TlsStream::send_pending`] ignoring every outcome.
    fn send_pending_best_effort(&mut self) {
        let _ = self.send_pending();
    }
}

impl Read for TlsStream {
    /// Reads plaintext.
    ///
    /// `Err(WouldBlock)` only when no plaintext is buffered and the socket
    /// would block; `Ok(0)` after the peer's close_notify or at TCP end of file
    /// (an unclean close is reported as a clean one); TLS errors are
    /// [`io::ErrorKind::InvalidData`]. Pending TLS output (a KeyUpdate answer,
    /// handshake messages) is sent on the way, ignoring `WouldBlock`.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.conn.wants_write() {
                self.send_pending_best_effort();
            }
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            match self.conn.read_tls(&mut self.tcp) {
                Ok(0) => self.eof = true,
                Ok(_) => {
                    if let Err(e) = self.conn.process_new_packets() {
                        self.send_pending_best_effort();
                        return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Write for TlsStream {
    /// Encrypts and sends plaintext.
    ///
    /// Queued TLS output is sent first; if the socket does not take all of it
    /// the call fails with `WouldBlock` without accepting plaintext. Otherwise
    /// up to 64 KiB of `buf` is accepted, its records are sent as far as the
    /// socket allows, and the accepted length is returned even if some of them
    /// are still queued (a later `write` or [`Write::flush`] sends them).
    ///
    /// While the handshake is in progress this drives it first and fails with
    /// `WouldBlock` until it is done.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.conn.is_handshaking() && self.handshake()? != Handshake::Done {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.send_pending()?;
        let chunk = &buf[..buf.len().min(MAX_PLAINTEXT_PER_WRITE)];
        let n = self.conn.writer().write(chunk)?;
        if n == 0 {
            // rustls's outgoing buffer is full; cannot happen with nothing queued.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        // A failure here (WouldBlock or a dead socket) shows again on the next write or flush.
        self.send_pending_best_effort();
        Ok(n)
    }

    /// Sends queued TLS output: `Ok(())` once none remains, `Err(WouldBlock)`
    /// if the socket would block with bytes still queued.
    fn flush(&mut self) -> io::Result<()> {
        self.conn.writer().flush()?;
        self.send_pending()
    }
}

impl Source for TlsStream {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.tcp.register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.tcp.reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.tcp.deregister(registry)
    }
}

#[cfg(unix)]
impl std::os::fd::AsFd for TlsStream {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.tcp.as_fd()
    }
}

#[cfg(unix)]
impl std::os::fd::AsRawFd for TlsStream {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.tcp.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll};
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use rustls::{ServerConfig, ServerConnection};
    use std::net::{SocketAddr, TcpListener};
    use std::sync::mpsc::{self, Receiver, Sender};
    use std::thread::JoinHandle;
    use std::time::Duration;

    /// Upper bound on poll rounds in every client loop.
    const ROUNDS: usize = 200;
    /// Timeout of one poll round.
    const POLL: Duration = Duration::from_millis(100);
    /// Timeout for replies and server-side socket operations.
    const WAIT: Duration = Duration::from_secs(10);

    /// What the test tells the server thread to do.
    enum Cmd {
        /// Write these bytes and flush.
        Write(Vec<u8>),
        /// Read exactly this many plaintext bytes, 1000 at a time.
        ReadExact(usize),
        /// Read until end of stream; reply whether it was a clean close_notify.
        ReadToEnd,
        /// Send close_notify, then close the socket.
        CloseNotify,
        /// Close the socket without close_notify.
        DropTcp,
    }

    /// What the server thread answers.
    #[derive(Debug)]
    enum Reply {
        /// Handshake complete, session tickets (if any) flushed.
        Ready,
        /// Handshake failed with this error.
        Failed(String),
        /// The command was carried out.
        Done,
        /// Bytes read by `ReadExact`.
        Data(Vec<u8>),
        /// Result of `ReadToEnd`: the bytes and whether the close was clean.
        End(Vec<u8>, bool),
    }

    struct Server {
        addr: SocketAddr,
        root: CertificateDer<'static>,
        cmd: Sender<Cmd>,
        reply: Receiver<Reply>,
        thread: Option<JoinHandle<()>>,
    }

    impl Server {
        /// A one-connection scripted TLS server on 127.0.0.1 with a fresh
        /// self-signed certificate for `localhost` and `127.0.0.1`.
        fn start(recv_buf: Option<usize>) -> Server {
            let ck = rcgen::generate_simple_self_signed(vec![
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
            ])
            .unwrap();
            let root = ck.cert.der().clone();
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
            let config = ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![root.clone()], key)
            .unwrap();
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            if let Some(size) = recv_buf {
                socket2::SockRef::from(&listener)
                    .set_recv_buffer_size(size)
                    .unwrap();
            }
            let addr = listener.local_addr().unwrap();
            let (cmd_tx, cmd_rx) = mpsc::channel();
            let (reply_tx, reply_rx) = mpsc::channel();
            let thread = std::thread::spawn(move || {
                serve(listener, Arc::new(config), cmd_rx, reply_tx);
            });
            Server {
                addr,
                root,
                cmd: cmd_tx,
                reply: reply_rx,
                thread: Some(thread),
            }
        }

        fn roots(&self) -> Arc<ClientConfig> {
            client_config_with_roots([self.root.clone()]).unwrap()
        }

        fn send(&self, cmd: Cmd) {
            self.cmd.send(cmd).unwrap();
        }

        fn reply(&self) -> Reply {
            self.reply.recv_timeout(WAIT).expect("server reply")
        }

        fn expect_ready(&self) {
            match self.reply() {
                Reply::Ready => {}
                other => panic!("server not ready: {other:?}"),
            }
        }

        fn expect_done(&self) {
            match self.reply() {
                Reply::Done => {}
                other => panic!("server command failed: {other:?}"),
            }
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            // Unblock a server waiting for a command, then reap it.
            let (tx, _) = mpsc::channel();
            drop(std::mem::replace(&mut self.cmd, tx));
            if let Some(thread) = self.thread.take() {
                let joined = thread.join();
                if !std::thread::panicking() {
                    joined.expect("server thread panicked");
                }
            }
        }
    }

    /// The server thread: blocking rustls over a std socket.
    fn serve(
        listener: TcpListener,
        config: Arc<ServerConfig>,
        cmds: Receiver<Cmd>,
        replies: Sender<Reply>,
    ) {
        let (mut sock, _) = listener.accept().unwrap();
        sock.set_read_timeout(Some(WAIT)).unwrap();
        sock.set_write_timeout(Some(WAIT)).unwrap();
        let mut conn = ServerConnection::new(config).unwrap();
        while conn.is_handshaking() {
            if let Err(e) = conn.complete_io(&mut sock) {
                let _ = replies.send(Reply::Failed(e.to_string()));
                return;
            }
        }
        while conn.wants_write() {
            conn.write_tls(&mut sock).unwrap();
        }
        let _ = replies.send(Reply::Ready);
        let mut tls = rustls::StreamOwned::new(conn, sock);
        while let Ok(cmd) = cmds.recv() {
            let reply = match cmd {
                Cmd::Write(bytes) => {
                    tls.write_all(&bytes).unwrap();
                    tls.flush().unwrap();
                    Reply::Done
                }
                Cmd::ReadExact(len) => {
                    let mut data = vec![0; len];
                    for chunk in data.chunks_mut(1000) {
                        tls.read_exact(chunk).unwrap();
                    }
                    Reply::Data(data)
                }
                Cmd::ReadToEnd => {
                    let mut data = Vec::new();
                    let clean = tls.read_to_end(&mut data).is_ok();
                    Reply::End(data, clean)
                }
                Cmd::CloseNotify => {
                    tls.conn.send_close_notify();
                    tls.flush().unwrap();
                    drop(tls);
                    let _ = replies.send(Reply::Done);
                    return;
                }
                Cmd::DropTcp => {
                    drop(tls);
                    let _ = replies.send(Reply::Done);
                    return;
                }
            };
            if replies.send(reply).is_err() {
                return;
            }
        }
    }

    /// A client-side TLS stream registered with its own poll.
    struct Client {
        poll: Poll,
        events: Events,
        tls: TlsStream,
    }

    impl Client {
        fn connect(
            addr: SocketAddr,
            config: Arc<ClientConfig>,
            name: &str,
            send_buf: Option<usize>,
        ) -> Client {
            let std_tcp = std::net::TcpStream::connect(addr).unwrap();
            if let Some(size) = send_buf {
                socket2::SockRef::from(&std_tcp)
                    .set_send_buffer_size(size)
                    .unwrap();
            }
            std_tcp.set_nonblocking(true).unwrap();
            let mut tls = TlsStream::new(TcpStream::from_std(std_tcp), config, name).unwrap();
            let poll = Poll::new().unwrap();
            poll.registry()
                .register(&mut tls, Token(0), Interest::READABLE | Interest::WRITABLE)
                .unwrap();
            Client {
                poll,
                events: Events::with_capacity(8),
                tls,
            }
        }

        fn wait(&mut self) {
            self.poll.poll(&mut self.events, Some(POLL)).unwrap();
        }

        fn handshake(&mut self) -> io::Result<()> {
            for _ in 0..ROUNDS {
                match self.tls.handshake()? {
                    Handshake::Done => return Ok(()),
                    Handshake::WantRead | Handshake::WantWrite => self.wait(),
                }
            }
            panic!("handshake did not finish");
        }

        /// Writes everything, handling WouldBlock. Calls `on_block` the
        /// first time the stream would block.
        fn write_all(&mut self, data: &[u8], mut on_block: impl FnMut()) -> bool {
            let mut off = 0;
            let mut blocked = false;
            for _ in 0..ROUNDS * 10 {
                let mut would_block = false;
                while off < data.len() {
                    match self.tls.write(&data[off..]) {
                        Ok(n) => {
                            assert!(n > 0);
                            off += n;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            would_block = true;
                            break;
                        }
                        Err(e) => panic!("write failed: {e}"),
                    }
                }
                if off == data.len() {
                    match self.tls.flush() {
                        Ok(()) => return blocked,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => would_block = true,
                        Err(e) => panic!("flush failed: {e}"),
                    }
                }
                if would_block && !blocked {
                    blocked = true;
                    on_block();
                }
                self.wait();
            }
            panic!("write did not finish ({off} of {} bytes)", data.len());
        }

        /// Reads until Ok(0).
        fn read_to_eof(&mut self) -> Vec<u8> {
            let mut out = Vec::new();
            let mut buf = [0u8; 4096];
            for _ in 0..ROUNDS {
                loop {
                    match self.tls.read(&mut buf) {
                        Ok(0) => return out,
                        Ok(n) => out.extend_from_slice(&buf[..n]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => panic!("read failed: {e}"),
                    }
                }
                self.wait();
            }
            panic!("no EOF; read {out:?}");
        }

        /// Waits until the socket has bytes to read (or is at EOF).
        fn wait_readable(&mut self) {
            for _ in 0..ROUNDS {
                match self.tls.tcp().peek(&mut [0u8; 1]) {
                    Ok(_) => return,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.wait(),
                    Err(e) => panic!("peek failed: {e}"),
                }
            }
            panic!("socket never became readable");
        }

        fn socket_drained(&self) -> bool {
            matches!(
                self.tls.tcp().peek(&mut [0u8; 1]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock
            )
        }
    }

    /// A client that has completed its handshake with a ready server.
    fn established(server: &Server, name: &str) -> Client {
        let mut client = Client::connect(server.addr, server.roots(), name, None);
        client.handshake().unwrap();
        server.expect_ready();
        client
    }

    #[test]
    fn tls_request_answer_and_close_notify_eof() {
        let server = Server::start(None);
        let mut client = established(&server, "localhost");
        assert!(!client.tls.is_handshaking());
        assert!(!client.tls.wants_write());
        assert_eq!(client.tls.handshake().unwrap(), Handshake::Done);

        let request = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec();
        client.write_all(&request, || {});
        server.send(Cmd::ReadExact(request.len()));
        let received = match server.reply() {
            Reply::Data(d) => d,
            other => panic!("{other:?}"),
        };
        assert_eq!(received, request);
        // A long answer: many records, more than one read_tls per read.
        let mut answer = b"echo: ".to_vec();
        answer.extend_from_slice(&received);
        answer.extend((0..300_000u32).map(|i| (i % 251) as u8));
        server.send(Cmd::Write(answer.clone()));
        server.expect_done();
        server.send(Cmd::CloseNotify);
        server.expect_done();

        assert_eq!(client.read_to_eof(), answer);
        // Still Ok(0) afterwards.
        assert_eq!(client.tls.read(&mut [0u8; 16]).unwrap(), 0);
    }

    #[test]
    fn tls_ip_literal_server_name() {
        let server = Server::start(None);
        let mut client = established(&server, "127.0.0.1");
        server.send(Cmd::Write(b"hi".to_vec()));
        server.expect_done();
        server.send(Cmd::DropTcp);
        server.expect_done();
        // TCP EOF without close_notify reads as a plain EOF.
        assert_eq!(client.read_to_eof(), b"hi");
    }

    #[test]
    fn tls_default_config_rejects_self_signed() {
        let server = Server::start(None);
        let mut client = Client::connect(server.addr, default_client_config(), "localhost", None);
        let err = client.handshake().unwrap_err();
        let msg = err.to_string();
        assert!(msg.to_lowercase().contains("certificate"), "{msg}");
        assert!(msg.contains("localhost"), "{msg}");
        // The failure sticks.
        let again = client.tls.handshake().unwrap_err();
        assert_eq!(again.to_string(), msg);
        // The alert reached the server.
        match server.reply() {
            Reply::Failed(e) => {
                assert!(e.contains("alert"), "{e}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tls_wrong_server_name_fails() {
        let server = Server::start(None);
        let mut client = Client::connect(server.addr, server.roots(), "example.com", None);
        let err = client.handshake().unwrap_err();
        let msg = err.to_string();
        assert!(msg.to_lowercase().contains("certificate"), "{msg}");
        match server.reply() {
            Reply::Failed(e) => {
                assert!(e.contains("alert"), "{e}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tls_invalid_server_name_rejected() {
        let server = Server::start(None);
        let tcp = TcpStream::connect(server.addr).unwrap();
        let err = TlsStream::new(tcp, server.roots(), "not a host name!").unwrap_err();
        assert!(err.contains("not a host name!"), "{err}");
    }

    #[test]
    fn tls_idle_check_tickets_data_and_close() {
        // Tickets only, then application data.
        let server = Server::start(None);
        let mut client = established(&server, "localhost");
        assert_eq!(
            client.tls.connection().protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_3)
        );
        client.wait_readable(); // the NewSessionTickets
        assert!(client.tls.idle_check());
        assert!(client.socket_drained(), "tickets not consumed");
        assert!(client.tls.idle_check());
        server.send(Cmd::Write(b"unsolicited".to_vec()));
        server.expect_done();
        client.wait_readable();
        assert!(!client.tls.idle_check());
        drop(client);
        drop(server);

        // Clean close_notify, then a bare TCP close.
        for close in [Cmd::CloseNotify, Cmd::DropTcp] {
            let server = Server::start(None);
            let mut client = established(&server, "localhost");
            client.wait_readable();
            assert!(client.tls.idle_check());
            server.send(close);
            server.expect_done();
            client.wait_readable();
            assert!(!client.tls.idle_check());
            // And it stays closed.
            assert!(!client.tls.idle_check());
        }
    }

    #[test]
    fn tls_large_write_to_slow_reader() {
        const LEN: usize = 1 << 20;
        let data: Vec<u8> = (0..LEN)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let server = Server::start(Some(16 * 1024));
        let mut client = Client::connect(server.addr, server.roots(), "localhost", Some(16 * 1024));
        client.handshake().unwrap();
        server.expect_ready();

        // The server starts reading only once the client has been blocked.
        let cmd = server.cmd.clone();
        let blocked = client.write_all(&data, || cmd.send(Cmd::ReadExact(LEN)).unwrap());
        assert!(blocked, "1 MiB never filled the socket buffers");
        assert!(!client.tls.wants_write());
        let received = match server.reply() {
            Reply::Data(d) => d,
            other => panic!("{other:?}"),
        };
        assert_eq!(received.len(), LEN);
        assert!(received == data, "payload corrupted");
    }

    #[test]
    fn tls_send_close_notify_reaches_server() {
        let server = Server::start(None);
        let mut client = established(&server, "localhost");
        client.write_all(b"bye", || {});
        server.send(Cmd::ReadToEnd);
        client.tls.send_close_notify();
        assert!(!client.tls.wants_write());
        match server.reply() {
            Reply::End(data, clean) => {
                assert_eq!(data, b"bye");
                assert!(clean, "close was not clean");
            }
            other => panic!("{other:?}"),
        }
    }
}
