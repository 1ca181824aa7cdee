//! POE::Component::Client::HTTP's own test suite (rcaputo/poe-component-client-http,
//! `t/`), ported with its assertions, each against a real socket on 127.0.0.1.
//!
//! Not ported: `01_ssl` (a public https site), `12_pod`/`13_pod_coverage` (Perl docs),
//! `05_request`/`06_factory` (the internals of Perl's request objects; the header rules
//! they check are in `t01_request` and `tests/http_client.rs`), `03_head_filter`,
//! `04_chunk_filter` and `51_santos_status` as filter tests (their cases are the parser's
//! unit tests in `src/http.rs`; `51` is also here, through the client), and the request
//! body given as a callback in `01_request` (bodies are `Vec<u8>` here). The upstream
//! servers answer `200 OK HTTP/1.1` in some files, a reversed status line that Perl's
//! lenient parser takes; the ports send a proper one.

mod common;

use common::web::{client_error, errmsg, get, ok, run_parallel, run_serial, Server};
use keepalive::reactor::{Ctx, Kernel, Session};
use keepalive::{ClientError, HttpClient, Keepalive, RequestPacket, ResolverKind, Submit};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// The test page of the upstream files (118 octets of HTML).
const PAGE: &str = "<html>\n<head><title>Test Page</title></head>\n<body><p>This page exists to test POE web components.</p></body>\n</html>\n";

fn page(close: bool) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\n{}Content-Length: {}\r\nContent-Type: text/html\r\n\r\n{PAGE}",
        if close { "Connection: close\r\n" } else { "" },
        PAGE.len()
    )
    .into_bytes()
}

fn path_of(line: &str) -> &str {
    line.split(' ').nth(1).unwrap_or("")
}

/// t/01_request.t: a GET, a request left to time out, a POST with content, a response
/// over MaxSize, a host that does not resolve, an unsupported scheme.
#[test]
fn t01_request() {
    let _w = common::timeout(30, "t01_request");
    let _s = common::ka::serial();
    let server = Server::start(|p| {
        while let Some(req) = p.request() {
            match path_of(&req.line) {
                "/test" | "/post1" => p.send(&page(true)),
                "/long" => {
                    let mut r = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 300\r\nBogus-Header: crap\r\n\r\n".to_vec();
                    r.extend(vec![b'x'; 300]);
                    p.send(&r);
                }
                _ => {} // /timeout: never answered
            }
        }
    });
    // "not.localhost.but.invalid" does not resolve (a resolver that says so, rather than
    // a lookup that would leave the machine).
    let mut kernel = Kernel::new().unwrap();
    let resolver = ResolverKind::Custom(Arc::new(|host: &str| match host {
        "localhost" => Ok(vec![std::net::Ipv4Addr::LOCALHOST.into()]),
        _ => Err("Name or service not known".to_owned()),
    }));
    let cm = Keepalive::builder()
        .resolver(resolver)
        .build(&mut kernel)
        .unwrap();
    let ua = HttpClient::builder()
        .max_size(200)
        .timeout(Duration::from_millis(500))
        .connection_manager(cm.clone())
        .build(&mut kernel)
        .unwrap();
    let port = server.port;
    let url = |p: &str| format!("http://localhost:{port}{p}");
    let requests = vec![
        http::Request::get(url("/test"))
            .header("connection", "close")
            .body(Vec::<u8>::new())
            .unwrap(),
        http::Request::get(url("/timeout"))
            .header("connection", "close")
            .body(Vec::<u8>::new())
            .unwrap(),
        http::Request::post(url("/post1"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(b"field1=111&field2=222".to_vec())
            .unwrap(),
        http::Request::get(url("/long"))
            .header("connection", "close")
            .body(Vec::<u8>::new())
            .unwrap(),
        get("http://not.localhost.but.invalid/badhost"),
        get("file://localhost/from/a/local/filesystem"),
    ];
    let n = requests.len();
    let got: Rc<RefCell<Vec<(String, u16)>>> = Rc::default();
    let g2 = got.clone();
    kernel
        .create(
            Session::new(())
                .on("_start", move |ctx: &mut Ctx<'_, ()>| {
                    for r in requests.clone() {
                        ctx.post("weeble", "request", ("got_response", r)).unwrap();
                    }
                })
                .on("got_response", move |ctx: &mut Ctx<'_, ()>| {
                    let p: RequestPacket = ctx.take_arg(0).unwrap();
                    let r: http::Response<Vec<u8>> = ctx.take_arg(1).unwrap();
                    g2.borrow_mut()
                        .push((p.request().uri().path().to_owned(), r.status().as_u16()));
                    if g2.borrow().len() == n {
                        ctx.post("weeble", "shutdown", ()).unwrap();
                        cm.shutdown(ctx);
                    }
                }),
        )
        .unwrap();
    drop(ua);
    kernel.run().unwrap();
    let mut got = got.borrow().clone();
    got.sort();
    let want = [
        ("/badhost", 500),
        ("/from/a/local/filesystem", 400),
        ("/long", 406),
        ("/post1", 200),
        ("/test", 200),
        ("/timeout", 408),
    ];
    let want: Vec<(String, u16)> = want.iter().map(|(p, c)| (p.to_string(), *c)).collect();
    assert_eq!(got, want);
    let seen = server.seen();
    let post = seen.iter().find(|s| s.line.starts_with("POST")).unwrap();
    assert_eq!(
        post.body, b"field1=111&field2=222",
        "got post request with content"
    );
    assert_eq!(
        seen.len(),
        4,
        "one request each for test, timeout, post1, long"
    );
}

