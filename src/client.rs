//! The HTTP client ([`HttpClient`]): the port of `POE::Component::Client::HTTP`.

use crate::answer_event::AnswerEvent;
use crate::http::{Advance, ContentDecoder, End, Head, HeadCache, HttpError, ResponseParser};
use crate::manager::{
    Connection, Error as KaError, Keepalive, Request as KaRequest, Response as KaResponse,
};
use crate::pool::{Failure, PoolKey, RequestId as KaRequestId, ETIMEDOUT};
use ::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use ::http::{Method, Request, Response, StatusCode, Uri, Version};
use reactor::filter::Stream as StreamFilter;
use reactor::wheel::{ReadWrite, RwEvent, WheelError};
use reactor::{AlarmId, Arg, Args, Ctx, EventId, Kernel, Session, SessionId, WheelId};
use rustc_hash::FxHashMap;
use std::cell::RefCell;
use std::fmt;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// POE's error message header.
const X_PCCH_ERRMSG: HeaderName = HeaderName::from_static("x-pcch-errmsg");
/// POE's peer address header.
const X_PCCH_PEER: HeaderName = HeaderName::from_static("x-pcch-peer");

/// The refcount tag a pending request holds on its requester (POE's postback holds one).
const REQUESTER_TAG: &str = "poco-client-http";

/// POE's default agent string, with our version.
fn default_agent() -> String {
    format!(
        "POE-Component-Client-HTTP/{} (rust; keepalive)",
        env!("CARGO_PKG_VERSION")
    )
}

// ---------------------------------------------------------------------------------------------
// Public types.

/// Identifies one request to an [`HttpClient`] (for [`HttpClient::cancel`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReqId {
    index: u32,
    generation: u32,
}

impl fmt::Display for ReqId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}",
            u64::from(self.generation) << 32 | u64::from(self.index)
        )
    }
}

/// `ARG0` of every response and progress event: the request as sent (with the headers
/// the client added) and the tag given with it (POE's `[$request, $tag]`).
#[derive(Clone)]
pub struct RequestPacket {
    id: ReqId,
    request: Rc<Request<Vec<u8>>>,
    tag: Option<Arg>,
}

impl RequestPacket {
    /// The request's id (what [`HttpClient::request`] returned).
    pub fn id(&self) -> ReqId {
        self.id
    }

    /// The request.
    pub fn request(&self) -> &Request<Vec<u8>> {
        &self.request
    }

    /// The tag as a `T`, if one of that type was given.
    pub fn tag<T: 'static>(&self) -> Option<&T> {
        self.tag.as_ref()?.downcast_ref()
    }

    /// The tag as given, of any type.
    pub fn tag_arg(&self) -> Option<&Arg> {
        self.tag.as_ref()
    }
}

impl fmt::Debug for RequestPacket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestPacket")
            .field("id", &self.id)
            .field("method", self.request.method())
            .field("uri", self.request.uri())
            .field("tagged", &self.tag.is_some())
            .finish()
    }
}

/// `ARG1` of a progress event: octets of the body received so far and, if the response
/// said, how many there are in all (POE's `[$got, $total]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Body octets received (as sent, before any content decoding).
    pub received: u64,
    /// The `Content-Length`, if the response has one.
    pub total: Option<u64>,
}

/// Why the client answered a request with an error response (in the response's
/// extensions: `response.extensions().get::<ClientError>()`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientError {
    /// The URI's scheme is not `http` or `https` (400).
    UnsupportedScheme(String),
    /// The URI has no host (400).
    NoHost,
    /// A request header could not be added (400).
    BadRequest(String),
    /// The client was shut down (408).
    ShutDown,
    /// The request was cancelled (408).
    Cancelled,
    /// The request took longer than the timeout (408).
    Timeout,
    /// No connection: POE's connect error triple (500, or 408 for a connect timeout).
    Connect {
        /// The operation that failed (`"connect"`, `"resolve"`, `"sslify"`, ...).
        function: String,
        /// The error number, if any.
        errnum: Option<i32>,
        /// The error text.
        errstr: String,
    },
    /// Reading or writing the socket failed (400).
    Io {
        /// `"read"` or `"write"`.
        operation: String,
        /// The error number.
        errnum: i32,
        /// The error text.
        errstr: String,
    },
    /// The server closed the connection before any response (400).
    NoResponse,
    /// The server closed the connection in the middle of the response (400).
    Incomplete {
        /// The body's length, if the response said.
        expected: Option<u64>,
        /// Body octets received.
        received: u64,
    },
    /// The response is not valid HTTP (406).
    Malformed(HttpError),
    /// The body is larger than `MaxSize` (406).
    TooLarge {
        /// The limit.
        max_size: usize,
    },
    /// The body's content coding could not be decoded (406).
    Decode(String),
    /// The redirect limit was reached: the response is the last redirect, as the server
    /// sent it (its status is kept).
    TooManyRedirects(u32),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::UnsupportedScheme(s) => write!(f, "Unsupported URI scheme: '{s}'"),
            ClientError::NoHost => f.write_str("URI contains no discernable host."),
            ClientError::BadRequest(m) => write!(f, "bad request: {m}"),
            ClientError::ShutDown => f.write_str("Request timed out (component shut down)"),
            ClientError::Cancelled => f.write_str("Request timed out (request canceled)"),
            ClientError::Timeout => f.write_str("Request timed out"),
            ClientError::Connect {
                function,
                errnum,
                errstr,
            } => write!(
                f,
                "{function} error {}: {errstr}",
                errnum.map_or_else(|| "??".to_owned(), |n| n.to_string())
            ),
            ClientError::Io {
                operation,
                errnum,
                errstr,
            } => write!(f, "{operation} error {errnum}: {errstr}"),
            ClientError::NoResponse => f.write_str("Incomplete response: no response"),
            ClientError::Incomplete { expected, received } => match expected {
                Some(n) => write!(f, "incomplete response.  Wanted {n} octets.  Got {received}."),
                None => write!(f, "incomplete response after {received} octets"),
            },
            ClientError::Malformed(e) => write!(f, "Server response is Not Acceptable: {e}"),
            ClientError::TooLarge { max_size } => write!(
                f,
                "Response content is longer than specified MaxSize of {max_size}.  Use range requests to retrieve specific amounts of content."
            ),
            ClientError::Decode(e) => write!(f, "cannot decode the content: {e}"),
            ClientError::TooManyRedirects(n) => write!(f, "Too many redirects ({n})"),
        }
    }
}

impl std::error::Error for ClientError {}

/// The responses of the redirects followed, oldest first, in the final response's
/// extensions (POE's `$response->previous` chain), bodies included.
#[derive(Clone, Debug, Default)]
pub struct Redirects(pub Vec<Response<Vec<u8>>>);

/// The trailers of a chunked response, in its extensions.
#[derive(Clone, Debug, Default)]
pub struct Trailers(pub HeaderMap);

/// Counts over a client's life ([`HttpClient::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientStats {
    /// Requests accepted.
    pub requests: u64,
    /// Responses delivered (errors included).
    pub responses: u64,
    /// Error responses among them.
    pub errors: u64,
    /// Requests sent again on a new connection after a reused one failed.
    pub retries: u64,
    /// Redirects followed.
    pub redirects: u64,
}

/// Why the client refused a call (it never answers these with a response event).
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// `request` was called outside any session: there is nobody to answer.
    NoRequester,
    /// An empty response event name.
    NoEvent,
    /// The connection manager refused its settings.
    Manager(KaError),
    /// The kernel refused (the client's session could not be created).
    Kernel(reactor::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoRequester => f.write_str("request() needs an active session to answer"),
            Error::NoEvent => f.write_str("request() needs a response event"),
            Error::Manager(e) => e.fmt(f),
            Error::Kernel(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Manager(e) => Some(e),
            Error::Kernel(e) => Some(e),
            _ => None,
        }
    }
}

impl From<reactor::Error> for Error {
    fn from(e: reactor::Error) -> Self {
        Error::Kernel(e)
    }
}

/// A request with everything POE's `request` event carries: the response event, the
/// request, a tag, a progress event and a proxy for this request only.
pub struct Submit {
    event: Rc<str>,
    request: Request<Vec<u8>>,
    tag: Option<Arg>,
    progress: Option<Rc<str>>,
    proxy: Option<String>,
}

impl Submit {
    /// `request`, answered with `event` in the calling session.
    pub fn new<B: Into<Vec<u8>>>(event: &str, request: Request<B>) -> Submit {
        Submit {
            event: Rc::from(event),
            request: request.map(Into::into),
            tag: None,
            progress: None,
            proxy: None,
        }
    }

