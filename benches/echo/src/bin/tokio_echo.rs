//! A line echo on tokio's current_thread runtime, written the idiomatic way: one task per
//! connection, `BufReader::read_until(b'\n')` then `write_all` of the line.
//!
//! Usage: `tokio_echo --port P` (0 = any); prints `listening on ADDR` first.

use echo_bench::{announce, raise_nofile, Opts};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

async fn serve(mut stream: TcpStream) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let (r, mut w) = stream.split();
    let mut r = BufReader::new(r);
    let mut line = Vec::with_capacity(128);
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        w.write_all(&line).await?;
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let opts = Opts::from_env()?;
    let port: u16 = opts.get("port", 0)?;
    raise_nofile();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        announce(listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::spawn(async move {
                let _ = serve(stream).await;
            });
        }
    })
}