/// t/02_keepalive.t: one connection per host; `Connection: Keep-Alive` answers reuse the
/// connection, a `Close` one ends it and the next request connects again.
#[test]
fn t02_keepalive() {
    let _w = common::timeout(20, "t02_keepalive");
    let _s = common::ka::serial();
    let server = Server::start(|p| {
        while let Some(req) = p.request() {
            let close = req
                .header("connection")
                .is_some_and(|c| c.eq_ignore_ascii_case("close"));
            let conn = if close {
                "Connection: Close"
            } else {
                "Connection: Keep-Alive\r\nKeep-Alive: timeout=2, max=100"
            };
            p.send(
                format!(
                    "HTTP/1.1 200 OK\r\nServer: Test-POE-Server-TCP\r\n{conn}\r\nContent-Length: {}\r\nContent-Type: text/html\r\n\r\n{PAGE}",
                    PAGE.len()
                )
                .as_bytes(),
            );
            if close {
                return;
            }
        }
    });
    let u = |q: &str| server.url(&format!("/test.cgi?{q}"));
    let with = |q: &str, c: Option<&str>| {
        let mut b = http::Request::get(u(q));
        if let Some(c) = c {
            b = b.header("connection", c);
        }
        Submit::new("response", b.body(Vec::<u8>::new()).unwrap())
    };
    let got = run_serial(
        HttpClient::builder().timeout(Duration::from_secs(2)),
        vec![
            with("FIRST", Some("Keep-Alive")),
            with("TEST2", Some("Keep-Alive")),
            with("TEST3", None),
            with("TEST4", Some("Close")),
            with("TEST5", None),
        ],
    );
    for (_, r) in &got.responses {
        assert_eq!(r.status(), 200, "got OK response code");
    }
    let conns: Vec<usize> = server.seen().iter().map(|s| s.conn).collect();
    assert_eq!(
        conns,
        [0, 0, 0, 0, 1],
        "reused, then a new connection after Close"
    );
}

/// t/07_proxy.t: requests through a plain HTTP proxy carry the absolute URI; NoProxy
/// hosts are reached directly; a proxy given with one request overrides the client's.
#[test]
fn t07_proxy() {
    let _w = common::timeout(20, "t07_proxy");
    let _s = common::ka::serial();
    let origin = Server::answering(|_| ok("direct"));
    let proxy = Server::answering(|req| ok(&format!("proxied {}", path_of(&req.line))));
    let proxy2 = Server::answering(|_| ok("second proxy"));
    let target = origin.url("/x");
    let got = run_serial(
        HttpClient::builder()
            .proxy(&proxy.url(""))
            .no_proxy(["localhost"]),
        vec![
            Submit::new("response", get(&target)),
            Submit::new(
                "response",
                get(&format!("http://localhost:{}/y", origin.port)),
            ),
            Submit::new("response", get(&target)).proxy(&proxy2.url("")),
        ],
    );
    assert_eq!(
        got.responses[0].1.body(),
        format!("proxied {target}").as_bytes()
    );
    assert_eq!(
        proxy.seen()[0].header("host"),
        Some(format!("127.0.0.1:{}", origin.port).as_str())
    );
    assert_eq!(got.responses[1].1.body(), b"direct");
    assert_eq!(got.responses[2].1.body(), b"second proxy");
}

