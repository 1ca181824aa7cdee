//! Interop with the real POE 1.370 (`libpoe-perl`, installed by `.ci/run`): a Perl
//! `POE::Component::Client::TCP` talks to our `examples/echo_server`, and our `ClientTcp`
//! talks to a Perl `POE::Component::Server::TCP`. Line framing, non-ASCII bytes and EOF
//! must behave the same on both sides. Without Perl POE these tests fail, they do not skip.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const PERL_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/perl");

fn require_poe() {
    let ok = Command::new("perl")
        .args(["-MPOE", "-e", "exit 0"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "Perl POE is not installed: run .ci/run (apt-get install libpoe-perl)"
    );
}

/// Spawns `cmd`, waits (10 s at most) for its first stdout line "listening on ADDR" and
/// returns the child, the port, and a receiver of its further stdout lines.
fn spawn_listening(mut cmd: Command) -> (Child, u16, mpsc::Receiver<String>) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn server");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("server printed its address");
    let addr = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
    let port = addr.rsplit(':').next().unwrap().parse().expect("port");
    (child, port, rx)
}

fn hex(s: &[u8]) -> String {
    s.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn perl_client_tcp_against_our_echo_server() {
    require_poe();
    let (mut server, port, _lines) = spawn_listening(Command::new(common::example("echo_server")));
    let lines: [&[u8]; 3] = [b"hello", "caf\u{e9} \u{263a}".as_bytes(), b"tab\there"];
    let out = Command::new("perl")
        .arg(format!("{PERL_DIR}/client_tcp.pl"))
        .arg(port.to_string())
        .args(["hello", "caf\\xc3\\xa9 \\xe2\\x98\\xba", "tab\there"])
        .output()
        .expect("perl client runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let want: Vec<String> = lines
        .iter()
        .map(|l| format!("got: {}", hex(l)))
        .chain(["disconnected".to_owned()])
        .collect();
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        want,
        "perl client saw: {text}"
    );
    // The server survives the client's going away, and stops cleanly on SIGINT.
    let st = Command::new("kill")
        .args(["-INT", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let status = wait_bounded(&mut server);
    assert_eq!(status.code(), Some(0));
}

fn wait_bounded(child: &mut Child) -> std::process::ExitStatus {
    for _ in 0..200 {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let _ = child.kill();
    panic!("child did not exit within 5 s");
}
