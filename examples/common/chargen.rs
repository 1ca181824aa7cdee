//! What the ports of POE's `watermarks.perl` and `tcp_watermarks.perl` share, as the Perl
//! programs do: the command line, the chargen line (RFC 864), and the `Chargen::Connection`
//! session that feeds a client until its wheel's high mark, and resumes at the low mark.
//! Included by both examples with `#[path]`.

use reactor::filter::Line;
use reactor::wheel::WheelError;
use reactor::wheel::{ReadWrite, RwEvent, WheelHandle, WheelId};
use reactor::{Ctx, HandlerError, Kernel, Session};

/// What the handlers return.
pub type R = Result<(), HandlerError>;

/// The value of `--port`, 32100 (the Perl program's `$chargen_port`) without it.
pub fn port_arg(usage: &str) -> u16 {
    use crate::cli::{Long, Short};
    crate::cli::parse(usage, |p| {
        let mut port = 32100;
        while let Some(arg) = p.next()? {
            match arg {
                Long("port") => port = crate::cli::value(p, "--port")?,
                Short('h') | Long("help") => crate::cli::help(usage),
                _ => return Err(arg.unexpected()),
            }
        }
        Ok(port)
    })
}

/// The chargen line starting at character `start` (32..=126): 72 printable characters,
/// wrapping from `~` back to space (Perl's `tr[\x7F-\xDD][\x20-\x7E]`).
pub fn chargen_line(start: u8) -> Vec<u8> {
    (u16::from(start)..u16::from(start) + 72)
        .map(|c| if c > 126 { (c - 95) as u8 } else { c as u8 })
        .collect()
}

/// `Chargen::Connection`: a session per client.
pub mod connection {
    use super::*;

    /// Its heap.
    pub struct Heap {
        /// The wheel's high-water mark (the low one is 128).
        high_mark: usize,
        /// `$heap->{wheel}`.
        wheel: Option<WheelHandle>,
        /// `$heap->{okay_to_send}`.
        okay_to_send: bool,
        /// `$heap->{start_character}`.
        start_character: u8,
    }

    /// `Chargen::Connection->new($socket)`, with the wheel's `HighMark`.
    pub fn new(
        kernel: &mut Kernel,
        socket: mio::net::TcpStream,
        high_mark: usize,
    ) -> reactor::Result<()> {
        let heap = Heap {
            high_mark,
            wheel: None,
            okay_to_send: false,
            start_character: 32,
        };
        kernel.create(
            Session::new(heap)
                .on("_start", start)
                .on("wheel_got_input", got_input)
                .on("wheel_got_error", got_error)
                .on("wheel_throttle", throttle)
                .on("wheel_resume", resume)
                .on("write_chunk", write_chunk)
                .args((socket,)),
        )?;
        Ok(())
    }

    fn start(ctx: &mut Ctx<'_, Heap>) -> R {
        let socket = ctx.take_arg::<mio::net::TcpStream>(0)?;
        let high_mark = ctx.heap().high_mark;
        let wheel = ReadWrite::builder(socket)
            .filter(Line::new())
            .input_event("wheel_got_input")
            .error_event("wheel_got_error")
            .watermarks(high_mark, 128)
            .event(RwEvent::High, "wheel_throttle")
            .event(RwEvent::Low, "wheel_resume")
            .build(ctx)?;
        let heap = ctx.heap();
        heap.wheel = Some(wheel);
        heap.okay_to_send = true;
        heap.start_character = 32;
        ctx.yield_("write_chunk", ())?;
        Ok(())
    }

    fn got_input(ctx: &mut Ctx<'_, Heap>) {
        eprintln!("Chargen session {} is ignoring some input.", ctx.session());
    }

    fn got_error(ctx: &mut Ctx<'_, Heap>) -> R {
        let op = ctx.arg::<WheelError>(0)?.operation;
        let errnum = ctx.arg::<WheelError>(0)?.errno;
        let errstr = ctx.arg::<WheelError>(0)?.message.clone();
        eprintln!(
            "Chargen session {} encountered {op} error {errnum}: {errstr}",
            ctx.session()
        );
        let heap = ctx.heap();
        heap.okay_to_send = false;
        heap.wheel = None;
        Ok(())
    }

    /// Writes lines until the wheel's buffer reaches the high mark.
    fn write_chunk(ctx: &mut Ctx<'_, Heap>) -> R {
        if !ctx.heap().okay_to_send {
            return Ok(());
        }
        let Some(id) = ctx.heap().wheel.as_ref().map(WheelHandle::id) else {
            return Ok(());
        };
        loop {
            let heap = ctx.heap();
            let line = chargen_line(heap.start_character);
            heap.start_character += 1;
            if heap.start_character > 126 {
                heap.start_character = 32;
            }
            let full = wheel(ctx, id)?.put_one(line)?;
            if full {
                break;
            }
        }
        eprintln!("Chargen session {} writes are paused.", ctx.session());
        Ok(())
    }

    fn wheel<'a>(
        ctx: &'a mut Ctx<'_, Heap>,
        id: WheelId,
    ) -> Result<&'a mut ReadWrite, HandlerError> {
        ctx.wheel_mut::<ReadWrite>(id)
            .ok_or_else(|| "the wheel is gone".into())
    }

    fn throttle(ctx: &mut Ctx<'_, Heap>) {
        eprintln!("Chargen session {} is throttled.", ctx.session());
        ctx.heap().okay_to_send = false;
    }

    fn resume(ctx: &mut Ctx<'_, Heap>) -> R {
        if ctx.heap().wheel.is_some() {
            eprintln!("Chargen session {} is resuming.", ctx.session());
            ctx.heap().okay_to_send = true;
            ctx.yield_("write_chunk", ())?;
        }
        Ok(())
    }
}
