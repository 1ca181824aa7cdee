//! Session detaching. Ports:
//! - poe-test-loops `lib/POE/Test/Loops/k_detach.pm` (`detach_myself` / `detach_child`
//!   traces and the final teardown),
//! - POE `t/10_units/03_base/17_detach_start.t` (`detach_myself` inside `_start`),
//! - POE `t/90_regression/neyuki_detach.t` (parent's `_child lose` before child's `_parent`).

use reactor::{Ctx, HandlerError, Kernel, ManualClock, Session, SessionId, Value};
use std::cell::RefCell;
use std::rc::Rc;

/// A list shared between handlers and the test body.
type Shared<T> = Rc<RefCell<Vec<T>>>;
type Trace = Shared<String>;

fn manual_kernel() -> Kernel {
    Kernel::builder().clock(ManualClock::new()).build().unwrap()
}

// ------------------------------------------------------------------ k_detach.pm

/// The alias a session reports through its `get_alias` event; POE's test maps a
/// `POE::Kernel` parent to "kernel".
fn alias_of<H: 'static>(ctx: &mut Ctx<'_, H>, id: SessionId) -> String {
    if id.is_kernel() {
        return "kernel".to_owned();
    }
    ctx.call(id, "get_alias", ())
        .ok()
        .and_then(|v| v.take::<String>().ok())
        .unwrap_or_else(|| "?".to_owned())
}

/// The handlers every session of the k_detach tree shares: `_parent`, `_child`,
/// `get_alias`, `detach_self`, `detach_child`.
fn tree_node(name: &str, trace: &Trace) -> Session<()> {
    let t_parent = trace.clone();
    let t_child = trace.clone();
    let n_parent = name.to_owned();
    let n_child = name.to_owned();
    let n_alias = name.to_owned();
    Session::new(())
        .on("_parent", move |ctx| -> Result<(), HandlerError> {
            let old = *ctx.arg::<SessionId>(0)?;
            let new = *ctx.arg::<SessionId>(1)?;
            let old_alias = alias_of(ctx, old);
            let new_alias = alias_of(ctx, new);
            t_parent
                .borrow_mut()
                .push(format!("p {n_parent} {old_alias} {new_alias}"));
            Ok(())
        })
        .on("_child", move |ctx| -> Result<(), HandlerError> {
            let op = ctx.arg::<String>(0)?.clone();
            let child = *ctx.arg::<SessionId>(1)?;
            let child_alias = alias_of(ctx, child);
            t_child
                .borrow_mut()
                .push(format!("c {n_child} {op} {child_alias}"));
            Ok(())
        })
        .on("get_alias", move |_ctx| Value::new(n_alias.clone()))
        .on("detach_self", |ctx| ctx.detach_myself())
        .on("detach_child", |ctx| -> Result<(), HandlerError> {
            let child = ctx.arg::<String>(0)?.clone();
            ctx.detach_child(child)?;
            Ok(())
        })
        .on("_stop", |_ctx| {})
}

fn spawn_grandchild(k: &mut Kernel, alias: String, trace: &Trace) {
    k.create(tree_node(&alias, trace).on("_start", move |ctx| {
        ctx.alias_set(&alias).unwrap();
    }))
    .unwrap();
}

fn spawn_child(k: &mut Kernel, child_id: u32, trace: &Trace) {
    let alias = format!("a{child_id}");
    let t = trace.clone();
    let a = alias.clone();
    k.create(
        tree_node(&child_id.to_string(), trace)
            .on("_start", move |ctx| -> Result<(), HandlerError> {
                ctx.alias_set(&alias)?;
                ctx.yield_("spawn_grandchildren", ())?;
                Ok(())
            })
            .on("spawn_grandchildren", move |ctx| {
                for n in 1..=3 {
                    spawn_grandchild(ctx, format!("{a}_{n}"), &t);
                }
            }),
    )
    .unwrap();
}

fn render(entries: &[String]) -> String {
    entries.iter().map(|e| format!("({e})")).collect()
}