    /// Any value, handed back in the [`RequestPacket`] (POE's tag).
    pub fn tag<T: 'static>(mut self, tag: T) -> Self {
        self.tag = Some(Rc::new(tag));
        self
    }

    /// A tag already shared as an argument.
    pub fn tag_arg(mut self, tag: Arg) -> Self {
        self.tag = Some(tag);
        self
    }

    /// Progress events (`ARG0` the [`RequestPacket`], `ARG1` a [`Progress`]) as the body
    /// arrives.
    pub fn progress(mut self, event: &str) -> Self {
        self.progress = Some(Rc::from(event));
        self
    }

    /// A proxy for this request (`http://host:port`), instead of the client's.
    pub fn proxy(mut self, proxy: &str) -> Self {
        self.proxy = Some(proxy.to_owned());
        self
    }

    /// The same request with the event name already shared (saves an allocation per
    /// request for a program that sends many).
    pub fn with_event(event: Rc<str>, request: Request<Vec<u8>>) -> Submit {
        Submit {
            event,
            request,
            tag: None,
            progress: None,
            proxy: None,
        }
    }
}

impl fmt::Debug for Submit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Submit")
            .field("event", &self.event)
            .field("uri", self.request.uri())
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------------
// The builder.

/// Configures an [`HttpClient`] (POE's `spawn(%args)`).
#[derive(Clone)]
pub struct HttpClientBuilder {
    alias: String,
    agents: Vec<String>,
    from: Option<String>,
    protocol: Version,
    timeout: Duration,
    max_size: Option<usize>,
    streaming: bool,
    follow_redirects: u32,
    proxy: Option<Proxy>,
    no_proxy: Vec<String>,
    bind_addr: Option<IpAddr>,
    manager: Option<Keepalive>,
    cookie_jar: Option<CookieJar>,
    accept_encoding: bool,
    decode_content: bool,
    retry: bool,
    http09: bool,
    keep_alive_hint: bool,
    #[cfg(feature = "tls")]
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl fmt::Debug for HttpClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClientBuilder")
            .field("alias", &self.alias)
            .field("timeout", &self.timeout)
            .field("follow_redirects", &self.follow_redirects)
            .finish_non_exhaustive()
    }
}