/// t/08_discard.t: a server that reads and never answers: a 408 within the timeout.
#[test]
fn t08_discard() {
    let _w = common::timeout(20, "t08_discard");
    let _s = common::ka::serial();
    let server = Server::start(|p| {
        let mut buf = [0u8; 1024];
        while std::io::Read::read(&mut p.reader, &mut buf).is_ok_and(|n| n > 0) {}
    });
    let got = run_serial(
        HttpClient::builder()
            .alias("ua")
            .timeout(Duration::from_millis(400)),
        vec![Submit::new("response", get(&server.url("/")))],
    );
    assert_eq!(
        got.responses[0].1.status(),
        408,
        "received error (wanted 408)"
    );
}

/// t/10_shutdown.t: requests pending at a shutdown are answered with a 408 and never
/// sent.
#[test]
fn t10_shutdown() {
    let _w = common::timeout(20, "t10_shutdown");
    let _s = common::ka::serial();
    let server = Server::start(|p| assert!(p.request().is_none(), "There should be NO requests"));
    let url = server.url("/test.html");
    let mut kernel = Kernel::new().unwrap();
    HttpClient::builder()
        .timeout(Duration::from_secs(2))
        .build(&mut kernel)
        .unwrap();
    let codes: Rc<RefCell<Vec<u16>>> = Rc::default();
    let c2 = codes.clone();
    kernel
        .create(
            Session::new(())
                .on("_start", move |ctx: &mut Ctx<'_, ()>| {
                    // As upstream: the requests reach the client just before its
                    // shutdown, which cancels them before they connect.
                    for _ in 0..2 {
                        let r = http::Request::get(url.as_str())
                            .header("connection", "close")
                            .body(Vec::<u8>::new())
                            .unwrap();
                        ctx.post("weeble", "request", ("got_response", r)).unwrap();
                    }
                    ctx.post("weeble", "shutdown", ()).unwrap();
                })
                .on("got_response", move |ctx: &mut Ctx<'_, ()>| {
                    let r: http::Response<Vec<u8>> = ctx.take_arg(1).unwrap();
                    c2.borrow_mut().push(r.status().as_u16());
                }),
        )
        .unwrap();
    kernel.run().unwrap();
    assert_eq!(*codes.borrow(), [408, 408], "Got the expected timeout");
    server.wait_all_closed();
    assert!(server.seen().is_empty());
}

/// t/11_cancel.t: cancelling a streamed response after its first chunk: no chunk comes
/// after the cancel, and the request ends with one 408.
#[test]
fn t11_cancel() {
    let _w = common::timeout(20, "t11_cancel");
    let _s = common::ka::serial();
    let server = Server::start(|p| {
        p.request();
        p.send(b"HTTP/1.1 200 OK\nConnection: close\nTransfer-Encoding: chunked\n\n");
        for c in 0..26u8 {
            let mut chunk = b"200\n".to_vec();
            chunk.extend(vec![b'A' + c; 512]);
            chunk.push(b'\n');
            p.send(&chunk);
            if c == 0 {
                // The rest only once the client has hung up (it cancels on the first).
                let mut buf = [0u8; 64];
                while std::io::Read::read(&mut p.reader, &mut buf).is_ok_and(|n| n > 0) {}
            }
        }
    });
    let url = server.url("/misc/chunk-test.cgi");
    let mut kernel = Kernel::new().unwrap();
    let ua = HttpClient::builder()
        .alias("streamer")
        .streaming(true)
        .build(&mut kernel)
        .unwrap();
    #[derive(Default)]
    struct Seen {
        octets: usize,
        chunks: usize,
        after_cancel: usize,
        finals: Vec<u16>,
        cancelled: bool,
    }
    let seen: Rc<RefCell<Seen>> = Rc::default();
    let s2 = seen.clone();
    kernel
        .create(
            Session::new(())
                .on("_start", move |ctx: &mut Ctx<'_, ()>| {
                    let r = http::Request::get(url.as_str())
                        .header("connection", "close")
                        .body(Vec::<u8>::new())
                        .unwrap();
                    ua.request(ctx, "got_response", r).unwrap();
                })
                .on("got_response", move |ctx: &mut Ctx<'_, ()>| {
                    let p: RequestPacket = ctx.take_arg(0).unwrap();
                    let r: http::Response<Vec<u8>> = ctx.take_arg(1).unwrap();
                    let chunk = ctx.args().opt::<Option<Vec<u8>>>(2).cloned().flatten();
                    let mut s = s2.borrow_mut();
                    match chunk {
                        Some(c) => {
                            if s.cancelled {
                                s.after_cancel += 1;
                            }
                            s.octets += c.len();
                            s.chunks += 1;
                            s.cancelled = true;
                            drop(s);
                            ctx.call("streamer", "cancel", (p.id(),)).unwrap();
                        }
                        None => {
                            s.finals.push(r.status().as_u16());
                            drop(s);
                            ctx.post("streamer", "shutdown", ()).unwrap();
                        }
                    }
                }),
        )
        .unwrap();
    kernel.run().unwrap();
    let s = seen.borrow();
    assert_eq!(s.chunks, 1);
    assert_eq!(s.after_cancel, 0);
    assert_eq!(s.octets, 512, "Got the right amount of data");
    assert_eq!(s.finals, [408]);
}