#[test]
fn detach_myself_and_detach_child_traces() {
    let trace: Trace = Rc::default();
    let results: Rc<RefCell<Vec<(String, &'static str)>>> = Rc::default();
    let mut k = manual_kernel();

    let t_spawn = trace.clone();
    let t_tests = trace.clone();
    let res = results.clone();
    k.create(
        tree_node("main", &trace)
            .on("_start", |ctx| -> Result<(), HandlerError> {
                ctx.alias_set("main")?;
                ctx.yield_("spawn_children", ())?;
                Ok(())
            })
            .on("spawn_children", move |ctx| -> Result<(), HandlerError> {
                for n in 1..=3 {
                    spawn_child(ctx, n, &t_spawn);
                }
                ctx.delay("run_tests", 0.5, ())?;
                Ok(())
            })
            .on("run_tests", move |ctx| -> Result<(), HandlerError> {
                let steps: [(&str, &str, Option<&str>, &'static str); 8] = [
                    ("a1_1", "detach_self", None, "a1_1 detached itself"),
                    ("a2_1", "detach_self", None, "a2_1 detached itself"),
                    ("a3_1", "detach_self", None, "a3_1 detached itself"),
                    ("a1", "detach_child", Some("a1_2"), "a1 detached child a1_2"),
                    ("a2", "detach_child", Some("a2_2"), "a2 detached child a2_2"),
                    ("a3", "detach_child", Some("a3_2"), "a3 detached child a3_2"),
                    ("a1", "detach_self", None, "a1 detached itself"),
                    ("main", "detach_child", Some("a2"), "a2 detached itself"),
                ];
                for (dest, ev, arg, label) in steps {
                    t_tests.borrow_mut().clear();
                    match arg {
                        Some(a) => ctx.call(dest, ev, (a.to_owned(),))?,
                        None => ctx.call(dest, ev, ())?,
                    };
                    res.borrow_mut().push((render(&t_tests.borrow()), label));
                }
                Ok(())
            }),
    )
    .unwrap();

    k.run().expect("run ends without an exception");

    let got = results.borrow();
    let want = [
        "(c 1 lose a1_1)(p a1_1 1 kernel)",
        "(c 2 lose a2_1)(p a2_1 2 kernel)",
        "(c 3 lose a3_1)(p a3_1 3 kernel)",
        "(c 1 lose a1_2)(p a1_2 1 kernel)",
        "(c 2 lose a2_2)(p a2_2 2 kernel)",
        "(c 3 lose a3_2)(p a3_2 3 kernel)",
        "(c main lose 1)(p 1 main kernel)",
        "(c main lose 2)(p 2 main kernel)",
    ];
    assert_eq!(got.len(), want.len(), "every detach step ran: {got:?}");
    for ((trace, label), want) in got.iter().zip(want) {
        assert_eq!(trace, want, "{label}");
    }

    // The remaining sessions are reaped at IDLE; upstream sorts the trace because the
    // teardown order may vary.
    let mut rest = trace.borrow().clone();
    rest.sort();
    assert_eq!(
        render(&rest),
        concat!(
            "(c 1 lose a1_3)",
            "(c 2 lose a2_3)",
            "(c 3 lose a3_3)",
            "(c main lose 2)",
            "(c main lose 3)",
            "(p 2 main kernel)"
        ),
        "session destruction order"
    );
    assert_eq!(k.session_count(), 0);
}

// ------------------------------------------------------------------ 17_detach_start.t

#[test]
fn detach_myself_in_start() {
    // (label, sequence number) in the order the checks ran.
    let log: Rc<RefCell<Vec<(String, u32)>>> = Rc::default();
    let seq = Rc::new(RefCell::new(0u32));
    let child_fired = Rc::new(RefCell::new(0u32));
    let mut k = Kernel::new().unwrap();

    let next = {
        let seq = seq.clone();
        let log = log.clone();
        move |label: &str| {
            let mut s = seq.borrow_mut();
            *s += 1;
            log.borrow_mut().push((label.to_owned(), *s));
        }
    };

    let n_start = next.clone();
    let n_child = next.clone();
    let n_stop = next.clone();
    let fired = child_fired.clone();
    let child_aliases: Shared<(String, Vec<String>)> = Rc::default();
    let ca = child_aliases.clone();
    let parent_of_detached: Rc<RefCell<Vec<SessionId>>> = Rc::default();
    let pod = parent_of_detached.clone();
    k.create(
        Session::new(())
            .on("_start", move |ctx| -> Result<(), HandlerError> {
                ctx.alias_set("Parent")?;
                n_start("_start Parent");
                let n2 = n_start.clone();
                let n6 = n_start.clone();
                ctx.create(
                    Session::new(())
                        .on("_start", move |ctx| -> Result<(), HandlerError> {
                            ctx.alias_set("Child")?;
                            n2("_start Child");
                            Ok(())
                        })
                        .on("_stop", move |_ctx| n6("_stop Child")),
                )?;
                let n4 = n_start.clone();
                let n5 = n_start.clone();
                let n8 = n_start.clone();
                let pod = pod.clone();
                ctx.create(
                    Session::new(())
                        .on("_start", move |ctx| -> Result<(), HandlerError> {
                            ctx.alias_set("Detached")?;
                            n4("_start Detached");
                            ctx.detach_myself()?;
                            Ok(())
                        })
                        .on("_parent", move |ctx| -> Result<(), HandlerError> {
                            n5("_parent Detached");
                            pod.borrow_mut().push(*ctx.arg::<SessionId>(1)?);
                            Ok(())
                        })
                        .on("_stop", move |_ctx| n8("_stop Detached")),
                )?;
                Ok(())
            })
            .on("_child", move |ctx| -> Result<(), HandlerError> {
                n_child("_child Parent");
                *fired.borrow_mut() += 1;
                let op = ctx.arg::<String>(0)?.clone();
                let child = *ctx.arg::<SessionId>(1)?;
                let aliases = ctx.alias_list(child)?;
                ca.borrow_mut().push((op, aliases));
                Ok(())
            })
            .on("_stop", move |_ctx| n_stop("_stop Parent")),
    )
    .unwrap();

    k.run().expect("run ends without an exception");

    let log = log.borrow();
    let fixed: Vec<(&str, u32)> = log.iter().take(7).map(|(l, s)| (l.as_str(), *s)).collect();
    assert_eq!(
        fixed,
        vec![
            ("_start Parent", 1),
            ("_start Child", 2),
            ("_child Parent", 3),
            ("_start Detached", 4),
            ("_parent Detached", 5),
            ("_stop Child", 6),
            ("_child Parent", 7),
        ]
    );
    // _stop Detached and _stop Parent are 8 and 9, in either order.
    let mut last: Vec<(&str, u32)> = log.iter().skip(7).map(|(l, s)| (l.as_str(), *s)).collect();
    last.sort_by_key(|&(l, _)| l);
    assert_eq!(last.len(), 2, "{log:?}");
    assert!(matches!(last[0], ("_stop Detached", 8 | 9)), "{last:?}");
    assert!(matches!(last[1], ("_stop Parent", 8 | 9)), "{last:?}");
    assert_ne!(last[0].1, last[1].1);

    assert_eq!(
        *parent_of_detached.borrow(),
        vec![reactor::KERNEL],
        "child parent is the kernel"
    );
    // _child fired twice (create and lose of Child), never for the session that detached
    // itself in _start.
    assert_eq!(*child_fired.borrow(), 2, "_child not fired for Detached");
    assert_eq!(
        *child_aliases.borrow(),
        vec![
            ("create".to_owned(), vec!["Child".to_owned()]),
            ("lose".to_owned(), vec!["Child".to_owned()]),
        ]
    );
}

// ------------------------------------------------------------------ neyuki_detach.t

#[test]
fn detach_later_loses_before_parent() {
    let log: Trace = Rc::default();
    let failures: Trace = Rc::default();
    let mut k = Kernel::new().unwrap();

    let l = log.clone();
    let f = failures.clone();
    let parent_new: Rc<RefCell<Vec<SessionId>>> = Rc::default();
    let pn = parent_new.clone();
    let l_child = log.clone();
    let f_parent = failures.clone();
    let f_child = failures.clone();
    k.create(
        Session::new(())
            .on("_start", {
                let l = log.clone();
                move |ctx| -> Result<(), HandlerError> {
                    l.borrow_mut().push("starting parent".into());
                    ctx.yield_("parent", ())?;
                    Ok(())
                }
            })
            .on("_stop", |_ctx| {})
            .on("_parent", move |_ctx| {
                f_parent
                    .borrow_mut()
                    .push("parent received unexpected _parent".into())
            })
            .on("_child", move |ctx| -> Result<(), HandlerError> {
                let op = ctx.arg::<String>(0)?.clone();
                match op.as_str() {
                    "create" => l_child.borrow_mut().push("parent _child create".into()),
                    "lose" => l_child.borrow_mut().push("parent _child lose".into()),
                    _ => f_child
                        .borrow_mut()
                        .push(format!("parent received unexpected _child {op}")),
                }
                Ok(())
            })
            .on("done", |_ctx| {})
            .on("parent", move |ctx| -> Result<(), HandlerError> {
                l.borrow_mut().push("parent spawning child".into());
                let l3 = l.clone();
                let l5 = l.clone();
                let l7 = l.clone();
                let f1 = f.clone();
                let pn = pn.clone();
                ctx.create(
                    Session::new(())
                        .on("_start", move |ctx| -> Result<(), HandlerError> {
                            l3.borrow_mut().push("child started".into());
                            ctx.yield_("child", ())?;
                            Ok(())
                        })
                        .on("_stop", |_ctx| {})
                        .on("_parent", move |ctx| -> Result<(), HandlerError> {
                            l7.borrow_mut().push("child _parent".into());
                            pn.borrow_mut().push(*ctx.arg::<SessionId>(1)?);
                            Ok(())
                        })
                        .on("_child", move |_ctx| {
                            f1.borrow_mut()
                                .push("child received unexpected _child".into())
                        })
                        .on("child", move |ctx| -> Result<(), HandlerError> {
                            l5.borrow_mut().push("child detached itself".into());
                            ctx.detach_myself()?;
                            ctx.yield_("done", ())?;
                            Ok(())
                        })
                        .on("done", |_ctx| {}),
                )?;
                ctx.yield_("done", ())?;
                Ok(())
            }),
    )
    .unwrap();

    k.run().expect("run ends without an exception");

    assert_eq!(
        *log.borrow(),
        vec![
            "starting parent",
            "parent spawning child",
            "child started",
            "parent _child create",
            "child detached itself",
            "parent _child lose",
            "child _parent",
        ]
    );
    assert_eq!(
        *parent_new.borrow(),
        vec![reactor::KERNEL],
        "child parent is the kernel"
    );
    assert!(failures.borrow().is_empty(), "{:?}", failures.borrow());
}