impl Default for HttpClientBuilder {
    fn default() -> Self {
        HttpClientBuilder {
            alias: "weeble".to_owned(),
            agents: Vec::new(),
            from: None,
            protocol: Version::HTTP_11,
            timeout: Duration::from_secs(180),
            max_size: None,
            streaming: false,
            follow_redirects: 0,
            proxy: None,
            no_proxy: Vec::new(),
            bind_addr: None,
            manager: None,
            cookie_jar: None,
            accept_encoding: false,
            decode_content: true,
            retry: true,
            http09: false,
            keep_alive_hint: true,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

/// A shared cookie jar (POE's `CookieJar`): `cookie_store`'s store, which keeps the
/// cookies of every response and adds the matching ones to every request.
pub type CookieJar = Rc<RefCell<cookie_store::CookieStore>>;

/// An HTTP proxy: plain requests are sent to it with absolute URIs, https goes through a
/// `CONNECT` tunnel.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Proxy {
    host: String,
    port: u16,
}

fn parse_proxy(s: &str) -> Option<Proxy> {
    let with_scheme = if s.contains("://") {
        s.to_owned()
    } else {
        format!("http://{s}")
    };
    let u = url::Url::parse(&with_scheme).ok()?;
    if u.scheme() != "http" {
        return None;
    }
    let host = u.host_str()?.trim_start_matches('[').trim_end_matches(']');
    Some(Proxy {
        host: host.to_owned(),
        port: u.port_or_known_default()?,
    })
}

impl HttpClientBuilder {
    /// The session's alias (default `"weeble"`, as in POE).
    pub fn alias(mut self, alias: &str) -> Self {
        self.alias = alias.to_owned();
        self
    }

    /// The `User-Agent` of requests that have none (POE's `Agent`).
    pub fn agent(mut self, agent: &str) -> Self {
        self.agents = vec![agent.to_owned()];
        self
    }

    /// Several agents: each request without a `User-Agent` gets one of them, in turn
    /// (POE picks at random).
    pub fn agents<S: Into<String>>(mut self, agents: impl IntoIterator<Item = S>) -> Self {
        self.agents = agents.into_iter().map(Into::into).collect();
        self
    }

    /// The `From` header of requests that have none.
    pub fn from(mut self, from: &str) -> Self {
        self.from = Some(from.to_owned()).filter(|s| !s.is_empty());
        self
    }

    /// The protocol of requests (default HTTP/1.1; HTTP/1.0 closes after each response).
    pub fn protocol(mut self, version: Version) -> Self {
        self.protocol = version;
        self
    }

    /// How long a whole request may take, redirects and retries included (default 180 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest body accepted (default: any); a larger one ends the request with a 406.
    pub fn max_size(mut self, max: usize) -> Self {
        self.max_size = Some(max);
        self
    }

    /// Streaming (POE's `Streaming`): the response event comes once per chunk of body as
    /// it arrives, `ARG2` holding `Some(chunk)`, and once more at the end with `None`.
    pub fn streaming(mut self, on: bool) -> Self {
        self.streaming = on;
        self
    }

    /// Follows up to `hops` redirects (default 0: redirects are responses like others).
    pub fn follow_redirects(mut self, hops: u32) -> Self {
        self.follow_redirects = hops;
        self
    }

    /// An HTTP proxy for every request (`http://host:port`). Without one, the
    /// `HTTP_PROXY`/`http_proxy` environment variable is used, as in POE.
    pub fn proxy(mut self, proxy: &str) -> Self {
        self.proxy = parse_proxy(proxy);
        self
    }

    /// Hosts reached without the proxy (POE's `NoProxy`); `"*"` means all. Without it,
    /// `NO_PROXY`/`no_proxy` is used.
    pub fn no_proxy<S: Into<String>>(mut self, hosts: impl IntoIterator<Item = S>) -> Self {
        self.no_proxy = hosts.into_iter().map(Into::into).collect();
        self
    }

    /// The local address of new connections (POE's `BindAddr`; for the client's own
    /// manager only).
    pub fn bind_addr(mut self, ip: IpAddr) -> Self {
        self.bind_addr = Some(ip);
        self
    }

    /// Shares a connection manager (POE's `ConnectionManager`) instead of building one.
    pub fn connection_manager(mut self, manager: Keepalive) -> Self {
        self.manager = Some(manager);
        self
    }

    /// A cookie jar (POE's `CookieJar`).
    pub fn cookie_jar(mut self, jar: CookieJar) -> Self {
        self.cookie_jar = Some(jar);
        self
    }

    /// Asks for compressed bodies (`Accept-Encoding: gzip, deflate` on requests that do
    /// not say) and decodes them (default off).
    pub fn accept_encoding(mut self, on: bool) -> Self {
        self.accept_encoding = on;
        self
    }

    /// Whether `gzip`/`deflate` bodies are decoded (default on): the body is the decoded
    /// one, and `Content-Encoding` and `Content-Length` are removed.
    pub fn decode_content(mut self, on: bool) -> Self {
        self.decode_content = on;
        self
    }

    /// Whether an idempotent request that failed on a reused connection before any byte
    /// of response is sent once more, on a new connection (default on).
    pub fn retry_idempotent(mut self, on: bool) -> Self {
        self.retry = on;
        self
    }

    /// Whether a response without a status line is taken as HTTP/0.9, as POE does
    /// (default off: it is a malformed response).
    pub fn http09(mut self, on: bool) -> Self {
        self.http09 = on;
        self
    }

    /// Whether a server's `Keep-Alive: timeout=N` shortens that connection's idle life in
    /// the pool to N minus one second (default on).
    pub fn keep_alive_hint(mut self, on: bool) -> Self {
        self.keep_alive_hint = on;
        self
    }

    /// The TLS configuration of the client's own manager (and of tunnels through a
    /// proxy). Needs the `tls` feature (on by default).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Spawns the client's session in `kernel` (POE's `spawn`).
    pub fn build(mut self, kernel: &mut Kernel) -> Result<HttpClient, Error> {
        if self.agents.is_empty() {
            self.agents.push(default_agent());
        }
        if self.proxy.is_none() {
            self.proxy = std::env::var("HTTP_PROXY")
                .or_else(|_| std::env::var("http_proxy"))
                .ok()
                .and_then(|p| parse_proxy(&p));
        }
        if self.no_proxy.is_empty() {
            if let Ok(v) = std::env::var("NO_PROXY").or_else(|_| std::env::var("no_proxy")) {
                self.no_proxy = v
                    .split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect();
            }
        }
        let (manager, own) = match self.manager.clone() {
            Some(m) => (m, false),
            None => {
                let mut b = Keepalive::builder().timeout(self.timeout);
                if let Some(ip) = self.bind_addr {
                    b = b.bind_address(ip);
                }
                #[cfg(feature = "tls")]
                if let Some(t) = &self.tls {
                    b = b.tls_config(t.clone());
                }
                (b.build(kernel).map_err(Error::Manager)?, true)
            }
        };
        let agent_values = self
            .agents
            .iter()
            .filter_map(|a| HeaderValue::from_str(a).ok())
            .collect::<Vec<_>>();
        let shared = Rc::new(Shared {
            inner: RefCell::new(Inner {
                config: self,
                manager,
                own_manager: own,
                session: None,
                shut_down: false,
                reqs: Vec::new(),
                free: Vec::new(),
                pending: 0,
                by_wheel: FxHashMap::default(),
                next_agent: 0,
                stats: ClientStats::default(),
                last_key: None,
                last_host: None,
                last_peer: None,
                timer: None,
                held: Default::default(),
                last_target: None,
                conn_event: Rc::from("htc_conn"),
                input_event: EventId::of("htc_input"),
                error_event: EventId::of("htc_error"),
                answer_event: AnswerEvent::default(),
                head_cache: HeadCache::default(),
                bare_headers: None,
                agent_values,
            }),
        });
        let sid = kernel.create(client_session(shared.clone()))?;
        let _ = sid;
        Ok(HttpClient { shared })
    }
}

// ---------------------------------------------------------------------------------------------
// The component.

/// The HTTP client component (POE::Component::Client::HTTP): a cheap handle (clone it
/// freely) on a session of the kernel it was spawned in.
///
/// The client runs as a session with an alias (`"weeble"` unless told otherwise, as in
/// POE). Requests are [`http::Request`]s; each one gets exactly one response event, an
/// [`http::Response`] with its body, posted to the session that asked, with the request
/// and its tag beside it ([`RequestPacket`]). Errors are responses too, as in POE: a
/// status (400, 406, 408 or 500), the message in an `X-PCCH-Errmsg` header and an HTML
/// body, and the typed [`ClientError`] in the response's extensions.
///
/// ```no_run
/// use keepalive::reactor::{Kernel, Session};
/// use keepalive::{HttpClient, RequestPacket};
///
/// let mut kernel = Kernel::new()?;
/// let ua = HttpClient::builder().alias("ua").timeout(std::time::Duration::from_secs(10))
///     .build(&mut kernel)?;
/// kernel.create(
///     Session::new(())
///         .on("_start", move |ctx| {
///             let req = http::Request::get("http://127.0.0.1:8080/").body(Vec::new()).unwrap();
///             ua.request(ctx, "response", req).expect("an active session");
///         })
///         .on("response", |ctx| {
///             let _req: RequestPacket = ctx.take_arg(0).unwrap();
///             let res: http::Response<Vec<u8>> = ctx.take_arg(1).unwrap();
///             println!("{} ({} bytes)", res.status(), res.body().len());
///             ctx.post("ua", "shutdown", ()).unwrap();
///         }),
/// )?;
/// kernel.run()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Perl's interface works as it is: `post("ua", "request", (event, request, tag,
/// progress_event, proxy))`, `post("ua", "cancel", (id,))`, `call("ua",
/// "pending_requests_count", ())` and `post("ua", "shutdown", ())`; the methods on
/// [`HttpClient`] do the same without an event in between.
#[derive(Clone)]
pub struct HttpClient {
    shared: Rc<Shared>,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.shared.inner.borrow();
        f.debug_struct("HttpClient")
            .field("alias", &inner.config.alias)
            .field("session", &inner.session)
            .field("pending", &inner.pending)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// Configures a client.
    pub fn builder() -> HttpClientBuilder {
        HttpClientBuilder::default()
    }

    /// A client with POE's defaults (alias `"weeble"`).
    pub fn spawn(kernel: &mut Kernel) -> Result<HttpClient, Error> {
        Self::builder().build(kernel)
    }

    /// The session's alias.
    pub fn alias(&self) -> String {
        self.shared.inner.borrow().config.alias.clone()
    }

    /// The client's session, while it runs.
    pub fn session(&self) -> Option<SessionId> {
        self.shared.inner.borrow().session
    }

    /// The connection manager the client uses.
    pub fn manager(&self) -> Keepalive {
        self.shared.inner.borrow().manager.clone()
    }

    /// Sends `request`; the active session gets exactly one `event` (or, streaming, one
    /// per chunk and a last one) with `ARG0` a [`RequestPacket`] and `ARG1` the
    /// `http::Response<Vec<u8>>`.
    pub fn request<B: Into<Vec<u8>>>(
        &self,
        kernel: &mut Kernel,
        event: &str,
        request: Request<B>,
    ) -> Result<ReqId, Error> {
        self.submit(kernel, Submit::new(event, request))
    }

    /// Sends a request with a tag, a progress event or a proxy of its own ([`Submit`]).
    pub fn submit(&self, kernel: &mut Kernel, submit: Submit) -> Result<ReqId, Error> {
        let requester = kernel.active_session();
        if requester.is_kernel() {
            return Err(Error::NoRequester);
        }
        if submit.event.is_empty() {
            return Err(Error::NoEvent);
        }
        let sid = self.shared.inner.borrow().session;
        match sid {
            Some(sid) if kernel.active_session() == sid => {
                Ok(self.shared.submit(kernel, requester, submit))
            }
            Some(sid) => match kernel.run_as(sid, |k| self.shared.submit(k, requester, submit)) {
                Ok(id) => Ok(id),
                Err(e) => Err(e.into()),
            },
            None => {
                // The session is gone (shut down): answer from the requester itself.
                Ok(self.shared.refuse_when_gone(kernel, requester, submit))
            }
        }
    }

    /// Cancels a pending request: it is answered at once with a 408 ("Request timed out
    /// (request canceled)"), as in POE. False if it is not pending.
    pub fn cancel(&self, kernel: &mut Kernel, id: ReqId) -> bool {
        let sid = self.shared.inner.borrow().session;
        let Some(sid) = sid else { return false };
        kernel
            .run_as(sid, |k| self.shared.cancel(k, id, ClientError::Cancelled))
            .unwrap_or(false)
    }

    /// Counts over the client's life.
    pub fn stats(&self) -> ClientStats {
        self.shared.inner.borrow().stats
    }

    /// How many requests are pending (POE's `pending_requests_count`).
    pub fn pending_requests_count(&self) -> usize {
        self.shared.inner.borrow().pending
    }

    /// Shuts the client down: every pending request is answered with a 408 ("Request
    /// timed out (component shut down)"), the alias is removed, its own manager is shut
    /// down (a shared one is left alone), and later requests are answered with the same
    /// 408.
    pub fn shutdown(&self, kernel: &mut Kernel) {
        let sid = self.shared.inner.borrow().session;
        if let Some(sid) = sid {
            let _ = kernel.run_as(sid, |k| self.shared.shutdown(k));
        }
    }
}

struct Shared {
    inner: RefCell<Inner>,
}

struct Inner {
    config: HttpClientBuilder,
    manager: Keepalive,
    own_manager: bool,
    session: Option<SessionId>,
    shut_down: bool,
    reqs: Vec<Slot>,
    free: Vec<u32>,
    pending: usize,
    /// The request each connection's wheel serves (a map keyed by a small integer: the
    /// fast hash).
    by_wheel: FxHashMap<WheelId, u32>,
    next_agent: usize,
    stats: ClientStats,
    /// The pool key of the last request: consecutive requests to one origin share it.
    last_key: Option<Arc<PoolKey>>,
    /// The last `Host` header made, and for what (https, host, port).
    last_host: Option<(bool, String, u16, HeaderValue)>,
    /// The last peer address formatted for `X-PCCH-Peer`.
    last_peer: Option<(std::net::SocketAddr, HeaderValue)>,
    /// The agents as header values.
    agent_values: Vec<HeaderValue>,
    /// The one alarm for every request's deadline, and when it is set to fire: at or
    /// before the earliest (see [`Shared::arm`]).
    timer: Option<(AlarmId, reactor::Time)>,
    /// The sessions with requests pending, and how many each: a session is kept alive by
    /// one reference while it has any (see [`Shared::hold`]).
    held: FxHashMap<SessionId, u32>,
    /// The last URI submitted without a proxy of its own, and where it goes.
    last_target: Option<(Uri, Target)>,
    /// The client's own event names, made once: the manager's answer (shared by every
    /// request for a connection) and the wheel's input and error (resolved).
    conn_event: Rc<str>,
    input_event: EventId,
    error_event: EventId,
    /// The response event of the last request answered, posted by id when the same
    /// shared name (as [`Submit::with_event`] passes) comes again.
    answer_event: AnswerEvent,
    /// The last response head's names and map, from which the next head with the same
    /// names gets its map.
    head_cache: HeadCache,
    /// The agent's place among `agent_values` and the map of the last request prepared
    /// without headers of its own (see [`Shared::prepare`]), made with the `Host` value
    /// in `last_host`.
    bare_headers: Option<(usize, HeaderMap)>,
}

struct Slot {
    generation: u32,
    req: Option<Pending>,
}

/// Where a request is to go this hop.
#[derive(Clone, Debug)]
struct Target {
    https: bool,
    host: Rc<str>,
    port: u16,
    /// The request-target of the request line.
    target: Rc<str>,
    /// Through this proxy (plain: absolute URI; https: a tunnel).
    proxy: Option<Proxy>,
}

struct Pending {
    id: ReqId,
    requester: SessionId,
    event: Rc<str>,
    progress: Option<Rc<str>>,
    packet: RequestPacket,
    /// The request of this hop (differs from the packet's after a redirect).
    current: Rc<Request<Vec<u8>>>,
    /// The current request says `Connection: close` (or is HTTP/1.0 without
    /// keep-alive): worked out when it is prepared.
    close_after: bool,
    target: Target,
    redirects: u32,
    history: Vec<Response<Vec<u8>>>,
    stage: Stage,
    /// When the request times out, on the kernel's clock.
    deadline: reactor::Time,
    retried: bool,
    /// A streaming response's first event went out.
    streamed: bool,
}

enum Stage {
    /// Waiting for the manager.
    Connecting(KaRequestId),
    /// Request sent or being sent; response being read.
    Exchange(Box<Exchange>),
    /// Between two stages.
    None,
}

struct Exchange {
    conn: Connection,
    wheel: WheelId,
    reused: bool,
    /// `X-PCCH-Peer`'s value (POE's "address.port").
    peer: HeaderValue,
    parser: ResponseParser,
    response: Option<Response<Vec<u8>>>,
    /// Follow this redirect once the response ends.
    redirect: Option<Uri>,
    decoder: Option<ContentDecoder>,
    received: u64,
    total: Option<u64>,
    keep_alive_timeout: Option<Duration>,
    /// The request said `Connection: close` (or is HTTP/1.0 without keep-alive).
    close_after: bool,
}

fn with(
    sh: &Rc<Shared>,
    f: impl Fn(&Rc<Shared>, &mut Ctx<'_, ()>) + 'static,
) -> impl Fn(&mut Ctx<'_, ()>) + 'static {
    let sh = sh.clone();
    move |ctx| f(&sh, ctx)
}

/// A string argument: `String`, `&'static str` or `Rc<str>`.
fn str_arg(args: &Args, i: usize) -> Option<Rc<str>> {
    if let Some(s) = args.opt::<String>(i) {
        return Some(Rc::from(s.as_str()));
    }
    if let Some(s) = args.opt::<&'static str>(i) {
        return Some(Rc::from(*s));
    }
    args.opt::<Rc<str>>(i).cloned()
}

/// The request argument of a posted `request`: `Request<Vec<u8>>`, `<String>`,
/// `<&'static str>` or `<()>`.
fn request_arg(ctx: &mut Ctx<'_, ()>, i: usize) -> Option<Request<Vec<u8>>> {
    if let Ok(r) = ctx.take_arg::<Request<Vec<u8>>>(i) {
        return Some(r);
    }
    if let Ok(r) = ctx.take_arg::<Request<String>>(i) {
        return Some(r.map(String::into_bytes));
    }
    if let Ok(r) = ctx.take_arg::<Request<&'static str>>(i) {
        return Some(r.map(|b| b.as_bytes().to_vec()));
    }
    if let Ok(r) = ctx.take_arg::<Request<()>>(i) {
        return Some(r.map(|()| Vec::new()));
    }
    // A shared one (posted to several clients): copy it.
    ctx.arg::<Request<Vec<u8>>>(i).ok().cloned()
}

fn client_session(sh: Rc<Shared>) -> Session<()> {
    Session::new(())
        .on(
            "_start",
            with(&sh, |sh, ctx| {
                let me = ctx.session();
                let alias = {
                    let mut inner = sh.inner.borrow_mut();
                    inner.session = Some(me);
                    inner.config.alias.clone()
                };
                if let Err(e) = ctx.alias_set(&alias) {
                    log::warn!("HTTP client: alias {alias:?}: {e}");
                }
            }),
        )
        .on(
            "_stop",
            with(&sh, |sh, ctx| {
                let mut inner = sh.inner.borrow_mut();
                if inner.session == Some(ctx.session()) {
                    inner.session = None;
                }
            }),
        )
        .on("_child", |_: &mut Ctx<'_, ()>| {})
        .on(
            "request",
            with(&sh, |sh, ctx| {
                let requester = ctx.sender();
                let Some(event) = str_arg(ctx.args(), 0) else {
                    log::warn!("HTTP client: request without a response event");
                    return;
                };
                let Some(request) = request_arg(ctx, 1) else {
                    log::warn!("HTTP client: request without an http::Request in ARG1");
                    return;
                };
                let tag = ctx.args().arg(2).cloned().filter(|a| !a.is::<()>());
                let progress = str_arg(ctx.args(), 3);
                let proxy = str_arg(ctx.args(), 4).map(|s| s.to_string());
                let submit = Submit {
                    event,
                    request,
                    tag,
                    progress,
                    proxy,
                };
                sh.submit(ctx, requester, submit);
            }),
        )
        .on(
            "cancel",
            with(&sh, |sh, ctx| {
                if let Ok(&id) = ctx.arg::<ReqId>(0) {
                    sh.cancel(ctx, id, ClientError::Cancelled);
                }
            }),
        )
        .on("pending_requests_count", {
            let sh = sh.clone();
            move |_ctx: &mut Ctx<'_, ()>| reactor::Value::new(sh.inner.borrow().pending)
        })
        .on("shutdown", with(&sh, |sh, ctx| sh.shutdown(ctx)))
        .on(
            "htc_conn",
            with(&sh, |sh, ctx| {
                if let Ok(r) = ctx.take_arg::<KaResponse>(0) {
                    sh.connected(ctx, r);
                }
            }),
        )
        .on(
            "htc_input",
            with(&sh, |sh, ctx| {
                let Ok(&wheel) = ctx.arg::<WheelId>(1) else {
                    return;
                };
                let Ok(chunk) = ctx.take_arg::<Vec<u8>>(0) else {
                    return;
                };
                sh.input(ctx, wheel, &chunk);
            }),
        )
        .on(
            "htc_error",
            with(&sh, |sh, ctx| {
                let Ok(&wheel) = ctx.arg::<WheelId>(1) else {
                    return;
                };
                let Ok(e) = ctx.arg::<WheelError>(0) else {
                    return;
                };
                let e = e.clone();
                sh.wheel_error(ctx, wheel, e);
            }),
        )
        .on("htc_timeout", with(&sh, |sh, ctx| sh.timed_out(ctx)))
}

/// Whether a method is idempotent (RFC 9110 9.2.2): safe to send again.
fn idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

fn header_has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .unwrap_or("")
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    })
}