/// t/14_gzipped_content.t: a gzip body (raw deflate data behind a gzip header, no
/// trailer, a CRLF after it) decodes to the original.
#[test]
fn t14_gzipped_content() {
    use flate2::write::DeflateEncoder;
    use std::io::Write;
    let _w = common::timeout(20, "t14_gzipped_content");
    let _s = common::ka::serial();
    let original = "<html>\n <head>\n  <title>Sample Document</title>\n </head>\n <body>\n  Sample content\n </body>\n</html>\n";
    let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    let mut d = DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    d.write_all(original.as_bytes()).unwrap();
    gz.extend(d.finish().unwrap());
    let server = Server::start(move |p| {
        p.request();
        let mut r = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Encoding: gzip\r\nContent-type: text/plain\r\n\r\n".to_vec();
        r.extend_from_slice(&gz);
        r.extend_from_slice(b"\r\n");
        p.send(&r);
    });
    let got = run_serial(
        HttpClient::builder(),
        vec![Submit::new("response", get(&server.url("/")))],
    );
    let r = &got.responses[0].1;
    assert_eq!(r.status(), 200, "{}", errmsg(r));
    assert_eq!(
        r.body(),
        original.as_bytes(),
        "gzip encoded transfers decode correctly"
    );
}

/// t/50_davis_zerolength.t: a zero-length body and a 7-octet one.
#[test]
fn t50_davis_zerolength() {
    let _w = common::timeout(20, "t50_davis_zerolength");
    let _s = common::ka::serial();
    let server = Server::answering(|req| {
        if req.line.contains("no-content") {
            b"HTTP/1.1 200 OK\nConnection: close\nContent-Length: 0\n\n".to_vec()
        } else {
            b"HTTP/1.1 200 OK\nConnection: close\nContent-Length: 7\n\ncontent\n".to_vec()
        }
    });
    let got = run_parallel(
        HttpClient::builder().alias("ua"),
        vec![
            Submit::new("response", get(&server.url("/misc/no-content.html"))),
            Submit::new("response", get(&server.url("/misc/test.html"))),
        ],
    );
    assert_eq!(server.seen().len(), 2, "Got request; sending reply");
    for (p, r) in &got.responses {
        if p.request().uri().path().contains("no-content") {
            assert_eq!(r.body(), b"", "... and it has no content");
        } else {
            assert_eq!(r.body(), b"content", "... and it has content");
        }
    }
}

/// t/51_santos_status.t: an HTTP/1.0 head without headers, then the content.
#[test]
fn t51_santos_status() {
    let _w = common::timeout(20, "t51_santos_status");
    let _s = common::ka::serial();
    let server = Server::start(|p| {
        p.request();
        p.send(b"HTTP/1.0 200 OK\n\nTest Content.\n");
    });
    let got = run_serial(
        HttpClient::builder(),
        vec![Submit::new("response", get(&server.url("/")))],
    );
    let r = &got.responses[0].1;
    assert_eq!(
        (r.status().as_u16(), r.version()),
        (200, http::Version::HTTP_10),
        "headers received"
    );
    assert_eq!(r.body(), b"Test Content.\n", "content received");
}

