//! Interop with the real POE 1.370 (`libpoe-perl`, installed by `.ci/run`): a Perl
//! `POE::Component::Client::TCP` talks to our `examples/echo_server`, and our `ClientTcp`
//! talks to a Perl `POE::Component::Server::TCP`. Line framing, non-ASCII bytes and EOF
//! must behave the same on both sides. Without Perl POE these tests fail, they do not skip.

mod common;

use reactor::wheel::WheelError;
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

#[test]
fn our_client_tcp_against_perl_server_tcp() {
    use reactor::component::ClientTcp;
    use reactor::{HandlerError, Kernel};
    use std::cell::RefCell;
    use std::rc::Rc;

    let _ = env_logger::builder().is_test(true).try_init();
    require_poe();
    let mut cmd = Command::new("perl");
    cmd.arg(format!("{PERL_DIR}/server_tcp.pl"));
    let (mut server, port, server_lines) = spawn_listening(cmd);

    let got: Rc<RefCell<Vec<String>>> = Rc::default();
    let (g1, g2, g3) = (Rc::clone(&got), Rc::clone(&got), Rc::clone(&got));
    let mut kernel = Kernel::new().unwrap();
    ClientTcp::builder("127.0.0.1", port)
        .connected(|ctx| -> Result<(), HandlerError> {
            let server = ctx.server().ok_or("no server wheel")?;
            // Non-ASCII bytes, a NUL, then "bye": the Perl server closes the connection.
            server.put([
                "hi".as_bytes(),
                "caf\u{e9} \u{263a}".as_bytes(),
                &[0xff, 0x00, 0x41],
                b"bye",
            ])?;
            Ok(())
        })
        .server_input(move |ctx| -> Result<(), HandlerError> {
            g1.borrow_mut()
                .push(format!("input {}", hex(ctx.arg::<Vec<u8>>(0)?)));
            Ok(())
        })
        .server_error(move |ctx| -> Result<(), HandlerError> {
            g2.borrow_mut().push(format!(
                "error {} {}",
                ctx.arg::<WheelError>(0)?.operation,
                ctx.arg::<WheelError>(0)?.errno
            ));
            Ok(())
        })
        .disconnected(move |_| g3.borrow_mut().push("disconnected".to_owned()))
        .build(&mut kernel)
        .expect("client builds");
    kernel.run().unwrap();

    let echo = |s: &[u8]| format!("input {}", hex(&[b"echo: ".as_slice(), s].concat()));
    assert_eq!(
        *got.borrow(),
        [
            echo(b"hi"),
            echo("caf\u{e9} \u{263a}".as_bytes()),
            echo(&[0xff, 0x00, 0x41]),
            "error read 0".to_owned(),
            "disconnected".to_owned()
        ]
    );
    // What the Perl side received, record by record, then the client's close.
    let mut seen = Vec::new();
    while let Ok(l) = server_lines.recv_timeout(Duration::from_secs(10)) {
        seen.push(l);
    }
    assert_eq!(
        seen,
        [
            format!("input: {}", hex(b"hi")),
            format!("input: {}", hex("caf\u{e9} \u{263a}".as_bytes())),
            format!("input: {}", hex(&[0xff, 0x00, 0x41])),
            format!("input: {}", hex(b"bye")),
            "disconnected".to_owned()
        ]
    );
    assert!(wait_bounded(&mut server).success());
}
