//! FollowTail latency: the time from a line appended to a file to its `InputEvent`, polling
//! every second (POE's way, and the default) against `TailWatch::Inotify`.
//!
//! Run: `cargo bench --bench tail_latency`. A writer thread appends `LINES` lines (default
//! 100), one every 10 to 60 ms at random, each stamped with the time it was written; the
//! kernel, on the main thread, follows the file and measures each line's delay when it
//! arrives. Words after `--` pick the modes (`poll`, `inotify`).

use rand::Rng;
use reactor::wheel::{FollowTail, TailWatch, WheelHandle};
use reactor::{Ctx, HandlerError, Kernel, Session};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Stamps = Arc<Mutex<Vec<Option<Instant>>>>;

/// The delay of each of `lines` lines appended to the file at `path` by a writer thread,
/// followed with `how`.
fn measure(path: &Path, how: TailWatch, lines: usize) -> Vec<Duration> {
    std::fs::write(path, "").expect("make the file");
    let stamps: Stamps = Arc::new(Mutex::new(vec![None; lines]));
    let delays = std::rc::Rc::new(std::cell::RefCell::new(Vec::with_capacity(lines)));
    let mut k = Kernel::new().expect("kernel");
    let (p, s, d) = (path.to_owned(), stamps.clone(), delays.clone());
    k.create(
        Session::new(None::<WheelHandle>)
            .on("_start", move |ctx: &mut Ctx<'_, Option<WheelHandle>>| {
                let tail = FollowTail::filename(&p)
                    .watch(how)
                    .input_event("line")
                    .build(ctx)?;
                *ctx.heap() = Some(tail);
                Ok::<(), HandlerError>(())
            })
            .on("line", move |ctx: &mut Ctx<'_, Option<WheelHandle>>| {
                let now = Instant::now();
                let i: usize = String::from_utf8_lossy(ctx.arg::<Vec<u8>>(0)?).parse()?;
                let written = s.lock().map_err(|_| "poisoned")?[i].ok_or("no stamp")?;
                d.borrow_mut().push(now - written);
                if d.borrow().len() == lines {
                    *ctx.heap() = None;
                }
                Ok::<(), HandlerError>(())
            }),
    )
    .expect("session");
    let p = path.to_owned();
    let writer = std::thread::spawn(move || {
        let mut rng = rand::thread_rng();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .expect("open to append");
        for i in 0..lines {
            std::thread::sleep(Duration::from_millis(rng.gen_range(10..60)));
            stamps.lock().expect("stamps")[i] = Some(Instant::now());
            f.write_all(format!("{i}\n").as_bytes()).expect("append");
        }
    });
    k.run().expect("run");
    writer.join().expect("writer");
    let v = delays.borrow().clone();
    v
}

fn main() {
    let lines = std::env::var("LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let picked: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let path: PathBuf =
        std::env::temp_dir().join(format!("reactor-tail-latency-{}.log", std::process::id()));
    println!("{lines} lines, one every 10-60 ms");
    println!(
        "{:<28} {:>10} {:>10} {:>10} {:>10}",
        "mode", "mean", "median", "p99", "max"
    );
    for (name, how) in [("poll", TailWatch::Poll), ("inotify", TailWatch::Inotify)] {
        if !picked.is_empty() && !picked.iter().any(|p| p == name) {
            continue;
        }
        let mut d = measure(&path, how, lines);
        d.sort();
        let mean = d.iter().sum::<Duration>() / d.len() as u32;
        let at = |q: f64| d[((d.len() - 1) as f64 * q).round() as usize];
        let label = match how {
            TailWatch::Poll => "poll (PollInterval 1 s)",
            TailWatch::Inotify => "inotify (fallback 10 s)",
        };
        println!(
            "{label:<28} {:>10.3?} {:>10.3?} {:>10.3?} {:>10.3?}",
            mean,
            at(0.5),
            at(0.99),
            d[d.len() - 1]
        );
    }
    let _ = std::fs::remove_file(&path);
}