/// t/52_reiss_bad_length.t: a body shorter than its Content-Length, a close-delimited one,
/// a body that reads like a response, a status line without a reason: one response each,
/// each with its request.
#[test]
fn t52_reiss_bad_length() {
    let _w = common::timeout(20, "t52_reiss_bad_length");
    let _s = common::ka::serial();
    let responses: [&[u8]; 4] = [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 8\r\nContent-type: text/plain\r\n\r\nContent",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-type: text/plain\r\n\r\nContent",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 14\r\nContent-type: text/plain\r\n\r\nHTTP::Response",
        b"HTTP/1.1 200 \r\nContent-type: text/plain\r\nConnection: close\r\n\r\nContent",
    ];
    let servers: Vec<Server> = responses
        .iter()
        .map(|r| {
            let r = r.to_vec();
            Server::start(move |p| {
                p.request();
                p.send(&r);
            })
        })
        .collect();
    let got = run_parallel(
        HttpClient::builder(),
        servers
            .iter()
            .map(|s| Submit::new("response", get(&s.url("/"))))
            .collect(),
    );
    assert_eq!(got.responses.len(), 4, "got a response for each");
    let by_port = |s: &Server| {
        got.responses
            .iter()
            .find(|(p, _)| p.request().uri().port_u16() == Some(s.port))
            .map(|(_, r)| r)
            .unwrap()
    };
    let short = by_port(&servers[0]);
    assert_eq!(short.status(), 400);
    assert_eq!(
        client_error(short),
        Some(&ClientError::Incomplete {
            expected: Some(8),
            received: 7
        })
    );
    assert_eq!(by_port(&servers[1]).body(), b"Content");
    assert_eq!(by_port(&servers[2]).body(), b"HTTP::Response");
    assert_eq!(by_port(&servers[3]).body(), b"Content");
}

/// t/53_response_parser.t: unknown transfer codings before `chunked` stay in the header;
/// HTTP/0.9 answers (with POE's leniency switched on); no known coding at all leaves the
/// body as sent.
#[test]
fn t53_response_parser() {
    let _w = common::timeout(20, "t53_response_parser");
    let _s = common::ka::serial();
    let responses: [&[u8]; 4] = [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nTransfer-Encoding: poit,narf,chunked\r\nContent-type: text/plain\r\n\r\n7\r\nchunk 1\r\n0\r\n",
        b"<html><head><title>Test</title></head><body>HTTP/0.9 Allows documents with no status and no headers!</body></html>",
        b"<html><head><title>Test</title></head>\n<body>HTTP/0.9 Allows documents with no status and no headers!\n</body></html>\n",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nTransfer-Encoding: zort,poit,narf\r\nContent-type: text/plain\r\n\r\n7\r\nchunk 1\r\n0\r\n",
    ];
    let servers: Vec<Server> = responses
        .iter()
        .map(|r| {
            let r = r.to_vec();
            Server::start(move |p| {
                p.request();
                p.send(&r);
            })
        })
        .collect();
    let got = run_serial(
        HttpClient::builder().http09(true),
        servers
            .iter()
            .map(|s| Submit::new("response", get(&s.url("/"))))
            .collect(),
    );
    let r = &got.responses[0].1;
    let peer = r.headers()["x-pcch-peer"].to_str().unwrap();
    assert!(peer.starts_with("127.0.0.1."), "peer address header");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["transfer-encoding"],
        "poit, narf",
        "unknown transfer encodings preserved"
    );
    assert_eq!(r.body(), b"chunk 1");
    for r in [&got.responses[1].1, &got.responses[2].1] {
        assert_eq!(r.status(), 200);
        assert_eq!(r.version(), http::Version::HTTP_09);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("html"));
        let body = String::from_utf8_lossy(r.body());
        assert!(body.contains("Allows documents") && body.contains("</html>"));
    }
    let r = &got.responses[3].1;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["transfer-encoding"],
        "zort,poit,narf",
        "no known transfer encodings"
    );
    assert_eq!(r.body(), b"7\r\nchunk 1\r\n0\r\n");
}

