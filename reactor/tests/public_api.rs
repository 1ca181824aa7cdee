//! What a new user meets first: every public type prints with `{:?}`, every error type is
//! a standard error that crosses threads, one argument needs no one-tuple, an event that no
//! handler takes is logged, and an unhandled failure says where it happened.

use reactor::component::{ClientTcp, ComponentError, ServerTcp};
use reactor::filter::{ConfigError, FilterError, Line};
use reactor::nfa::NfaError;
use reactor::wheel::{QueueFull, ReadWrite, SocketFactory, WheelError};
use reactor::{ArgError, Ctx, Error, HandlerError, Kernel, Session};
use std::fmt::Debug;
use std::net::TcpListener;
use std::sync::{Mutex, OnceLock};

fn is_error<E: std::error::Error + Send + Sync + 'static>() {}
fn is_debug<T: Debug + ?Sized>() {}

#[test]
fn every_error_type_is_a_standard_error_that_crosses_threads() {
    is_error::<Error>();
    is_error::<ArgError>();
    is_error::<ComponentError>();
    is_error::<ConfigError>();
    is_error::<FilterError>();
    is_error::<NfaError>();
    is_error::<QueueFull>();
    is_error::<WheelError>();
    // The catch-all of handlers converts like `anyhow::Error` (it cannot be an `Error`
    // itself and still take every error with `?`), and keeps its source.
    let e = HandlerError::from(std::io::Error::other("boom"));
    let boxed: Box<dyn std::error::Error> = e.clone().into();
    assert_eq!(boxed.to_string(), "boom");
    let sendable = e.into_boxed_error();
    let source = sendable.source().expect("the io::Error");
    assert!(source.downcast_ref::<std::io::Error>().is_some());
}

#[test]
fn the_types_people_start_from_print_with_debug() {
    is_debug::<Kernel>();
    is_debug::<reactor::KernelBuilder>();
    is_debug::<Session<u32>>();
    is_debug::<Ctx<'static, u32>>();
    is_debug::<reactor::component::ServerTcpBuilder>();
    is_debug::<reactor::component::ClientTcpBuilder>();
    is_debug::<reactor::component::ServerHandle>();
    is_debug::<ReadWrite>();
    is_debug::<reactor::wheel::ReadWriteBuilder>();
    is_debug::<SocketFactory>();
    is_debug::<reactor::wheel::SocketFactoryBuilder>();
    is_debug::<reactor::wheel::ListenAccept>();
    is_debug::<reactor::wheel::FollowTail>();
    is_debug::<reactor::wheel::FollowTailBuilder>();
    is_debug::<reactor::wheel::UdpBuilder>();
    is_debug::<reactor::nfa::NfaCtx<'static, u32>>();
    is_debug::<Line>();
    let builder = ServerTcp::builder().address("127.0.0.1").port(0);
    assert!(format!("{builder:?}").contains("127.0.0.1"));
    let client = ClientTcp::builder("127.0.0.1", 1);
    assert!(format!("{client:?}").starts_with("ClientTcpBuilder"));
}

/// `yield_("n", 5u32)` is `yield_("n", (5u32,))`.
#[test]
fn a_single_argument_needs_no_tuple() {
    let mut kernel = Kernel::new().unwrap();
    kernel
        .create(
            Session::new(Vec::<String>::new())
                .on("_start", |ctx: &mut Ctx<'_, Vec<String>>| {
                    ctx.yield_("n", 5u32)?;
                    ctx.yield_("s", String::from("text"))?;
                    ctx.yield_("v", vec![1u8, 2])
                })
                .on("n", |ctx: &mut Ctx<'_, Vec<String>>| -> Result<(), Error> {
                    let n = *ctx.arg::<u32>(0)?;
                    ctx.heap().push(format!("n={n}"));
                    Ok(())
                })
                .on("s", |ctx: &mut Ctx<'_, Vec<String>>| -> Result<(), Error> {
                    let s: String = ctx.take_arg(0)?;
                    ctx.heap().push(format!("s={s}"));
                    Ok(())
                })
                .on("v", |ctx: &mut Ctx<'_, Vec<String>>| -> Result<(), Error> {
                    let v: Vec<u8> = ctx.take_arg(0)?;
                    let seen = format!("v={v:?}");
                    ctx.heap().push(seen);
                    let all = ctx.heap().join(" ");
                    assert_eq!(all, "n=5 s=text v=[1, 2]");
                    Ok(())
                }),
        )
        .unwrap();
    kernel.run().unwrap();
}

