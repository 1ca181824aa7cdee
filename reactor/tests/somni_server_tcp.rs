//! The order of Server::TCP and Client::TCP callbacks in one exchange: a port of POE's
//! `t/90_regression/somni-poco-server-tcp.t`.
//!
//! A server on 127.0.0.1 starts a client from its `Started` callback. The server greets,
//! the client introduces itself, the server answers "Go away.", the client shuts down and
//! the server, seeing it go, shuts itself down. Four runs check the logged sequence: with
//! the default port, with `Port => 0`, with `ClientArgs`/`ListenerArgs` of various kinds
//! (they reach `ClientConnected` and `Started` as `ARG0..`), and with
//! `InlineStates`/`ObjectStates`/`PackageStates` on the connection sessions.
//!
//! Perl's argument kinds map to Rust types as follows: an array ref is a `Vec<String>`
//! ("ARRAY"), a hash ref a `HashMap<String, String>` ("HASH"), a scalar ref an
//! `Rc<String>` ("SCALAR"), and a plain string a `String` ("none", Perl's `ref` being
//! empty).

mod common;
use common::bounded;
use reactor::component::{ClientHeap, ClientTcp, ConnHeap, ListenerHeap, ServerTcp};
use reactor::{Ctx, HandlerError, Kernel};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

thread_local! {
    /// Upstream's `our @state`.
    static STATE: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn state(s: impl Into<String>) {
    STATE.with(|st| st.borrow_mut().push(s.into()));
}

/// Upstream's `arginfo`: "" without arguments, else ": " and each argument's kind.
fn arginfo(args: &reactor::Args) -> String {
    if args.is_empty() {
        return String::new();
    }
    let kinds: Vec<&str> = (0..args.len())
        .map(|i| {
            if args.is::<Vec<String>>(i) {
                "ARRAY"
            } else if args.is::<HashMap<String, String>>(i) {
                "HASH"
            } else if args.is::<Rc<String>>(i) {
                "SCALAR"
            } else {
                "none"
            }
        })
        .collect();
    format!(": {}", kinds.join(" "))
}

// Callback subroutines.

struct ObjectStatesTest;

impl ObjectStatesTest {
    fn test(&self, ctx: &mut Ctx<'_, ConnHeap>) -> Result<(), HandlerError> {
        state(format!("ObjectStates test: {}", ctx.arg::<String>(0)?));
        Ok(())
    }
}

fn package_states_test(
    _package: &'static str,
    ctx: &mut Ctx<'_, ConnHeap>,
) -> Result<(), HandlerError> {
    state(format!("PackageStates test: {}", ctx.arg::<String>(0)?));
    Ok(())
}

fn inline_states_test(ctx: &mut Ctx<'_, ConnHeap>) -> Result<(), HandlerError> {
    state(format!("InlineStates test: {}", ctx.arg::<String>(0)?));
    Ok(())
}

fn yield_tests<H: 'static>(ctx: &mut Ctx<'_, H>, from: &str) -> Result<(), HandlerError> {
    for ev in [
        "InlineStates_test",
        "ObjectStates_test",
        "PackageStates_test",
    ] {
        ctx.yield_(ev, (format!("from {from}"),))?;
    }
    Ok(())
}

fn server_started(ctx: &mut Ctx<'_, ListenerHeap>) -> Result<(), HandlerError> {
    let addr = ctx.heap().local_addr().ok_or("listener bound")?;
    state(format!("server started{}", arginfo(ctx.args())));
    ClientTcp::builder(addr.ip().to_string(), addr.port())
        .started(|_| state("client started"))
        .connected(client_connected)
        .server_input(client_input)
        .server_flushed(|_| state("client flushed"))
        .build(ctx)?;
    // The listener has none of these states: they go nowhere, as upstream.
    yield_tests(ctx, "server_started")
}

fn server_client_connected(ctx: &mut Ctx<'_, ConnHeap>) -> Result<(), HandlerError> {
    state(format!("client connected to server{}", arginfo(ctx.args())));
    ctx.client()
        .ok_or("no client")?
        .put_one("I will be serving you today!")?;
    yield_tests(ctx, "server_client_connected")
}

fn client_connected(ctx: &mut Ctx<'_, ClientHeap>) -> Result<(), HandlerError> {
    state("client connected");
    ctx.server()
        .ok_or("no server")?
        .put_one("I am your new client!")?;
    Ok(())
}

fn server_client_disconnected(ctx: &mut Ctx<'_, ConnHeap>) -> Result<(), HandlerError> {
    state("client disconnected");
    ctx.post("server", "shutdown", ())?;
    Ok(())
}

fn client_input(ctx: &mut Ctx<'_, ClientHeap>) -> Result<(), HandlerError> {
    let msg = String::from_utf8(ctx.arg::<Vec<u8>>(0)?.clone())?;
    state(format!("received from server: {msg}"));
    if msg == "Go away." {
        ctx.yield_("shutdown", ())?;
    }
    Ok(())
}

