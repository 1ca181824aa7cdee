//! `examples/fetch.rs` (the port of `pcchget.perl`): several URLs at once, one line each
//! with status, size and time; errors as the client's messages; a bad argument is a
//! usage error.

mod common;

use common::web::{ok, Server};
use std::process::Command;

#[test]
fn fetch_prints_one_line_per_url() {
    let _w = common::timeout(120, "fetch_prints_one_line_per_url");
    let server = Server::answering(|req| {
        if req.line.contains("/missing") {
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope".to_vec()
        } else {
            ok("twelve bytes")
        }
    });
    let out = Command::new(common::example("fetch"))
        .args([server.url("/a"), server.url("/b"), server.url("/c")])
        .output()
        .expect("fetch runs");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    for path in ["/a", "/b", "/c"] {
        let line = lines
            .iter()
            .find(|l| l.ends_with(&server.url(path)))
            .unwrap_or_else(|| panic!("no line for {path}: {text}"));
        assert!(line.starts_with("200 OK 12 bytes "), "{line}");
        assert!(line.contains(" ms "), "{line}");
    }

    // A 404 and a refused connection: lines still come, the exit status says failure.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://127.0.0.1:{}/", l.local_addr().unwrap().port());
    drop(l);
    let out = Command::new(common::example("fetch"))
        .args([
            "--verbose".to_owned(),
            server.url("/missing"),
            closed.clone(),
        ])
        .output()
        .expect("fetch runs");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!out.status.success());
    assert!(text.contains("404 Not Found 4 bytes"), "{text}");
    assert!(text.contains("*** their response:"), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("500 ")
            && l.contains(&closed)
            && l.contains("Connection refused")),
        "{text}"
    );

    let out = Command::new(common::example("fetch"))
        .output()
        .expect("fetch runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage: fetch"));
}