/// Records every log line, for the tests that look at warnings.
struct Recorder(Mutex<Vec<String>>);

impl log::Log for Recorder {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        if let Ok(mut lines) = self.0.lock() {
            lines.push(format!("{} {}", record.level(), record.args()));
        }
    }
    fn flush(&self) {}
}

fn recorder() -> &'static Recorder {
    static RECORDER: OnceLock<&'static Recorder> = OnceLock::new();
    RECORDER.get_or_init(|| {
        let r: &'static Recorder = Box::leak(Box::new(Recorder(Mutex::new(Vec::new()))));
        // Only this file installs a logger in this test program.
        let _ = log::set_logger(r);
        log::set_max_level(log::LevelFilter::Warn);
        r
    })
}

fn logged(needle: &str) -> Vec<String> {
    recorder()
        .0
        .lock()
        .map(|lines| {
            lines
                .iter()
                .filter(|l| l.contains(needle))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// A misspelt event is found in seconds: the kernel warns, naming the session and the
/// event. `_default` still takes such events quietly, as in POE, and the kernel's own
/// `_`-events (`_child`, `_parent`) are not reported.
#[test]
fn an_event_nobody_handles_is_logged_at_warn() {
    recorder();
    let mut kernel = Kernel::new().unwrap();
    let typo = kernel
        .create(Session::new(()).on("_start", |ctx: &mut Ctx<'_, ()>| {
            ctx.yield_("tikc_typo_one", ())?;
            let me = ctx.session();
            ctx.post(me, "tikc_typo_two", 1u8)
        }))
        .unwrap();
    kernel
        .create(
            Session::new(())
                .on("_start", |ctx: &mut Ctx<'_, ()>| {
                    ctx.yield_("to_default_quietly", ())
                })
                .on("_default", |_: &mut Ctx<'_, ()>| {}),
        )
        .unwrap();
    kernel.run().unwrap();
    for event in ["tikc_typo_one", "tikc_typo_two"] {
        let lines = logged(event);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].starts_with("WARN"), "{lines:?}");
        assert!(lines[0].contains(&format!("session {typo} ")), "{lines:?}");
    }
    assert!(logged("to_default_quietly").is_empty());

    // Off, the kernel is as quiet as POE.
    let mut kernel = Kernel::builder().warn_unhandled(false).build().unwrap();
    kernel
        .create(Session::new(()).on("_start", |ctx: &mut Ctx<'_, ()>| {
            ctx.yield_("unheard_when_off", ())
        }))
        .unwrap();
    kernel.run().unwrap();
    assert!(logged("unheard_when_off").is_empty());
}

/// `run()`'s error says which session failed in which event, and keeps POE's `$@` as the
/// message.
#[test]
fn an_unhandled_failure_names_the_session_and_the_event() {
    let mut kernel = Kernel::new().unwrap();
    let id = kernel
        .create(
            Session::new(())
                .on("_start", |ctx: &mut Ctx<'_, ()>| ctx.yield_("work", ()))
                .on("work", |_: &mut Ctx<'_, ()>| -> Result<(), HandlerError> {
                    Err(std::io::Error::other("disk on fire").into())
                }),
        )
        .unwrap();
    let err = kernel.run().unwrap_err();
    let Error::Exception(e) = &err else {
        panic!("not an exception: {err:?}")
    };
    assert_eq!(e.message(), "disk on fire");
    assert_eq!(e.session(), Some(id));
    assert_eq!(e.event().as_deref(), Some("work"));
    assert_eq!(
        err.to_string(),
        format!("unhandled failure in session {id}, event 'work': disk on fire")
    );
    let source = std::error::Error::source(&err).expect("the io::Error");
    assert!(source.downcast_ref::<std::io::Error>().is_some());
}

/// A `ServerTcp` listens on a real socket and reports its address; what the README's
/// line server does, without running forever.
#[test]
fn a_server_reports_where_it_listens() {
    let mut kernel = Kernel::new().unwrap();
    let server = ServerTcp::builder()
        .address("127.0.0.1")
        .port(0)
        .alias("server")
        .client_input(|_: &mut Ctx<'_, reactor::component::ConnHeap>| {})
        .build(&mut kernel)
        .unwrap();
    let addr = server.local_addr().expect("bound");
    assert!(TcpListener::bind(addr).is_err(), "the port is taken");
    kernel
        .create(Session::new(()).on("_start", |ctx: &mut Ctx<'_, ()>| {
            ctx.post("server", "shutdown", ())
        }))
        .unwrap();
    kernel.run().unwrap();
}