/// The POE error response: `code`, `X-PCCH-Errmsg`, POE's HTML body, the typed error in
/// the extensions.
fn error_response(
    code: u16,
    error: ClientError,
    detail: Option<String>,
    peer: Option<HeaderValue>,
) -> Response<Vec<u8>> {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    let http_msg = status.canonical_reason().unwrap_or("Error");
    let message = detail.unwrap_or_else(|| error.to_string());
    let body = format!(
        "<html>\n<HEAD><TITLE>Error: {http_msg}</TITLE></HEAD>\n<BODY>\n<H1>Error: {http_msg}</H1>\n{message}\n<small>This is a client error, not a server error.</small>\n</BODY>\n</HTML>\n"
    );
    let mut r = Response::new(body.into_bytes());
    *r.status_mut() = status;
    let clean: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&clean) {
        r.headers_mut().insert(X_PCCH_ERRMSG, v);
    }
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    if let Some(p) = peer {
        r.headers_mut().insert(X_PCCH_PEER, p);
    }
    r.extensions_mut().insert(error);
    r
}

/// The status POE gives each error.
fn error_code(e: &ClientError) -> u16 {
    match e {
        ClientError::UnsupportedScheme(_)
        | ClientError::NoHost
        | ClientError::BadRequest(_)
        | ClientError::Io { .. }
        | ClientError::NoResponse
        | ClientError::Incomplete { .. } => 400,
        ClientError::ShutDown | ClientError::Cancelled | ClientError::Timeout => 408,
        ClientError::Connect {
            function, errnum, ..
        } if function == "connect" && *errnum == Some(ETIMEDOUT) => 408,
        ClientError::Connect { .. } => 500,
        ClientError::Malformed(_) | ClientError::TooLarge { .. } | ClientError::Decode(_) => 406,
        ClientError::TooManyRedirects(_) => 310,
    }
}

/// Whether two URIs are written alike, byte for byte: then their targets are the same.
/// Cheaper than `Uri`'s `==` (which folds the case of the scheme and the authority); URIs
/// equal only up to case are merely told apart, and their target is worked out again.
fn written_alike(a: &Uri, b: &Uri) -> bool {
    a.scheme_str() == b.scheme_str()
        && a.authority().map(|x| x.as_str()) == b.authority().map(|x| x.as_str())
        && a.path_and_query().map(|x| x.as_str()) == b.path_and_query().map(|x| x.as_str())
}

