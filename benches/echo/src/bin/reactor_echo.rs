//! A line echo on our kernel, written as a POE program would be: one session with a
//! listening `SocketFactory`; each accepted socket gets a `ReadWrite` wheel with a `Line`
//! filter (newline `"\n"` both ways), and each input record is `put` back.
//!
//! Usage: `reactor_echo --port P [--block-size N] [--early-writes 1]` (0 = any port);
//! prints `listening on ADDR` first. `--block-size` is the wheel's bytes per read (POE's
//! `Driver => POE::Driver::SysRW->new(BlockSize => N)`), 65536 by default as in POE.
//! `--early-writes 1` builds the kernel with `KernelBuilder::early_writes`: answers leave
//! in the I/O phase of the read instead of after the next poll, as POE writes.

use echo_bench::{announce, raise_nofile, Opts};
use reactor::filter::Line;
use reactor::wheel::{ReadWrite, SocketFactory, WheelError};
use reactor::{Ctx, Error, HandlerError, Kernel, Session};
use reactor::{WheelHandle, WheelId};
use std::collections::HashMap;

#[derive(Default)]
struct Heap {
    listener: Option<WheelHandle>,
    clients: HashMap<WheelId, WheelHandle>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let opts = Opts::from_env()?;
    let port: u16 = opts.get("port", 0)?;
    let block_size: usize = opts.get("block-size", 65536)?;
    let early_writes: u8 = opts.get("early-writes", 0)?;
    raise_nofile();
    let mut kernel = Kernel::builder().early_writes(early_writes != 0).build()?;
    kernel.create(
        Session::new(Heap::default())
            .on(
                "_start",
                move |ctx: &mut Ctx<'_, Heap>| -> Result<(), Error> {
                    let w = SocketFactory::listen()
                        .bind_address("127.0.0.1")
                        .bind_port(port)
                        .reuse(true)
                        .success_event("accepted")
                        .failure_event("listen_failed")
                        .build(ctx)?;
                    if let Some(addr) = ctx
                        .wheel_ref::<SocketFactory>(w.id())
                        .and_then(|f| f.getsockname())
                    {
                        announce(addr);
                    }
                    ctx.heap().listener = Some(w);
                    Ok(())
                },
            )
            .on(
                "accepted",
                move |ctx: &mut Ctx<'_, Heap>| -> Result<(), HandlerError> {
                    let stream = ctx.take_arg::<mio::net::TcpStream>(0)?;
                    let w = ReadWrite::builder(stream)
                        .filter(Line::with_literal("\n")?)
                        .block_size(block_size)
                        .input_event("input")
                        .error_event("client_error")
                        .build(ctx)?;
                    ctx.heap().clients.insert(w.id(), w);
                    Ok(())
                },
            )
            .on(
                "input",
                |ctx: &mut Ctx<'_, Heap>| -> Result<(), HandlerError> {
                    let line = ctx.take_arg::<Vec<u8>>(0)?;
                    let id = *ctx.arg::<WheelId>(1)?;
                    if let Some(w) = ctx.wheel_mut::<ReadWrite>(id) {
                        w.put_one(line)?;
                    }
                    Ok(())
                },
            )
            .on(
                "client_error",
                |ctx: &mut Ctx<'_, Heap>| -> Result<(), HandlerError> {
                    let id = *ctx.arg::<WheelId>(1)?;
                    ctx.heap().clients.remove(&id);
                    Ok(())
                },
            )
            .on(
                "listen_failed",
                |ctx: &mut Ctx<'_, Heap>| -> Result<(), HandlerError> {
                    eprintln!("listening failed: {}", ctx.arg::<WheelError>(0)?);
                    ctx.heap().listener = None;
                    Ok(())
                },
            ),
    )?;
    kernel.run()?;
    Ok(())
}