fn server_client_input(ctx: &mut Ctx<'_, ConnHeap>) -> Result<(), HandlerError> {
    let msg = String::from_utf8(ctx.arg::<Vec<u8>>(0)?.clone())?;
    state(format!("received from client: {msg}"));
    ctx.client().ok_or("no client")?.put_one("Go away.")?;
    Ok(())
}

// Utility subroutines.

enum Extra {
    None,
    Port0,
    Args,
    States,
}

fn run(extra: Extra) -> Vec<String> {
    STATE.with(|st| st.borrow_mut().clear());
    let mut k = Kernel::new().expect("kernel");
    let mut b = ServerTcp::builder()
        .address("127.0.0.1")
        .alias("server")
        .started(server_started)
        .client_connected(server_client_connected)
        .client_disconnected(server_client_disconnected)
        .client_input(server_client_input);
    match extra {
        Extra::None => {}
        Extra::Port0 => b = b.port(0),
        Extra::Args => {
            b = b
                .client_args((
                    String::new(),
                    Rc::new(String::new()),
                    HashMap::<String, String>::new(),
                    Vec::<String>::new(),
                ))
                .listener_args((
                    Vec::<String>::new(),
                    HashMap::<String, String>::new(),
                    Rc::new(String::new()),
                    String::new(),
                ))
        }
        Extra::States => {
            b = b
                .inline_state("InlineStates_test", inline_states_test)
                .object_states(
                    Rc::new(ObjectStatesTest),
                    &[("ObjectStates_test", ObjectStatesTest::test)],
                )
                .package_states(
                    "PackageStates_test",
                    &[("PackageStates_test", package_states_test)],
                )
        }
    }
    b.build(&mut k).expect("server");
    k.run().expect("run");
    STATE.with(|st| st.borrow().clone())
}

// Testing subroutines.

#[track_caller]
fn ok_state_empty(state: &[String]) {
    assert!(state.is_empty(), "state is empty: {state:#?}");
}

#[track_caller]
fn ok_state_top(state: &mut Vec<String>, value: &str) {
    assert_eq!(state.first().map(String::as_str), Some(value), "{state:#?}");
    state.remove(0);
}

#[track_caller]
fn ok_state_any(state: &mut Vec<String>, value: &str) {
    match state.iter().position(|s| s == value) {
        Some(i) => {
            state.remove(i);
        }
        None => panic!("{value} not in {state:#?}"),
    }
}

fn common_tail(state: &mut Vec<String>) {
    ok_state_top(state, "client flushed");
    ok_state_any(state, "received from server: I will be serving you today!");
    ok_state_any(state, "received from client: I am your new client!");
    ok_state_top(state, "received from server: Go away.");
    ok_state_top(state, "client disconnected");
    ok_state_empty(state);
}

#[test]
fn default_port() {
    bounded("default_port", default_port_body);
}

fn default_port_body() -> Result<(), Box<dyn std::error::Error>> {
    let mut state = run(Extra::None);
    ok_state_top(&mut state, "server started");
    ok_state_top(&mut state, "client started");
    ok_state_top(&mut state, "client connected to server");
    ok_state_top(&mut state, "client connected");
    common_tail(&mut state);
    Ok(())
}

#[test]
fn port_zero() {
    bounded("port_zero", port_zero_body);
}

fn port_zero_body() -> Result<(), Box<dyn std::error::Error>> {
    let mut state = run(Extra::Port0);
    ok_state_top(&mut state, "server started");
    ok_state_top(&mut state, "client started");
    ok_state_top(&mut state, "client connected to server");
    ok_state_top(&mut state, "client connected");
    common_tail(&mut state);
    Ok(())
}

#[test]
fn client_and_listener_args() {
    bounded("client_and_listener_args", client_and_listener_args_body);
}

fn client_and_listener_args_body() -> Result<(), Box<dyn std::error::Error>> {
    let mut state = run(Extra::Args);
    ok_state_top(&mut state, "server started: ARRAY HASH SCALAR none");
    ok_state_top(&mut state, "client started");
    ok_state_top(
        &mut state,
        "client connected to server: none SCALAR HASH ARRAY",
    );
    ok_state_top(&mut state, "client connected");
    common_tail(&mut state);
    Ok(())
}

#[test]
fn inline_object_and_package_states() {
    bounded(
        "inline_object_and_package_states",
        inline_object_and_package_states_body,
    );
}

fn inline_object_and_package_states_body() -> Result<(), Box<dyn std::error::Error>> {
    let mut state = run(Extra::States);
    ok_state_top(&mut state, "server started");
    ok_state_top(&mut state, "client started");
    ok_state_top(&mut state, "client connected to server");
    ok_state_top(&mut state, "client connected");
    ok_state_top(
        &mut state,
        "InlineStates test: from server_client_connected",
    );
    ok_state_top(
        &mut state,
        "ObjectStates test: from server_client_connected",
    );
    ok_state_top(
        &mut state,
        "PackageStates test: from server_client_connected",
    );
    common_tail(&mut state);
    Ok(())
}