/// t/54_hzheng_head_redir.t: a HEAD redirected with 303 (still a HEAD, as POE does):
/// the redirected request's Host is the one a manual redirect would send.
#[test]
fn t54_hzheng_head_redir() {
    let _w = common::timeout(20, "t54_hzheng_head_redir");
    let _s = common::ka::serial();
    let server = Server::start(|p| {
        let port = p.stream.local_addr().unwrap().port();
        while let Some(req) = p.request() {
            if req.line.contains("redir") {
                p.send(
                    format!(
                        "HTTP/1.1 303 See Other\nLocation: http://localhost:{port}/destination\n\n"
                    )
                    .as_bytes(),
                );
            } else {
                p.send(b"HTTP/1.1 200 Ok\nHost:\n\n");
            }
        }
    });
    let mut kernel = Kernel::new().unwrap();
    let resolver = ResolverKind::Custom(Arc::new(|_: &str| {
        Ok(vec![std::net::Ipv4Addr::LOCALHOST.into()])
    }));
    let cm = Keepalive::builder()
        .resolver(resolver)
        .build(&mut kernel)
        .unwrap();
    HttpClient::builder()
        .alias("no_redir")
        .connection_manager(cm.clone())
        .build(&mut kernel)
        .unwrap();
    HttpClient::builder()
        .alias("redir")
        .follow_redirects(5)
        .connection_manager(cm.clone())
        .build(&mut kernel)
        .unwrap();
    let port = server.port;
    let result: Rc<RefCell<Option<(u16, String)>>> = Rc::default();
    let r2 = result.clone();
    let head = |u: String| http::Request::head(u).body(Vec::<u8>::new()).unwrap();
    kernel
        .create(
            Session::new(String::new())
                .on("_start", move |ctx: &mut Ctx<'_, String>| {
                    ctx.post(
                        "no_redir",
                        "request",
                        ("manual", head(format!("http://localhost:{port}/redir"))),
                    )
                    .unwrap();
                })
                .on("manual", move |ctx: &mut Ctx<'_, String>| {
                    let p: RequestPacket = ctx.take_arg(0).unwrap();
                    let r: http::Response<Vec<u8>> = ctx.take_arg(1).unwrap();
                    if r.status().is_redirection() {
                        let loc = r.headers()["location"].to_str().unwrap().to_owned();
                        ctx.post("no_redir", "request", ("manual", head(loc)))
                            .unwrap();
                        return;
                    }
                    *ctx.heap() = p.request().headers()["host"].to_str().unwrap().to_owned();
                    ctx.post(
                        "redir",
                        "request",
                        ("automatic", head(format!("http://localhost:{port}/redir"))),
                    )
                    .unwrap();
                })
                .on("automatic", move |ctx: &mut Ctx<'_, String>| {
                    let r: http::Response<Vec<u8>> = ctx.take_arg(1).unwrap();
                    *r2.borrow_mut() = Some((r.status().as_u16(), ctx.heap().clone()));
                    ctx.post("no_redir", "shutdown", ()).unwrap();
                    ctx.post("redir", "shutdown", ()).unwrap();
                    cm.shutdown(ctx);
                }),
        )
        .unwrap();
    kernel.run().unwrap();
    let (code, manual_host) = result.borrow().clone().unwrap();
    assert_eq!(code, 200, "got correct response code");
    let seen = server.seen();
    let last = seen.last().unwrap();
    assert!(last.line.starts_with("HEAD /destination"));
    assert_eq!(
        last.header("host"),
        Some(manual_host.as_str()),
        "automatic redirect host matches manual result"
    );
}

/// t/55_reiss_double_resp.t: a redirect to a server that is gone is a 500 (or 408); a
/// close-delimited body over MaxSize is a 406, and one response only either way.
#[test]
fn t55_reiss_double_resp() {
    let _w = common::timeout(20, "t55_reiss_double_resp");
    let _s = common::ka::serial();
    // The listener accepts one connection, then is gone: the redirect finds nobody.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        drop(listener);
        let mut p = std::io::BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        while std::io::BufRead::read_line(&mut p, &mut line).is_ok_and(|n| n > 2) {
            line.clear();
        }
        let mut s = s;
        let _ = std::io::Write::write_all(
            &mut s,
            format!("HTTP/1.1 302 Moved\r\nLocation: http://127.0.0.1:{port}/stuff\r\nConnection: close\r\nContent-type: text/plain\r\n\r\nLine 1 of the redirectLine 2 of the redirect").as_bytes(),
        );
    });
    let too_much = Server::start(|p| {
        p.request();
        let mut r =
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-type: text/plain\r\n\r\n".to_vec();
        r.extend("Too Much".repeat(64).as_bytes());
        r.extend("should not appear".repeat(5).as_bytes());
        p.send(&r);
    });
    let got = run_serial(
        HttpClient::builder()
            .follow_redirects(3)
            .max_size(512)
            .timeout(Duration::from_secs(2)),
        vec![
            Submit::new("response", get(&format!("http://127.0.0.1:{port}/"))),
            Submit::new("response", get(&too_much.url("/"))),
        ],
    );
    assert_eq!(got.responses.len(), 2);
    let c1 = got.responses[0].1.status().as_u16();
    assert!(
        c1 == 500 || c1 == 408,
        "case 1 redirect to dead server returns 500: {c1}"
    );
    assert_eq!(
        got.responses[1].1.status(),
        406,
        "case 2 response is too long"
    );
}