/// Works out where a request goes and the request-target of its request line.
fn target_of(uri: &Uri, proxy: Option<&Proxy>, no_proxy: &[String]) -> Result<Target, ClientError> {
    let scheme = uri.scheme_str().unwrap_or("");
    let https = if scheme.eq_ignore_ascii_case("http") {
        false
    } else if scheme.eq_ignore_ascii_case("https") {
        true
    } else {
        return Err(ClientError::UnsupportedScheme(scheme.to_owned()));
    };
    let host = uri.host().unwrap_or("");
    if host.is_empty() {
        return Err(ClientError::NoHost);
    }
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let proxy = proxy.filter(|_| !bypass(&host, no_proxy)).cloned();
    let target = if proxy.is_some() && !https {
        uri.to_string()
    } else {
        uri.path_and_query().map_or_else(
            || "/".to_owned(),
            |p| {
                if p.as_str().is_empty() {
                    "/".to_owned()
                } else {
                    p.as_str().to_owned()
                }
            },
        )
    };
    Ok(Target {
        https,
        host: host.into(),
        port,
        target: target.into(),
        proxy,
    })
}

/// Whether `host` is in the no-proxy list (exact, a domain suffix, or `*`).
fn bypass(host: &str, no_proxy: &[String]) -> bool {
    no_proxy.iter().any(|n| {
        let n = n.trim_start_matches('.');
        n == "*"
            || host.eq_ignore_ascii_case(n)
            || (host.len() > n.len()
                && host[host.len() - n.len()..].eq_ignore_ascii_case(n)
                && host.as_bytes()[host.len() - n.len() - 1] == b'.')
    })
}

/// The `Host` header for a URI: the port only when it is not the scheme's default.
fn host_header(t: &Target) -> String {
    let default = if t.https { 443 } else { 80 };
    let host = if t.host.contains(':') {
        format!("[{}]", t.host)
    } else {
        t.host.to_string()
    };
    if t.port == default {
        host
    } else {
        format!("{host}:{}", t.port)
    }
}

/// The URL of a request, for cookies and redirects.
fn url_of(uri: &Uri) -> Option<url::Url> {
    url::Url::parse(&uri.to_string()).ok()
}

impl Shared {
    // ------------------------------------------------------------------ requests

    /// Answers a request at once (before it is pending): posts the response from the
    /// active session.
    fn answer_now(
        k: &mut Kernel,
        requester: SessionId,
        event: &str,
        packet: RequestPacket,
        response: Response<Vec<u8>>,
    ) {
        if let Err(e) = k.post(requester, event, (packet, response)) {
            log::debug!("HTTP client: response not delivered: {e}");
        }
    }

    fn refuse_when_gone(&self, k: &mut Kernel, requester: SessionId, s: Submit) -> ReqId {
        let id = ReqId {
            index: u32::MAX,
            generation: 0,
        };
        let packet = RequestPacket {
            id,
            request: Rc::new(s.request),
            tag: s.tag,
        };
        let r = error_response(408, ClientError::ShutDown, None, None);
        Self::answer_now(k, requester, &s.event, packet, r);
        id
    }

    fn submit(self: &Rc<Self>, k: &mut Kernel, requester: SessionId, s: Submit) -> ReqId {
        log::trace!("HTTP client: request from session {}", requester.get());
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let Submit {
            event,
            mut request,
            tag,
            progress,
            proxy,
        } = s;
        // The slot first: even a refused request has an id.
        let index = match inner.free.pop() {
            Some(i) => i,
            None => {
                inner.reqs.push(Slot {
                    generation: 0,
                    req: None,
                });
                (inner.reqs.len() - 1) as u32
            }
        };
        inner.stats.requests += 1;
        let slot = &mut inner.reqs[index as usize];
        slot.generation = slot.generation.wrapping_add(1);
        let id = ReqId {
            index,
            generation: slot.generation,
        };
        let target = if inner.shut_down {
            Err(ClientError::ShutDown)
        } else {
            match proxy {
                Some(p) => {
                    let proxy = parse_proxy(&p);
                    target_of(request.uri(), proxy.as_ref(), &inner.config.no_proxy)
                }
                None => Self::target_for(inner, request.uri()),
            }
        };
        let (target, close_after) = match target.and_then(|t| {
            let close_after = Self::prepare(inner, &mut request, &t)?;
            Ok((t, close_after))
        }) {
            Ok(t) => t,
            Err(e) => {
                inner.free.push(index);
                let packet = RequestPacket {
                    id,
                    request: Rc::new(request),
                    tag,
                };
                let r = error_response(error_code(&e), e, None, None);
                inner.stats.responses += 1;
                inner.stats.errors += 1;
                Self::answer_now(k, requester, &event, packet, r);
                return id;
            }
        };
        let request = Rc::new(request);
        let timeout = i64::try_from(inner.config.timeout.as_nanos()).unwrap_or(i64::MAX);
        let now = k.monotime();
        let deadline = now.saturating_add(timeout);
        Self::arm(k, inner, deadline);
        Self::hold(k, inner, requester);
        let pending = Pending {
            id,
            requester,
            event,
            progress,
            packet: RequestPacket {
                id,
                request: request.clone(),
                tag,
            },
            current: request,
            close_after,
            target,
            redirects: 0,
            history: Vec::new(),
            stage: Stage::None,
            deadline,
            retried: false,
            streamed: false,
        };
        inner.reqs[index as usize].req = Some(pending);
        inner.pending += 1;
        self.connect(k, inner, index, false, Some(now));
        id
    }

