//! Port of poe-test-loops `wheel_run_size.pm`: `Winsize` sets the size of a pty child's
//! terminal: rows, columns and pixels, as the child reads them from its stdin.
//!
//! Upstream's child is a Perl one-liner using Term::Size; here it is an entry of this
//! program (see `child_main`) that asks the terminal with `TIOCGWINSZ`. Upstream also
//! relays the terminal's stdin to the child, which plays no part in the assertions; that
//! is left out. The child's exit (`sig(CHLD)`) ends the test, as upstream.

mod common;

use reactor::filter::Line;
use reactor::wheel::{child_main, Conduit, Run};
use reactor::{Ctx, HandlerError, Kernel, Session, WheelHandle};
use std::cell::RefCell;
use std::rc::Rc;

const WINSIZE: [u16; 4] = [85, 29, 100, 200];

fn report_size(_: &[String]) -> i32 {
    match rustix::termios::tcgetwinsize(std::io::stdin()) {
        Ok(w) => {
            println!(
                "rows: {}, cols: {}, xpix: {}, ypix: {}",
                w.ws_row, w.ws_col, w.ws_xpixel, w.ws_ypixel
            );
            0
        }
        Err(e) => {
            println!("no size: {e}");
            1
        }
    }
}

fn main() {
    child_main(&[("report_size", report_size)]);
    let _watchdog = common::timeout(20, "wheel_run_size");
    let seen: Rc<RefCell<Vec<[u16; 4]>>> = Rc::default();
    let s = Rc::clone(&seen);
    let mut k = Kernel::new().unwrap();
    type H = Option<WheelHandle>;
    k.create(
        Session::new(None::<WheelHandle>)
            .on(
                "_start",
                |ctx: &mut Ctx<'_, H>| -> Result<(), HandlerError> {
                    ctx.sig("CHLD", "got_sigchld", ())?;
                    let [rows, cols, x, y] = WINSIZE;
                    let w = Run::code("report_size")
                        .conduit(Conduit::Pty)
                        .winsize(rows, cols, x, y)
                        .stdout_event("got_child_stdout")
                        .stdio_filter(Line::new())
                        .build(ctx)?;
                    *ctx.heap() = Some(w);
                    Ok(())
                },
            )
            .on(
                "got_child_stdout",
                move |ctx: &mut Ctx<'_, H>| -> Result<(), HandlerError> {
                    let line = String::from_utf8(ctx.arg::<Vec<u8>>(0)?.clone())?;
                    let nums: Vec<u16> = line
                        .split(|c: char| !c.is_ascii_digit())
                        .filter(|t| !t.is_empty())
                        .map(str::parse)
                        .collect::<Result<_, _>>()?;
                    let got: [u16; 4] =
                        nums.try_into().map_err(|_| format!("bad line {line:?}"))?;
                    s.borrow_mut().push(got);
                    Ok(())
                },
            )
            .on(
                "got_sigchld",
                |ctx: &mut Ctx<'_, H>| -> Result<(), HandlerError> {
                    let pid = *ctx.arg::<u32>(1)?;
                    let id = ctx.heap().as_ref().map(WheelHandle::id);
                    if id
                        .and_then(|id| ctx.wheel_ref::<Run>(id))
                        .and_then(Run::pid)
                        == Some(pid)
                    {
                        *ctx.heap() = None;
                        ctx.sig_clear("CHLD")?;
                    }
                    Ok(())
                },
            ),
    )
    .unwrap();
    k.run().unwrap();
    let seen = seen.borrow();
    assert_eq!(seen.len(), 1, "one size line");
    let [rows, cols, x, y] = seen[0];
    assert_eq!(rows, WINSIZE[0], "rows set correctly");
    assert_eq!(cols, WINSIZE[1], "cols set correctly");
    assert_eq!(x, WINSIZE[2], "xpix set correctly");
    assert_eq!(y, WINSIZE[3], "ypix set correctly");
    println!("wheel_run_size: ok");
}