/// t/56_redirect_excess.t: one redirect allowed, the server always redirects: exactly
/// one response, the redirect itself, with its request.
#[test]
fn t56_redirect_excess() {
    let _w = common::timeout(20, "t56_redirect_excess");
    let _s = common::ka::serial();
    let server = Server::start(|p| {
        let port = p.stream.local_addr().unwrap().port();
        if p.request().is_some() {
            p.send(format!("HTTP/1.1 302 Moved\r\nConnection: close\r\nContent-length: 0\r\nContent-type: text/plain\r\nLocation: http://127.0.0.1:{port}\r\n\r\nNot really content\r\n").as_bytes());
        }
    });
    let got = run_serial(
        HttpClient::builder().follow_redirects(1),
        vec![Submit::new("response", get(&server.url("/")))],
    );
    assert_eq!(
        got.responses.len(),
        1,
        "correct number of responses received"
    );
    let (p, r) = &got.responses[0];
    assert_eq!(r.status(), 302);
    assert_eq!(r.body(), b"");
    assert_eq!(
        p.request().uri().path(),
        "/",
        "response has corresponding request object set"
    );
    assert_eq!(errmsg(r), "Too many redirects (1)");
}

/// t/57_pravus_progress.t: a 100,000-octet HTTP/1.0 body, streamed: response and
/// progress events both come.
#[test]
fn t57_pravus_progress() {
    let _w = common::timeout(20, "t57_pravus_progress");
    let _s = common::ka::serial();
    let server = Server::start(|p| {
        p.request();
        let mut r = b"HTTP/1.0 200 OK\r\nContent-Length: 100000\r\nContent-Type: text/html\r\n\r\n"
            .to_vec();
        r.extend(vec![b'!'; 100_000]);
        p.send(&r);
    });
    let got = run_serial(
        HttpClient::builder()
            .alias("ua")
            .streaming(true)
            .follow_redirects(32),
        vec![Submit::new("response", get(&server.url("/")))
            .tag("id")
            .progress("progress")],
    );
    assert!(!got.chunks.is_empty(), "got response");
    assert!(!got.progress.is_empty(), "got progress");
    let total: usize = got.chunks.iter().flatten().map(Vec::len).sum();
    assert_eq!(total, 100_000);
    assert_eq!(got.progress.last().unwrap().received, 100_000);
}

/// t/58_joel_cancel_multi.t: a request cancelled before it connects is answered with a
/// 408 and never reaches the server; the other one is answered.
#[test]
fn t58_joel_cancel_multi() {
    let _w = common::timeout(20, "t58_joel_cancel_multi");
    let _s = common::ka::serial();
    let server = Server::answering(|req| {
        assert!(
            !req.line.contains("cancel"),
            "got request that was supposed to be cancelled"
        );
        b"HTTP/1.1 204 OK\n\n".to_vec()
    });
    let (c, o) = (server.url("/cancel"), server.url("/one"));
    let mut kernel = Kernel::new().unwrap();
    let ua = HttpClient::builder()
        .alias("ua")
        .build(&mut kernel)
        .unwrap();
    let got: Rc<RefCell<Vec<(String, u16)>>> = Rc::default();
    let g2 = got.clone();
    kernel
        .create(
            Session::new(())
                .on("_start", move |ctx: &mut Ctx<'_, ()>| {
                    let id = ua.request(ctx, "response", get(&c)).unwrap();
                    ua.request(ctx, "response", get(&o)).unwrap();
                    ctx.post("ua", "cancel", (id,)).unwrap();
                })
                .on("response", move |ctx: &mut Ctx<'_, ()>| {
                    let p: RequestPacket = ctx.take_arg(0).unwrap();
                    let r: http::Response<Vec<u8>> = ctx.take_arg(1).unwrap();
                    let path = p.request().uri().path().to_owned();
                    if path == "/one" {
                        ctx.post("ua", "shutdown", ()).unwrap();
                    }
                    g2.borrow_mut().push((path, r.status().as_u16()));
                }),
        )
        .unwrap();
    kernel
        .run()
        .expect("cancelling req before connection succeeds does not die");
    let mut got = got.borrow().clone();
    got.sort();
    assert_eq!(got, [("/cancel".to_owned(), 408), ("/one".to_owned(), 204)]);
}