    /// Adds the headers POE adds: `Host`, `User-Agent`, `From`, `Content-Length`, the
    /// cookies; and ours: `Accept-Encoding` when asked for. True if the request asks for
    /// the connection to close after it (`Connection: close`, or HTTP/1.0 without
    /// `Connection: keep-alive`).
    fn prepare(
        inner: &mut Inner,
        req: &mut Request<Vec<u8>>,
        t: &Target,
    ) -> Result<bool, ClientError> {
        // A request without headers of its own has none of those looked for below: the
        // map is not searched for them.
        let bare = req.headers().is_empty();
        if req.version() != Version::HTTP_10 && req.version() != Version::HTTP_11 {
            *req.version_mut() = inner.config.protocol;
        } else if inner.config.protocol == Version::HTTP_10 {
            *req.version_mut() = Version::HTTP_10;
        }
        let len = req.body().len();
        let needs_length = len > 0 || matches!(*req.method(), Method::POST | Method::PUT);
        // A request without headers or body of its own gets `Host`, `User-Agent` and, if
        // the client asks for them, `Accept-Encoding` (no `From`, no cookie jar): the
        // same map as the last such request's when the `Host` value and the agent are the
        // same, so a copy of it (kept in `bare_headers`). `reuse`: the agent it gets.
        let reuse = (bare
            && !needs_length
            && inner.config.from.is_none()
            && inner.config.cookie_jar.is_none()
            && !inner.agent_values.is_empty())
        .then(|| inner.next_agent % inner.agent_values.len());
        if let Some(agent) = reuse {
            if let Some((a, map)) = &inner.bare_headers {
                if *a == agent && Self::kept_host(inner, t).is_some() {
                    inner.next_agent = inner.next_agent.wrapping_add(1);
                    *req.headers_mut() = map.clone();
                    return Ok(req.version() == Version::HTTP_10);
                }
            }
        }
        let h = req.headers_mut();
        if bare || !h.contains_key(header::HOST) {
            h.insert(header::HOST, Self::host_value(inner, t)?);
        }
        if bare || !h.contains_key(header::USER_AGENT) {
            if inner.agent_values.is_empty() {
                return Err(ClientError::BadRequest("no valid agent".to_owned()));
            }
            let v = inner.agent_values[inner.next_agent % inner.agent_values.len()].clone();
            inner.next_agent = inner.next_agent.wrapping_add(1);
            h.insert(header::USER_AGENT, v);
        }
        let config = &inner.config;
        if let Some(from) = &config.from {
            if bare || !h.contains_key(header::FROM) {
                let v = HeaderValue::from_str(from)
                    .map_err(|e| ClientError::BadRequest(e.to_string()))?;
                h.insert(header::FROM, v);
            }
        }
        if config.accept_encoding && (bare || !h.contains_key(header::ACCEPT_ENCODING)) {
            h.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_static("gzip, deflate"),
            );
        }
        let h = req.headers();
        if needs_length
            && (bare
                || !h.contains_key(header::CONTENT_LENGTH)
                    && !h.contains_key(header::TRANSFER_ENCODING))
        {
            req.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        }
        if let Some(jar) = &config.cookie_jar {
            Self::add_cookies(jar, req);
        }
        if let Some(agent) = reuse {
            inner.bare_headers = Some((agent, req.headers().clone()));
        }
        let v10 = req.version() == Version::HTTP_10;
        Ok(if bare {
            v10
        } else {
            let h = req.headers();
            header_has_token(h, header::CONNECTION, "close")
                || (v10 && !header_has_token(h, header::CONNECTION, "keep-alive"))
        })
    }

    /// The last `Host` value made, if it is `t`'s.
    fn kept_host<'a>(inner: &'a Inner, t: &Target) -> Option<&'a HeaderValue> {
        match &inner.last_host {
            Some((https, host, port, v))
                if *https == t.https && *port == t.port && **host == *t.host =>
            {
                Some(v)
            }
            _ => None,
        }
    }

    /// The `Host` header's value for `t` (the last one's again for the same target).
    fn host_value(inner: &mut Inner, t: &Target) -> Result<HeaderValue, ClientError> {
        if let Some(v) = Self::kept_host(inner, t) {
            return Ok(v.clone());
        }
        let v = HeaderValue::from_str(&host_header(t))
            .map_err(|e| ClientError::BadRequest(e.to_string()))?;
        inner.last_host = Some((t.https, t.host.to_string(), t.port, v.clone()));
        // The map kept was made with the last value.
        inner.bare_headers = None;
        Ok(v)
    }

    fn add_cookies(jar: &CookieJar, req: &mut Request<Vec<u8>>) {
        let Some(url) = url_of(req.uri()) else { return };
        let jar = jar.borrow();
        let pairs: Vec<String> = jar
            .get_request_values(&url)
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        if pairs.is_empty() {
            return;
        }
        if let Ok(v) = HeaderValue::from_str(&pairs.join("; ")) {
            req.headers_mut().insert(header::COOKIE, v);
        }
    }

    fn keep_cookies(jar: &CookieJar, uri: &Uri, headers: &HeaderMap) {
        let Some(url) = url_of(uri) else { return };
        let mut jar = jar.borrow_mut();
        let cookies = headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|s| cookie_store::RawCookie::parse(s.to_owned()).ok());
        jar.store_response_cookies(cookies, &url);
    }

    /// Asks the manager for a connection for request `index`'s current hop; `now`, the
    /// clock if it was read in this handler, serves the manager too.
    fn connect(
        self: &Rc<Self>,
        k: &mut Kernel,
        inner: &mut Inner,
        index: u32,
        fresh: bool,
        now: Option<reactor::Time>,
    ) {
        let Some(p) = inner.reqs[index as usize].req.as_mut() else {
            return;
        };
        let t = &p.target;
        let (scheme, addr, port) = match &t.proxy {
            // https goes through a CONNECT tunnel, which the manager opens.
            Some(pr) => (
                if t.https { "https" } else { "http" },
                pr.host.as_str(),
                pr.port,
            ),
            None => (if t.https { "https" } else { "http" }, &*t.host, t.port),
        };
        let key = match &inner.last_key {
            Some(key)
                if key.scheme == scheme
                    && key.addr == addr
                    && key.port == port
                    && (t.proxy.is_none()
                        || (*key.for_addr == *t.host && key.for_port == t.port)) =>
            {
                key.clone()
            }
            _ => {
                let mut key = PoolKey::new(scheme, addr, port);
                if t.proxy.is_some() {
                    key = key.with_origin(if t.https { "https" } else { "http" }, &*t.host, t.port);
                }
                let key = Arc::new(key);
                inner.last_key = Some(key.clone());
                key
            }
        };
        let mut req = KaRequest::for_key(key, inner.conn_event.clone()).context(p.id);
        if fresh {
            req = req.fresh_connection();
        }
        req = req.timeout(inner.config.timeout);
        match inner.manager.allocate_at(k, req, now) {
            Ok(rid) => p.stage = Stage::Connecting(rid),
            Err(e) => {
                let err = ClientError::Connect {
                    function: "allocate".to_owned(),
                    errnum: None,
                    errstr: e.to_string(),
                };
                self.fail(k, inner, index, err, None);
            }
        }
    }

    /// The pending request with this id, if it still is.
    fn live(inner: &Inner, id: ReqId) -> bool {
        inner
            .reqs
            .get(id.index as usize)
            .is_some_and(|s| s.generation == id.generation && s.req.is_some())
    }

    /// The manager answered: start the exchange.
    fn connected(self: &Rc<Self>, k: &mut Kernel, r: KaResponse) {
        let Some(&id) = r.context_ref::<ReqId>() else {
            return;
        };
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        if !Self::live(inner, id) {
            return; // cancelled meanwhile: the connection goes back to the pool
        }
        let from_cache = r.from_cache().is_some();
        let mut conn = match r.connection {
            Ok(c) => c,
            Err(f) => {
                let Failure {
                    function,
                    errnum,
                    errstr,
                } = f;
                let p = inner.reqs[id.index as usize].req.as_ref().expect("live");
                let (h, port) = match &p.target.proxy {
                    Some(pr) => (pr.host.clone(), pr.port),
                    None => (p.target.host.to_string(), p.target.port),
                };
                let err = ClientError::Connect {
                    function,
                    errnum,
                    errstr,
                };
                let detail = if matches!(&err, ClientError::Connect { function, errnum, .. } if function == "connect" && *errnum == Some(ETIMEDOUT))
                {
                    format!("Connection to {h}:{port} failed: timeout")
                } else {
                    format!("Connection to {h}:{port} failed: {err}")
                };
                self.fail(k, inner, id.index, err, Some(detail));
                return;
            }
        };
        let peer = match conn.peer_addr() {
            Some(a) => match &inner.last_peer {
                Some((last, v)) if *last == a => v.clone(),
                _ => {
                    let v = HeaderValue::try_from(format!("{}.{}", a.ip(), a.port()))
                        .unwrap_or(HeaderValue::from_static("error: bad address"));
                    inner.last_peer = Some((a, v.clone()));
                    v
                }
            },
            None => HeaderValue::from_static("error: not connected"),
        };
        let (input_event, error_event) = (inner.input_event, inner.error_event);
        let wheel = match conn.start(k, |b| {
            b.filter(StreamFilter::new())
                .event_id(RwEvent::Input, input_event)
                .event_id(RwEvent::Error, error_event)
        }) {
            Ok(w) => w,
            Err(e) => {
                let err = ClientError::Io {
                    operation: "start".to_owned(),
                    errnum: 0,
                    errstr: e.to_string(),
                };
                self.fail(k, inner, id.index, err, None);
                return;
            }
        };
        inner.by_wheel.insert(wheel, id.index);
        let http09 = inner.config.http09;
        let p = inner.reqs[id.index as usize].req.as_mut().expect("live");
        let head = *p.current.method() == Method::HEAD;
        let close_after = p.close_after;
        let ex = Box::new(Exchange {
            conn,
            wheel,
            reused: from_cache,
            peer,
            parser: ResponseParser::new(head).allow_http09(http09),
            response: None,
            redirect: None,
            decoder: None,
            received: 0,
            total: None,
            keep_alive_timeout: None,
            close_after,
        });
        let mut bytes = Vec::new();
        crate::http::encode_request(&p.current, &p.target.target, &mut bytes);
        p.stage = Stage::Exchange(ex);
        // The flush may call the wheel's events at once (a write error): they borrow the
        // client's state, so it is let go first.
        drop(guard);
        if let Some(w) = k.wheel_mut::<ReadWrite>(wheel) {
            let _ = w.put_one(bytes);
        }
        ReadWrite::flush(k, wheel);
    }

    // ------------------------------------------------------------------ input

    fn input(self: &Rc<Self>, k: &mut Kernel, wheel: WheelId, chunk: &[u8]) {
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let Some(&index) = inner.by_wheel.get(&wheel) else {
            return;
        };
        let mut data = chunk;
        loop {
            let Some(p) = inner.reqs[index as usize].req.as_mut() else {
                return;
            };
            let ex = match &mut p.stage {
                Stage::Exchange(ex) if ex.wheel == wheel => ex,
                _ => return,
            };
            let step = match ex.parser.advance(&mut data, Some(&mut inner.head_cache)) {
                Ok(s) => s,
                Err(e) => {
                    self.fail(k, inner, index, ClientError::Malformed(e), None);
                    return;
                }
            };
            match step {
                Advance::NeedMore => return,
                Advance::Head(head) => {
                    if let Err(e) = self.on_head(k, inner, index, head) {
                        self.fail(k, inner, index, e, None);
                        return;
                    }
                }
                Advance::Data(d) => {
                    if let Err(e) = self.on_data(k, inner, index, d) {
                        self.fail(k, inner, index, e, None);
                        return;
                    }
                }
                Advance::End(end) => {
                    let extra = !data.is_empty();
                    self.on_end(k, inner, index, end, extra);
                    return;
                }
            }
        }
    }

    fn on_head(
        self: &Rc<Self>,
        k: &mut Kernel,
        inner: &mut Inner,
        index: u32,
        head: Head,
    ) -> Result<(), ClientError> {
        let config = &inner.config;
        let p = inner.reqs[index as usize].req.as_mut().expect("live");
        let Stage::Exchange(ex) = &mut p.stage else {
            return Ok(());
        };
        let Head {
            status,
            version,
            mut headers,
            content_length,
            keep_alive_timeout,
            ..
        } = head;
        // The parser says which coding headers the head has: the map is searched for
        // them only then.
        let has = ex.parser.codings();
        // Transfer codings undone here leave the header (POE removes them).
        let te = if has.transfer {
            headers.get(header::TRANSFER_ENCODING)
        } else {
            None
        };
        if let Some(te) = te.and_then(|v| v.to_str().ok()) {
            let mut codings: Vec<&str> = te
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            if codings
                .last()
                .is_some_and(|c| c.eq_ignore_ascii_case("chunked"))
            {
                codings.pop();
                if codings.is_empty() {
                    headers.remove(header::TRANSFER_ENCODING);
                } else if let Ok(v) = HeaderValue::from_str(&codings.join(", ")) {
                    headers.insert(header::TRANSFER_ENCODING, v);
                }
            }
        }
        if let Some(jar) = &config.cookie_jar {
            Self::keep_cookies(jar, p.current.uri(), &headers);
        }
        headers.insert(X_PCCH_PEER, ex.peer.clone());
        ex.keep_alive_timeout = keep_alive_timeout;
        ex.total = content_length.filter(|_| *p.current.method() != Method::HEAD);
        // A redirect to follow?
        if status.is_redirection()
            && status != StatusCode::NOT_MODIFIED
            && status != StatusCode::MULTIPLE_CHOICES
            && status != StatusCode::USE_PROXY
            && p.redirects < config.follow_redirects
        {
            if let Some(loc) = headers.get(header::LOCATION).and_then(|v| v.to_str().ok()) {
                if let Some(next) = url_of(p.current.uri()).and_then(|base| base.join(loc).ok()) {
                    ex.redirect = next.as_str().parse::<Uri>().ok();
                }
            }
        }
        if ex.redirect.is_none() {
            if let (Some(max), Some(len)) = (config.max_size, ex.total) {
                if len > max as u64 {
                    return Err(ClientError::TooLarge { max_size: max });
                }
            }
            if config.decode_content && ex.total != Some(0) && has.content {
                if let Some(coding) = headers
                    .get(header::CONTENT_ENCODING)
                    .and_then(|v| v.to_str().ok())
                {
                    if let Some(d) = ContentDecoder::for_coding(coding) {
                        ex.decoder = Some(d);
                        headers.remove(header::CONTENT_ENCODING);
                        headers.remove(header::CONTENT_LENGTH);
                    }
                }
            }
        }
        let mut response = Response::new(Vec::new());
        *response.status_mut() = status;
        *response.version_mut() = version;
        *response.headers_mut() = headers;
        if let Some(n) = ex
            .total
            .filter(|_| ex.decoder.is_none() && !config.streaming)
        {
            response.body_mut().reserve_exact(n.min(1 << 20) as usize);
        }
        ex.response = Some(response);
        let _ = k;
        Ok(())
    }

    fn on_data(
        self: &Rc<Self>,
        k: &mut Kernel,
        inner: &mut Inner,
        index: u32,
        data: &[u8],
    ) -> Result<(), ClientError> {
        let config = &inner.config;
        let p = inner.reqs[index as usize].req.as_mut().expect("live");
        let Stage::Exchange(ex) = &mut p.stage else {
            return Ok(());
        };
        ex.received += data.len() as u64;
        if ex.redirect.is_some() {
            return Ok(()); // the body of a redirect followed is not kept
        }
        let Some(response) = ex.response.as_mut() else {
            return Ok(());
        };
        let mut decoded = Vec::new();
        let piece: &[u8] = match ex.decoder.as_mut() {
            Some(d) => {
                d.decode(data, &mut decoded)
                    .map_err(|e| ClientError::Decode(e.to_string()))?;
                &decoded
            }
            None => data,
        };
        if let Some(max) = config.max_size {
            let so_far = if config.streaming {
                0
            } else {
                response.body().len()
            };
            if ex.received > max as u64 || so_far + piece.len() > max {
                return Err(ClientError::TooLarge { max_size: max });
            }
        }
        if config.streaming {
            if !piece.is_empty() {
                let head = clone_head(response);
                p.streamed = true;
                let _ = k.post(
                    p.requester,
                    &p.event,
                    (p.packet.clone(), head, Some(piece.to_vec())),
                );
            }
        } else {
            response.body_mut().extend_from_slice(piece);
        }
        if let Some(ev) = &p.progress {
            let _ = k.post(
                p.requester,
                ev,
                (
                    p.packet.clone(),
                    Progress {
                        received: ex.received,
                        total: ex.total,
                    },
                ),
            );
        }
        Ok(())
    }

    /// The response is complete.
    fn on_end(
        self: &Rc<Self>,
        k: &mut Kernel,
        inner: &mut Inner,
        index: u32,
        end: End,
        extra: bool,
    ) {
        let hint = inner.config.keep_alive_hint;
        let Some(p) = inner.reqs[index as usize].req.as_mut() else {
            return;
        };
        let Stage::Exchange(mut ex) = std::mem::replace(&mut p.stage, Stage::None) else {
            return;
        };
        inner.by_wheel.remove(&ex.wheel);
        let reuse = end.keep_alive && !extra && !ex.close_after;
        if reuse {
            if let (true, Some(t)) = (hint, ex.keep_alive_timeout) {
                ex.conn
                    .set_idle_timeout(t.saturating_sub(Duration::from_secs(1)));
            }
        } else {
            ex.conn.close(k);
        }
        let mut response = ex.response.take().unwrap_or_default();
        if let Some(d) = ex.decoder.as_mut() {
            let mut rest = Vec::new();
            if let Err(e) = d.finish(&mut rest) {
                drop(ex);
                self.fail(k, inner, index, ClientError::Decode(e.to_string()), None);
                return;
            }
            if inner.config.streaming {
                if !rest.is_empty() {
                    let head = clone_head(&response);
                    let _ = k.post(p.requester, &p.event, (p.packet.clone(), head, Some(rest)));
                }
            } else {
                response.body_mut().extend_from_slice(&rest);
            }
        }
        if let Some(t) = end.trailers {
            response.extensions_mut().insert(Trailers(t));
        }
        let redirect = ex.redirect.take();
        if let Some(next) = redirect {
            drop(ex); // the connection goes back to the pool (or was closed) for the next hop
            self.follow(k, inner, index, response, next);
            return;
        }
        if p.redirects >= inner.config.follow_redirects
            && inner.config.follow_redirects > 0
            && response.status().is_redirection()
            && response.headers().contains_key(header::LOCATION)
        {
            let n = p.redirects;
            if let Ok(v) = HeaderValue::from_str(&ClientError::TooManyRedirects(n).to_string()) {
                response.headers_mut().insert(X_PCCH_ERRMSG, v);
            }
            response
                .extensions_mut()
                .insert(ClientError::TooManyRedirects(n));
        }
        self.deliver(k, inner, index, response);
        // The connection goes back to the pool after the response is posted: a requester
        // that sends its next request from the response handler gets it back at once,
        // before the manager's housekeeping would start watching it idle.
        drop(ex);
    }

    /// Sends the request again to the redirect's target.
    fn follow(
        self: &Rc<Self>,
        k: &mut Kernel,
        inner: &mut Inner,
        index: u32,
        response: Response<Vec<u8>>,
        next: Uri,
    ) {
        let proxy = inner.config.proxy.clone();
        let p = inner.reqs[index as usize].req.as_mut().expect("live");
        let status = response.status();
        let old_host = p.target.host.clone();
        let mut req = (*p.current).clone();
        p.history.push(response);
        p.redirects += 1;
        inner.stats.redirects += 1;
        *req.uri_mut() = next;
        // Browsers' rules: 303 (and 301/302 after a POST) become a GET without a body.
        let to_get = status == StatusCode::SEE_OTHER && *req.method() != Method::HEAD
            || (matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND)
                && *req.method() == Method::POST);
        if to_get {
            *req.method_mut() = Method::GET;
            req.body_mut().clear();
            for h in [
                header::CONTENT_LENGTH,
                header::CONTENT_TYPE,
                header::TRANSFER_ENCODING,
            ] {
                req.headers_mut().remove(h);
            }
        }
        // rt #30400: cookies are not carried to the next hop (the jar adds its own).
        req.headers_mut().remove(header::COOKIE);
        req.headers_mut().remove(header::HOST);
        let target = match target_of(req.uri(), proxy.as_ref(), &inner.config.no_proxy) {
            Ok(t) => t,
            Err(e) => {
                self.fail(k, inner, index, e, None);
                return;
            }
        };
        if !target.host.eq_ignore_ascii_case(&old_host) {
            req.headers_mut().remove(header::AUTHORIZATION);
        }
        let close_after = match Self::prepare(inner, &mut req, &target) {
            Ok(c) => c,
            Err(e) => {
                self.fail(k, inner, index, e, None);
                return;
            }
        };
        let p = inner.reqs[index as usize].req.as_mut().expect("live");
        p.current = Rc::new(req);
        p.close_after = close_after;
        p.target = target;
        p.retried = false;
        self.connect(k, inner, index, false, None);
    }

    /// Posts the final response and forgets the request.
    fn deliver(
        self: &Rc<Self>,
        k: &mut Kernel,
        inner: &mut Inner,
        index: u32,
        mut response: Response<Vec<u8>>,
    ) {
        let Some(mut p) = inner.reqs[index as usize].req.take() else {
            return;
        };
        inner.free.push(index);
        inner.pending -= 1;
        inner.stats.responses += 1;
        if response.extensions().get::<ClientError>().is_some() {
            inner.stats.errors += 1;
        }
        if inner.pending == 0 {
            // Nothing left to time out: the alarm must not keep the session alive.
            if let Some((t, _)) = inner.timer.take() {
                let _ = k.alarm_remove(t);
            }
        }
        match std::mem::replace(&mut p.stage, Stage::None) {
            Stage::Connecting(rid) => {
                let _ = inner.manager.deallocate(k, rid);
            }
            Stage::Exchange(mut ex) => {
                inner.by_wheel.remove(&ex.wheel);
                ex.conn.close(k);
            }
            Stage::None => {}
        }
        if !p.history.is_empty() {
            response
                .extensions_mut()
                .insert(Redirects(std::mem::take(&mut p.history)));
        }
        let streaming =
            inner.config.streaming && response.extensions().get::<ClientError>().is_none();
        let answer = &mut inner.answer_event;
        let result = if streaming {
            let args = (p.packet, response, None::<Vec<u8>>);
            answer.post(k, p.requester, &p.event, args)
        } else {
            answer.post(k, p.requester, &p.event, (p.packet, response))
        };
        log::trace!("HTTP client: response to {} posted", p.id);
        if let Err(e) = result {
            log::debug!("HTTP client: response not delivered: {e}");
        }
        Self::release(k, inner, p.requester);
    }

    /// Ends the request with an error response.
    fn fail(
        self: &Rc<Self>,
        k: &mut Kernel,
        inner: &mut Inner,
        index: u32,
        error: ClientError,
        detail: Option<String>,
    ) {
        let Some(p) = inner.reqs[index as usize].req.as_ref() else {
            return;
        };
        let peer = match &p.stage {
            Stage::Exchange(ex) => Some(ex.peer.clone()),
            _ => None,
        };
        let r = error_response(error_code(&error), error, detail, peer);
        self.deliver(k, inner, index, r);
    }

    // ------------------------------------------------------------------ errors and time

    fn wheel_error(self: &Rc<Self>, k: &mut Kernel, wheel: WheelId, e: WheelError) {
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let Some(&index) = inner.by_wheel.get(&wheel) else {
            return;
        };
        let retry_on = inner.config.retry;
        let Some(p) = inner.reqs[index as usize].req.as_mut() else {
            return;
        };
        let ex = match &mut p.stage {
            Stage::Exchange(ex) if ex.wheel == wheel => ex,
            _ => return,
        };
        if e.is_eof() {
            if let Ok(end) = ex.parser.eof() {
                self.on_end(k, inner, index, end, false);
                return;
            }
        }
        let started = ex.parser.started();
        if !started && ex.reused && retry_on && !p.retried && idempotent(p.current.method()) {
            // The server closed the idle connection as the request went out: once more,
            // on a new connection.
            p.retried = true;
            inner.stats.retries += 1;
            let Stage::Exchange(mut ex) = std::mem::replace(&mut p.stage, Stage::None) else {
                return;
            };
            inner.by_wheel.remove(&ex.wheel);
            ex.conn.close(k);
            drop(ex);
            log::debug!("HTTP client: request {} retried on a new connection", p.id);
            self.connect(k, inner, index, true, None);
            return;
        }
        let err = if e.is_eof() {
            if !started {
                ClientError::NoResponse
            } else if !ex.parser.has_head() {
                ClientError::Malformed(HttpError::Truncated)
            } else {
                ClientError::Incomplete {
                    expected: ex.total,
                    received: ex.received,
                }
            }
        } else {
            ClientError::Io {
                operation: e.operation.to_owned(),
                errnum: e.errno,
                errstr: e.message.clone(),
            }
        };
        self.fail(k, inner, index, err, None);
    }

    /// Where a request to `uri` goes through the configured proxy (if any): worked out
    /// once for a run of requests to the same URI (the last one is kept).
    fn target_for(inner: &mut Inner, uri: &Uri) -> Result<Target, ClientError> {
        if let Some((last, t)) = &inner.last_target {
            if written_alike(last, uri) {
                return Ok(t.clone());
            }
        }
        let t = target_of(uri, inner.config.proxy.as_ref(), &inner.config.no_proxy)?;
        inner.last_target = Some((uri.clone(), t.clone()));
        Ok(t)
    }

    /// Counts a pending request of `requester`; its first keeps the session alive (one
    /// reference tagged `poco-client-http`, as POE's client holds its requesters), so a
    /// stream of requests costs no reference count operation of its own.
    fn hold(k: &mut Kernel, inner: &mut Inner, requester: SessionId) {
        let n = inner.held.entry(requester).or_insert(0);
        *n += 1;
        if *n == 1 {
            let _ = k.refcount_increment(requester, REQUESTER_TAG);
        }
    }

    /// A request of `requester` was answered; its last lets the session go.
    fn release(k: &mut Kernel, inner: &mut Inner, requester: SessionId) {
        let Some(n) = inner.held.get_mut(&requester) else {
            return;
        };
        *n -= 1;
        if *n == 0 {
            inner.held.remove(&requester);
            let _ = k.refcount_decrement(requester, REQUESTER_TAG);
        }
    }

    /// Keeps the one deadline alarm at or before `deadline`. It is only ever moved earlier:
    /// a later deadline leaves it where it is (when it fires it finds the requests due,
    /// and is set again for the earliest left), so a request costs no timer operation of
    /// its own. With one timeout for every request, deadlines come in submission order and
    /// the alarm is set once per timeout period while requests keep coming. It is removed
    /// when no request is pending, so it never keeps the session alive.
    fn arm(k: &mut Kernel, inner: &mut Inner, deadline: reactor::Time) {
        if inner.timer.is_some_and(|(_, at)| at <= deadline) {
            return;
        }
        if let Some((t, _)) = inner.timer.take() {
            let _ = k.alarm_remove(t);
        }
        let wait = Duration::from_nanos(u64::try_from(deadline - k.monotime()).unwrap_or(0));
        if let Ok(t) = k.delay_set("htc_timeout", wait, ()) {
            inner.timer = Some((t, deadline));
        }
    }

    /// The deadline alarm fired: every request due fails with a timeout, and the alarm is
    /// set again for the earliest deadline left.
    fn timed_out(self: &Rc<Self>, k: &mut Kernel) {
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        let armed = inner.timer.take().map_or(reactor::Time::MIN, |(_, at)| at);
        // The kernel fires at or after the time set; rounding must not make it look early.
        let now = k.monotime().max(armed);
        let mut next = None::<reactor::Time>;
        for index in 0..inner.reqs.len() as u32 {
            let Some(deadline) = inner.reqs[index as usize].req.as_ref().map(|p| p.deadline) else {
                continue;
            };
            if deadline <= now {
                self.fail(k, inner, index, ClientError::Timeout, None);
            } else {
                next = Some(next.map_or(deadline, |n| n.min(deadline)));
            }
        }
        if let Some(next) = next {
            if inner.pending > 0 {
                Self::arm(k, inner, next);
            }
        }
    }

    fn cancel(self: &Rc<Self>, k: &mut Kernel, id: ReqId, why: ClientError) -> bool {
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        if !Self::live(inner, id) {
            return false;
        }
        self.fail(k, inner, id.index, why, None);
        true
    }

    fn shutdown(self: &Rc<Self>, k: &mut Kernel) {
        let mut guard = self.inner.borrow_mut();
        let inner = &mut *guard;
        if inner.shut_down {
            return;
        }
        inner.shut_down = true;
        for index in 0..inner.reqs.len() as u32 {
            if inner.reqs[index as usize].req.is_some() {
                self.fail(k, inner, index, ClientError::ShutDown, None);
            }
        }
        if inner.own_manager {
            inner.manager.shutdown(k);
        }
        for alias in k.my_aliases() {
            let _ = k.alias_remove(&alias);
        }
    }
}

/// A response's head with an empty body (what each streaming event carries).
fn clone_head(r: &Response<Vec<u8>>) -> Response<Vec<u8>> {
    let mut h = Response::new(Vec::new());
    *h.status_mut() = r.status();
    *h.version_mut() = r.version();
    *h.headers_mut() = r.headers().clone();
    h
}
