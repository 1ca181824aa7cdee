//! The keep-alive crate's edges: every public type prints with `{:?}`, every error type is
//! a standard error that crosses threads, and a failed connection is an error that `?`
//! takes, with `from_cache()` an [`Origin`].

use keepalive::reactor::{Ctx, HandlerError, Kernel, Session};
use keepalive::{
    AllocateError, CallError, Connection, Error, Failure, Keepalive, KeepaliveBuilder, Origin,
    PoolKey, Request, RequestId, Response, Settings, SettingsError, Stats, Stream,
};
use std::cell::RefCell;
use std::fmt::Debug;
use std::net::TcpListener;
use std::rc::Rc;

fn is_error<E: std::error::Error + Send + Sync + 'static>() {}
fn is_debug<T: Debug + ?Sized>() {}

#[test]
fn every_error_type_is_a_standard_error_that_crosses_threads() {
    is_error::<Error>();
    is_error::<Failure>();
    is_error::<AllocateError>();
    is_error::<CallError>();
    is_error::<SettingsError>();
    let refused = Failure::refused();
    assert_eq!(
        refused.io_error().map(|e| e.kind()),
        Some(std::io::ErrorKind::ConnectionRefused)
    );
}

#[test]
fn every_public_type_prints_with_debug() {
    is_debug::<Keepalive>();
    is_debug::<KeepaliveBuilder>();
    is_debug::<Connection>();
    is_debug::<Request>();
    is_debug::<Response>();
    is_debug::<RequestId>();
    is_debug::<PoolKey>();
    is_debug::<Settings>();
    is_debug::<Stats>();
    is_debug::<Stream>();
    is_debug::<Origin>();
    assert_eq!(Origin::Immediate.to_string(), "immediate");
}

/// A refused connect arrives as a `Response` whose `connection` is an `Err(Failure)`:
/// `r.connection?` hands it to the kernel as the handler's failure, message intact.
#[test]
fn a_failed_connection_is_an_error_for_the_question_mark() {
    // A port that was just free: nothing listens there.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut kernel = Kernel::new().unwrap();
    let cm = Keepalive::builder().build(&mut kernel).unwrap();
    let seen = Rc::new(RefCell::new(Vec::<String>::new()));
    let (cm2, seen2) = (cm.clone(), Rc::clone(&seen));
    kernel
        .create(
            Session::new(())
                .on(
                    "_start",
                    move |ctx: &mut Ctx<'_, ()>| -> Result<(), Error> {
                        cm.allocate(ctx, Request::new("http", "127.0.0.1", port, "got_conn"))?;
                        Ok(())
                    },
                )
                .on(
                    "got_conn",
                    move |ctx: &mut Ctx<'_, ()>| -> Result<(), HandlerError> {
                        let r: Response = ctx.take_arg(0)?;
                        assert_eq!(r.from_cache(), None);
                        cm2.shutdown(ctx);
                        let result =
                            (|| -> Result<Connection, HandlerError> { Ok(r.connection?) })();
                        let e = result.expect_err("nothing listens");
                        seen2.borrow_mut().push(e.message().to_owned());
                        Ok(())
                    },
                ),
        )
        .unwrap();
    kernel.run().unwrap();
    let seen = seen.borrow();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].starts_with("connect error 111"), "{seen:?}");
}
