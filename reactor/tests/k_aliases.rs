//! Port of poe-test-loops `lib/POE/Test/Loops/k_aliases.pm`: session aliases, designator
//! resolution, ID <-> session lookups (including the kernel's), and the IDLE/ZOMBIE signals
//! that reach a session kept alive only by its aliases.

use reactor::{Error, Kernel, Session, KERNEL};
use std::cell::RefCell;
use std::rc::Rc;

type Trace = Rc<RefCell<Vec<String>>>;

#[derive(Default)]
struct Counts {
    idle: u32,
    zombie: u32,
}

#[test]
fn aliases_resolution_and_idle_zombie() {
    let trace: Trace = Rc::default();
    let stops: Rc<RefCell<Vec<(u32, u32)>>> = Rc::default();
    let started = Rc::new(RefCell::new(false));
    let mut k = Kernel::new().unwrap();

    let t = trace.clone();
    let st = started.clone();
    let t_idle = trace.clone();
    let t_zombie = trace.clone();
    let t_stop = trace.clone();
    let s_stop = stops.clone();
    let first = k
        .create(
            Session::new(Counts::default())
                .on("_start", move |ctx| {
                    let me = ctx.session();
                    ctx.sig("IDLE", "sigidle", ()).unwrap();
                    ctx.sig("ZOMBIE", "sigzombie", ()).unwrap();
                    *ctx.heap() = Counts::default();

                    assert!(ctx.alias_set("new name").is_ok(), "setting new alias");
                    assert!(ctx.alias_set("new name").is_ok(), "overwriting new alias");

                    // POE resolves the stringified session reference; the closest designator
                    // here is the ID as a string.
                    assert_eq!(
                        ctx.alias_resolve(me.to_string()).unwrap(),
                        me,
                        "resolve stringified session"
                    );
                    assert_eq!(
                        ctx.alias_resolve(me.get().to_string().as_str()).unwrap(),
                        me,
                        "resolve session ID"
                    );
                    assert_eq!(ctx.alias_resolve("new name").unwrap(), me, "resolve alias");
                    assert_eq!(
                        ctx.alias_resolve(me).unwrap(),
                        me,
                        "resolve session reference"
                    );
                    let missing = ctx.alias_resolve("nonexistent");
                    assert!(
                        matches!(missing, Err(Error::NoSuchSession)),
                        "fail to resolve nonexistent alias: {missing:?}"
                    );
                    assert_eq!(missing.unwrap_err().errno(), 3, "ESRCH");

                    let id = me.get();
                    assert_eq!(ctx.id_to_session(id).unwrap(), me, "id resolves to session");
                    assert_eq!(ctx.session_to_id(me).unwrap(), id, "session resolves to id");
                    assert_eq!(
                        ctx.id_to_session(KERNEL.get()).unwrap(),
                        KERNEL,
                        "kernel id resolves to kernel reference"
                    );
                    assert_eq!(
                        ctx.session_to_id(KERNEL).unwrap(),
                        KERNEL.get(),
                        "kernel reference resolves to kernel id"
                    );

                    // alias_list() with no argument: the active session's aliases.
                    let aliases = ctx.my_aliases();
                    assert_eq!(aliases.len(), 1, "session has only one alias");
                    assert_eq!(aliases[0], "new name", "session's alias is 'new name'");

                    ctx.alias_set("second name").unwrap();
                    let mut aliases = ctx.alias_list(me).unwrap();
                    aliases.sort();
                    assert_eq!(aliases.len(), 2, "session now has two aliases");
                    assert_eq!(aliases[0], "new name", "session has 'new name' alias");
                    assert_eq!(aliases[1], "second name", "session has 'second name' alias");

                    t.borrow_mut().push("1 _start".into());
                    *st.borrow_mut() = true;
                })
                .on("sigidle", move |ctx| {
                    ctx.heap().idle += 1;
                    t_idle.borrow_mut().push("1 IDLE".into());
                    ctx.sig_handled();
                })
                .on("sigzombie", move |ctx| {
                    ctx.heap().zombie += 1;
                    t_zombie.borrow_mut().push("1 ZOMBIE".into());
                    ctx.sig_handled();
                })
                .on("_stop", move |ctx| {
                    let c = ctx.heap();
                    s_stop.borrow_mut().push((c.idle, c.zombie));
                    t_stop.borrow_mut().push("1 _stop".into());
                }),
        )
        .unwrap();

    let t = trace.clone();
    let t_idle = trace.clone();
    let t_zombie = trace.clone();
    let t_stop = trace.clone();
    let second = k
        .create(
            Session::new(())
                .on("_start", move |ctx| {
                    ctx.alias_set("a_sample_alias").unwrap();
                    let r = ctx.alias_remove("a_sample_alias");
                    assert!(r.is_ok(), "removing simple alias: {r:?}");
                    ctx.sig("IDLE", "sigidle", ()).unwrap();
                    ctx.sig("ZOMBIE", "sigzombie", ()).unwrap();
                    t.borrow_mut().push("2 _start".into());
                })
                .on("sigidle", move |_ctx| {
                    t_idle.borrow_mut().push("2 IDLE".into())
                })
                .on("sigzombie", move |_ctx| {
                    t_zombie.borrow_mut().push("2 ZOMBIE".into())
                })
                .on("_stop", move |_ctx| {
                    t_stop.borrow_mut().push("2 _stop".into())
                }),
        )
        .unwrap();
    assert_ne!(first, second);
    assert!(k.alias_resolve("a_sample_alias").is_err());
    assert_eq!(k.alias_resolve("new name").unwrap(), first);

    k.run().expect("run ends without an exception");

    assert!(*started.borrow(), "first _start ran to the end");
    assert_eq!(
        *stops.borrow(),
        vec![(1, 1)],
        "session received one SIGIDLE and one SIGZOMBIE"
    );
    // The session that removed its alias has nothing keeping it alive: it is reaped right
    // after _start and never sees IDLE or ZOMBIE (as under POE 1.370).
    assert_eq!(
        *trace.borrow(),
        vec!["1 _start", "2 _start", "2 _stop", "1 IDLE", "1 ZOMBIE", "1 _stop"]
    );
    assert_eq!(k.session_count(), 0);
    assert!(k.id_to_session(first.get()).is_err());
    assert!(k.alias_resolve("new name").is_err());
}