/// t/59_incomplete_b.t: MaxSize 50: a Content-Length of 60 is refused at the head, a
/// close-delimited body of 60 as it grows past 50; both are 406.
#[test]
fn t59_incomplete_b() {
    let _w = common::timeout(20, "t59_incomplete_b");
    let _s = common::ka::serial();
    let body = "123456789\n".repeat(6);
    let server = Server::start(move |p| {
        if let Some(req) = p.request() {
            if req.line.contains("content_length") {
                p.send(format!("HTTP/1.1 200 OK\nContent-Length: 60\n\n{body}").as_bytes());
            } else {
                p.send(format!("HTTP/1.1 200 OK\n\n{body}").as_bytes());
            }
        }
    });
    let got = run_parallel(
        HttpClient::builder()
            .alias("ua")
            .max_size(50)
            .timeout(Duration::from_secs(2)),
        vec![
            Submit::new("response", get(&server.url("/content_length"))),
            Submit::new("response", get(&server.url("/no_length"))),
        ],
    );
    for (p, r) in &got.responses {
        assert_eq!(
            r.status(),
            406,
            "{} triggered 406",
            p.request().uri().path()
        );
    }
    assert_eq!(server.seen().len(), 2);
}

/// t/60_rt50231_pending.t and t/60_rt50231_pending_many.t: `pending_requests_count`
/// matches the requests not yet answered, in every response handler, with one and with
/// ten connections.
#[test]
fn t60_rt50231_pending() {
    let _w = common::timeout(20, "t60_rt50231_pending");
    let _s = common::ka::serial();
    for (n, limit) in [(2usize, 1usize), (5, 10)] {
        let server = Server::answering(|_| page(true));
        let url = server.url("/test");
        let mut kernel = Kernel::new().unwrap();
        let pool = Keepalive::builder()
            .keep_alive(Duration::from_secs(10))
            .max_open(limit)
            .max_per_host(limit)
            .timeout(Duration::from_secs(30))
            .build(&mut kernel)
            .unwrap();
        HttpClient::builder()
            .alias("ua")
            .timeout(Duration::from_secs(30))
            .follow_redirects(1)
            .connection_manager(pool.clone())
            .build(&mut kernel)
            .unwrap();
        let checks: Rc<RefCell<Vec<(usize, usize, u16)>>> = Rc::default();
        let c2 = checks.clone();
        kernel
            .create(
                Session::new(0usize)
                    .on("_start", move |ctx: &mut Ctx<'_, usize>| {
                        for i in 1..=n {
                            let r = http::Request::get(url.as_str())
                                .header("connection", "close")
                                .body(Vec::<u8>::new())
                                .unwrap();
                            ctx.post("ua", "request", ("_response", r, i)).unwrap();
                            *ctx.heap() += 1;
                        }
                    })
                    .on("_response", move |ctx: &mut Ctx<'_, usize>| {
                        let r: http::Response<Vec<u8>> = ctx.take_arg(1).unwrap();
                        *ctx.heap() -= 1;
                        let ua_pending: usize = ctx
                            .call("ua", "pending_requests_count", ())
                            .unwrap()
                            .take()
                            .unwrap();
                        c2.borrow_mut()
                            .push((ua_pending, *ctx.heap(), r.status().as_u16()));
                        if *ctx.heap() == 0 {
                            ctx.call("ua", "shutdown", ()).unwrap();
                            pool.shutdown(ctx);
                        }
                    }),
            )
            .unwrap();
        kernel.run().unwrap();
        let checks = checks.borrow();
        assert_eq!(checks.len(), n);
        for &(ua, actual, code) in checks.iter() {
            if limit == 1 {
                assert_eq!(ua, actual, "pending count matches reality");
            } else {
                // Upstream's TODO: with requests in parallel, answers already posted are
                // no longer pending while they wait in the queue.
                assert!(ua <= actual, "pending count {ua} over reality {actual}");
            }
            assert_eq!(code, 200, "got response data");
        }
        assert_eq!(server.seen().len(), n, "got test request");
    }
}
