//! The HTTP client (`HttpClient`, POE::Component::Client::HTTP) against scripted servers
//! on loopback sockets: every body framing, interim responses, no-body responses,
//! connection reuse and its limits, errors as responses, cancel and shutdown.

mod common;

use common::web::{client_error, errmsg, get, ok, run_parallel, run_serial, Server};
use keepalive::reactor::{Ctx, Kernel, Session};
use keepalive::{ClientError, HttpClient, RequestPacket, Submit};
use std::time::Duration;

fn client() -> keepalive::HttpClientBuilder {
    HttpClient::builder().timeout(Duration::from_secs(10))
}

#[test]
fn a_get_gets_its_body_and_the_peer_address() {
    let _w = common::timeout(20, "a_get_gets_its_body_and_the_peer_address");
    let _serial = common::ka::serial();
    let server = Server::answering(|_| ok("hello"));
    let fds = common::open_fds();
    let got = run_serial(
        client().agent("test-agent/1").from("me@example.invalid"),
        vec![Submit::new("response", get(&server.url("/a?b=c"))).tag(7u32)],
    );
    let (packet, r) = &got.responses[0];
    assert_eq!(r.status(), 200);
    assert_eq!(r.body(), b"hello");
    assert_eq!(packet.tag::<u32>(), Some(&7));
    assert_eq!(
        r.headers()["x-pcch-peer"],
        format!("127.0.0.1.{}", server.port).as_str()
    );
    let seen = server.seen();
    assert_eq!(seen[0].line, "GET /a?b=c HTTP/1.1");
    assert_eq!(
        seen[0].header("host"),
        Some(format!("127.0.0.1:{}", server.port).as_str())
    );
    assert_eq!(seen[0].header("user-agent"), Some("test-agent/1"));
    assert_eq!(seen[0].header("from"), Some("me@example.invalid"));
    server.wait_all_closed();
    common::assert_no_new_fds(&fds);
}

/// A server that sends `103 Early Hints` (and `100 Continue`) before its answer: the
/// interim responses are skipped, never taken for the final one.
#[test]
fn interim_responses_are_skipped() {
    let _w = common::timeout(20, "interim_responses_are_skipped");
    let _serial = common::ka::serial();
    let server = Server::answering(|req| {
        let mut r = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n".to_vec();
        if req.line.starts_with("POST") {
            r.splice(0..0, b"HTTP/1.1 100 Continue\r\n\r\n".iter().copied());
        }
        r.extend_from_slice(&ok("final"));
        r
    });
    let mut submits = Vec::new();
    for i in 0..20 {
        let req = if i % 2 == 0 {
            get(&server.url("/"))
        } else {
            http::Request::post(server.url("/"))
                .body(b"x=1".to_vec())
                .unwrap()
        };
        submits.push(Submit::new("response", req));
    }
    let got = run_serial(client(), submits);
    assert_eq!(got.responses.len(), 20);
    for (_, r) in &got.responses {
        assert_eq!(
            (r.status().as_u16(), r.body().as_slice()),
            (200, &b"final"[..])
        );
    }
    // All on one connection: the interim heads did not disturb the framing.
    assert_eq!(server.connections(), 1);
    assert_eq!(server.seen()[1].header("content-length"), Some("3"));
}

#[test]
fn chunked_bodies_with_trailers() {
    let _w = common::timeout(20, "chunked_bodies_with_trailers");
    let _serial = common::ka::serial();
    let server = Server::answering(|_| {
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n\
          5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Sum: 12\r\n\r\n"
            .to_vec()
    });
    let got = run_serial(
        client(),
        vec![
            Submit::new("response", get(&server.url("/"))),
            Submit::new("response", get(&server.url("/"))),
        ],
    );
    for (_, r) in &got.responses {
        assert_eq!(r.body(), b"hello, world");
        assert!(r.headers().get("transfer-encoding").is_none());
        let t = r.extensions().get::<keepalive::Trailers>().unwrap();
        assert_eq!(t.0["x-sum"], "12");
    }
    assert_eq!(server.connections(), 1);
}

#[test]
fn close_delimited_bodies() {
    let _w = common::timeout(20, "close_delimited_bodies");
    let _serial = common::ka::serial();
    let server = Server::start(|p| {
        if p.request().is_some() {
            p.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end");
        }
    });
    let got = run_serial(
        client(),
        vec![
            Submit::new("response", get(&server.url("/"))),
            Submit::new("response", get(&server.url("/"))),
        ],
    );
    for (_, r) in &got.responses {
        assert_eq!(
            (r.status().as_u16(), r.body().as_slice()),
            (200, &b"until the end"[..])
        );
    }
    assert_eq!(server.connections(), 2);
}

/// HEAD, 204 and 304 have no body whatever their headers say, and the connection is
/// reused after each.
#[test]
fn head_204_and_304_have_no_body() {
    let _w = common::timeout(20, "head_204_and_304_have_no_body");
    let _serial = common::ka::serial();
    let server = Server::answering(|req| {
        let path = req.line.split(' ').nth(1).unwrap_or("");
        match path {
            "/204" => b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n".to_vec(),
            "/304" => {
                b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: \"x\"\r\n\r\n".to_vec()
            }
            _ if req.line.starts_with("HEAD") => {
                b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".to_vec()
            }
            _ => ok("body"),
        }
    });
    let head = http::Request::head(server.url("/"))
        .body(Vec::new())
        .unwrap();
    let got = run_serial(
        client(),
        vec![
            Submit::new("response", head),
            Submit::new("response", get(&server.url("/204"))),
            Submit::new("response", get(&server.url("/304"))),
            Submit::new("response", get(&server.url("/"))),
        ],
    );
    let codes: Vec<u16> = got
        .responses
        .iter()
        .map(|(_, r)| r.status().as_u16())
        .collect();
    assert_eq!(codes, [200, 204, 304, 200]);
    assert!(got.responses[..3].iter().all(|(_, r)| r.body().is_empty()));
    assert_eq!(got.responses[0].1.headers()["content-length"], "1000");
    assert_eq!(got.responses[3].1.body(), b"body");
    assert_eq!(server.connections(), 1);
}

/// `Connection: close` from the server, an HTTP/1.0 response, or a request that asks for
/// `Connection: close`: the next request gets a new connection.
#[test]
fn connection_close_and_http10_are_honoured() {
    let _w = common::timeout(20, "connection_close_and_http10_are_honoured");
    let _serial = common::ka::serial();
    let server = Server::answering(|req| match req.line.split(' ').nth(1).unwrap_or("") {
        "/close" => b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok".to_vec(),
        "/10" => b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
        "/10ka" => {
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok".to_vec()
        }
        _ => ok("ok"),
    });
    let asks_close = http::Request::get(server.url("/"))
        .header("connection", "close")
        .body(Vec::new())
        .unwrap();
    let paths = ["/close", "/10", "/10ka", "/", "/"];
    let mut submits: Vec<Submit> = paths
        .iter()
        .map(|p| Submit::new("response", get(&server.url(p))))
        .collect();
    submits.insert(4, Submit::new("response", asks_close));
    let got = run_serial(client(), submits);
    assert!(got.responses.iter().all(|(_, r)| r.body() == b"ok"));
    let conns: Vec<usize> = server.seen().iter().map(|s| s.conn).collect();
    // close -> new; 1.0 -> new; 1.0 keep-alive -> reused; then the request asking close
    // reuses it and closes it; the last one needs a new one.
    assert_eq!(conns, [0, 1, 2, 2, 2, 3]);
}

#[test]
fn max_size_ends_the_request_with_a_406() {
    let _w = common::timeout(20, "max_size_ends_the_request_with_a_406");
    let _serial = common::ka::serial();
    let server = Server::answering(|req| match req.line.split(' ').nth(1).unwrap_or("") {
        "/chunked" => {
            let mut r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            for _ in 0..10 {
                r.extend_from_slice(b"a\r\n0123456789\r\n");
            }
            r.extend_from_slice(b"0\r\n\r\n");
            r
        }
        "/small" => ok("12345"),
        _ => ok(&"x".repeat(100)),
    });
    let fds = common::open_fds();
    let got = run_serial(
        client().max_size(50),
        vec![
            Submit::new("response", get(&server.url("/big"))),
            Submit::new("response", get(&server.url("/chunked"))),
            Submit::new("response", get(&server.url("/small"))),
        ],
    );
    for (_, r) in &got.responses[..2] {
        assert_eq!(r.status(), 406);
        assert_eq!(
            client_error(r),
            Some(&ClientError::TooLarge { max_size: 50 })
        );
        assert!(errmsg(r).contains("MaxSize of 50"), "{}", errmsg(r));
    }
    assert_eq!(got.responses[2].1.body(), b"12345");
    server.wait_all_closed();
    common::assert_no_new_fds(&fds);
}

#[test]
fn a_server_that_never_answers_times_out() {
    let _w = common::timeout(20, "a_server_that_never_answers_times_out");
    let _serial = common::ka::serial();
    let server = Server::start(|p| while p.request().is_some() {});
    let got = run_serial(
        client().timeout(Duration::from_millis(300)),
        vec![Submit::new("response", get(&server.url("/")))],
    );
    let r = &got.responses[0].1;
    assert_eq!(r.status(), 408);
    assert_eq!(errmsg(r), "Request timed out");
    assert_eq!(client_error(r), Some(&ClientError::Timeout));
}

/// One alarm serves every request's deadline: on a virtual clock, a request sent at 0 s and
/// one sent at 4 s, to a server that never answers, time out at exactly 10 s and 14 s
/// (the timeout is 10 s), and once both have, no alarm is left: the kernel ends at 14 s,
/// not later.
#[test]
fn each_request_times_out_at_its_own_deadline() {
    let _w = common::timeout(20, "each_request_times_out_at_its_own_deadline");
    let _serial = common::ka::serial();
    let server = Server::start(|p| while p.request().is_some() {});
    let clock = keepalive::reactor::ManualClock::new();
    let mut kernel = Kernel::builder().clock(clock.clone()).build().unwrap();
    let ua = client().build(&mut kernel).unwrap();
    let url = server.url("/");
    type Heap = (HttpClient, String, Vec<(u32, u16, i64)>);
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let out = seen.clone();
    kernel
        .create(
            Session::new((ua, url, Vec::new()))
                .on("_start", |ctx: &mut Ctx<'_, Heap>| {
                    let (ua, url) = (ctx.heap().0.clone(), ctx.heap().1.clone());
                    ua.submit(ctx, Submit::new("response", get(&url)).tag(1u32))
                        .unwrap();
                    ctx.delay("second", 4.0, ()).unwrap();
                })
                .on("second", |ctx: &mut Ctx<'_, Heap>| {
                    let (ua, url) = (ctx.heap().0.clone(), ctx.heap().1.clone());
                    ua.submit(ctx, Submit::new("response", get(&url)).tag(2u32))
                        .unwrap();
                })
                .on("response", move |ctx: &mut Ctx<'_, Heap>| {
                    let packet: RequestPacket = ctx.take_arg(0).unwrap();
                    let r: http::Response<Vec<u8>> = ctx.take_arg(1).unwrap();
                    let at = ctx.kernel().monotime();
                    out.borrow_mut()
                        .push((*packet.tag::<u32>().unwrap(), r.status().as_u16(), at));
                    if out.borrow().len() == 2 {
                        let ua = ctx.heap().0.clone();
                        ua.shutdown(ctx);
                    }
                }),
        )
        .unwrap();
    kernel.run().unwrap();
    // In milliseconds: an event posted at a time is dispatched a nanosecond or two later.
    let ms = |t: i64| t / 1_000_000;
    let seen: Vec<_> = seen
        .borrow()
        .iter()
        .map(|&(t, c, at)| (t, c, ms(at)))
        .collect();
    assert_eq!(seen, vec![(1, 408, 10_000), (2, 408, 14_000)]);
    assert_eq!(ms(kernel.monotime()), 14_000, "no alarm left behind");
}

#[test]
fn malformed_responses_are_406() {
    let _w = common::timeout(20, "malformed_responses_are_406");
    let _serial = common::ka::serial();
    let server = Server::answering(|req| match req.line.split(' ').nth(1).unwrap_or("") {
        "/header" => b"HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n".to_vec(),
        "/length" => b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\nx".to_vec(),
        "/chunk" => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
        _ => b"SSH-2.0-OpenSSH_9.0\r\n".to_vec(),
    });
    let paths = ["/header", "/length", "/chunk", "/ssh"];
    let got = run_serial(
        client(),
        paths
            .iter()
            .map(|p| Submit::new("response", get(&server.url(p))))
            .collect(),
    );
    for (_, r) in &got.responses {
        assert_eq!(r.status(), 406);
        assert!(matches!(client_error(r), Some(ClientError::Malformed(_))));
        assert!(r.headers().contains_key("x-pcch-peer"));
    }
}

#[test]
fn truncated_responses_are_400() {
    let _w = common::timeout(20, "truncated_responses_are_400");
    let _serial = common::ka::serial();
    let server = Server::start(|p| match p.conn {
        0 => {
            p.request();
            p.send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
        }
        1 => {
            p.request();
        }
        _ => {
            p.request();
            p.send(b"HTTP/1.1 200 OK\r\nContent-Le");
        }
    });
    let got = run_serial(
        client(),
        (0..3)
            .map(|_| Submit::new("response", get(&server.url("/"))))
            .collect(),
    );
    let errors: Vec<_> = got
        .responses
        .iter()
        .map(|(_, r)| (r.status().as_u16(), client_error(r).cloned()))
        .collect();
    assert_eq!(
        errors[0],
        (
            400,
            Some(ClientError::Incomplete {
                expected: Some(10),
                received: 3
            })
        )
    );
    assert_eq!(errors[1], (400, Some(ClientError::NoResponse)));
    assert_eq!(errors[2].0, 406);
}

#[test]
fn connect_errors_are_500_with_pocos_message() {
    let _w = common::timeout(20, "connect_errors_are_500_with_pocos_message");
    let _serial = common::ka::serial();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let got = run_serial(
        client(),
        vec![Submit::new(
            "response",
            get(&format!("http://127.0.0.1:{port}/")),
        )],
    );
    let r = &got.responses[0].1;
    assert_eq!(r.status(), 500);
    assert_eq!(
        errmsg(r),
        format!("Connection to 127.0.0.1:{port} failed: connect error 111: Connection refused")
    );
    assert!(String::from_utf8_lossy(r.body()).contains("This is a client error"));
}

#[test]
fn bad_uris_are_400() {
    let _w = common::timeout(20, "bad_uris_are_400");
    let _serial = common::ka::serial();
    let ftp = http::Request::get("ftp://127.0.0.1/x")
        .body(Vec::new())
        .unwrap();
    let nohost = http::Request::get("/relative").body(Vec::new()).unwrap();
    let got = run_serial(
        client(),
        vec![
            Submit::new("response", ftp),
            Submit::new("response", nohost),
        ],
    );
    assert_eq!(got.responses[0].1.status(), 400);
    assert_eq!(errmsg(&got.responses[0].1), "Unsupported URI scheme: 'ftp'");
    assert_eq!(got.responses[1].1.status(), 400);
}

#[test]
fn redirects_are_followed_up_to_the_limit() {
    let _w = common::timeout(20, "redirects_are_followed_up_to_the_limit");
    let _serial = common::ka::serial();
    let server = Server::answering(|req| {
        let path = req.line.split(' ').nth(1).unwrap_or("").to_owned();
        let n: u32 = path.trim_start_matches("/hop").parse().unwrap_or(0);
        if path == "/see-other" {
            return b"HTTP/1.1 303 See Other\r\nLocation: /hop9\r\nContent-Length: 0\r\n\r\n"
                .to_vec();
        }
        if n < 3 {
            format!(
                "HTTP/1.1 302 Found\r\nLocation: /hop{}\r\nContent-Length: 5\r\n\r\nmoved",
                n + 1
            )
            .into_bytes()
        } else {
            ok(&format!("landed {n}"))
        }
    });
    let post = http::Request::post(server.url("/see-other"))
        .header("cookie", "secret=1")
        .body(b"form".to_vec())
        .unwrap();
    let got = run_serial(
        client().follow_redirects(3),
        vec![
            Submit::new("response", get(&server.url("/hop0"))),
            Submit::new("response", get(&server.url("/hop1"))),
            Submit::new("response", post),
        ],
    );
    let r = &got.responses[0].1;
    assert_eq!(r.body(), b"landed 3");
    let hist = r.extensions().get::<keepalive::Redirects>().unwrap();
    assert_eq!(hist.0.len(), 3);
    assert_eq!(got.responses[1].1.body(), b"landed 3");
    // 303 after a POST: a GET without the body or the cookie.
    assert_eq!(got.responses[2].1.body(), b"landed 9");
    let seen = server.seen();
    let last = seen.last().unwrap();
    assert_eq!(last.line, "GET /hop9 HTTP/1.1");
    assert!(last.header("cookie").is_none() && last.body.is_empty());
    // Redirect bodies were read to their end: everything on one connection.
    assert_eq!(server.connections(), 1);

    // One hop too many: the redirect itself comes back, marked.
    let got = run_serial(
        client().follow_redirects(1),
        vec![Submit::new("response", get(&server.url("/hop0")))],
    );
    let r = &got.responses[0].1;
    assert_eq!(r.status(), 302);
    assert_eq!(client_error(r), Some(&ClientError::TooManyRedirects(1)));
}

/// A request the server closed on as it was reused (before any byte of response) is sent
/// again, once, on a new connection.
#[test]
fn an_idempotent_request_is_retried_once_on_a_fresh_connection() {
    let _w = common::timeout(
        20,
        "an_idempotent_request_is_retried_once_on_a_fresh_connection",
    );
    let _serial = common::ka::serial();
    let server = Server::start(|p| {
        if p.conn == 0 {
            p.request();
            p.send(&ok("first"));
            p.request(); // then closes without answering
        } else {
            while p.request().is_some() {
                p.send(&ok("again"));
            }
        }
    });
    let post = http::Request::post(server.url("/"))
        .body(b"x".to_vec())
        .unwrap();
    let got = run_serial(
        client(),
        vec![
            Submit::new("response", get(&server.url("/"))),
            Submit::new("response", get(&server.url("/"))),
            Submit::new("response", post),
        ],
    );
    assert_eq!(got.responses[0].1.body(), b"first");
    assert_eq!(got.responses[1].1.body(), b"again");
    assert_eq!(got.responses[2].1.body(), b"again");
    assert_eq!(server.connections(), 2);
}

#[test]
fn a_post_on_a_reused_socket_is_not_retried() {
    let _w = common::timeout(20, "a_post_on_a_reused_socket_is_not_retried");
    let _serial = common::ka::serial();
    let server = Server::start(|p| {
        if p.conn == 0 {
            p.request();
            p.send(&ok("first"));
            p.request();
        } else {
            while p.request().is_some() {
                p.send(&ok("again"));
            }
        }
    });
    let post = http::Request::post(server.url("/"))
        .body(b"x".to_vec())
        .unwrap();
    let got = run_serial(
        client(),
        vec![
            Submit::new("response", get(&server.url("/"))),
            Submit::new("response", post),
        ],
    );
    assert_eq!(got.responses[1].1.status(), 400);
    assert_eq!(
        client_error(&got.responses[1].1),
        Some(&ClientError::NoResponse)
    );
}

#[test]
fn gzip_and_deflate_bodies_are_decoded() {
    use flate2::write::{GzEncoder, ZlibEncoder};
    use std::io::Write;
    let _w = common::timeout(20, "gzip_and_deflate_bodies_are_decoded");
    let _serial = common::ka::serial();
    let text = "compressible ".repeat(500);
    let mut g = GzEncoder::new(Vec::new(), flate2::Compression::default());
    g.write_all(text.as_bytes()).unwrap();
    let gz = g.finish().unwrap();
    let mut z = ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(text.as_bytes()).unwrap();
    let zl = z.finish().unwrap();
    let server = Server::answering(move |req| {
        let (coding, body) = if req.line.contains("/gz") {
            ("gzip", &gz)
        } else {
            ("deflate", &zl)
        };
        assert_eq!(req.header("accept-encoding"), Some("gzip, deflate"));
        let mut r = format!(
            "HTTP/1.1 200 OK\r\nContent-Encoding: {coding}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        r
    });
    let got = run_serial(
        client().accept_encoding(true),
        vec![
            Submit::new("response", get(&server.url("/gz"))),
            Submit::new("response", get(&server.url("/deflate"))),
        ],
    );
    for (_, r) in &got.responses {
        assert_eq!(r.body(), text.as_bytes());
        assert!(r.headers().get("content-encoding").is_none());
    }
}

#[test]
fn streaming_delivers_chunks_then_the_end() {
    let _w = common::timeout(20, "streaming_delivers_chunks_then_the_end");
    let _serial = common::ka::serial();
    let server = Server::start(|p| {
        p.request();
        p.send(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello");
        p.send(b" world");
    });
    let got = run_serial(
        client().streaming(true),
        vec![Submit::new("response", get(&server.url("/"))).progress("progress")],
    );
    let mut all = Vec::new();
    for c in got.chunks.iter().flatten() {
        all.extend_from_slice(c);
    }
    assert_eq!(all, b"hello world");
    assert_eq!(got.chunks.last(), Some(&None));
    assert_eq!(got.responses.len(), 1);
    let last = got.progress.last().unwrap();
    assert_eq!((last.received, last.total), (11, Some(11)));
}

#[test]
fn cancel_answers_with_a_408_and_nothing_else() {
    let _w = common::timeout(20, "cancel_answers_with_a_408_and_nothing_else");
    let _serial = common::ka::serial();
    let server = Server::start(|p| while p.request().is_some() {});
    let fds = common::open_fds();
    let url = server.url("/");
    let mut kernel = Kernel::new().unwrap();
    let ua = HttpClient::builder()
        .alias("ua")
        .build(&mut kernel)
        .unwrap();
    let responses = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let r2 = responses.clone();
    kernel
        .create(
            Session::new(None)
                .on(
                    "_start",
                    move |ctx: &mut Ctx<'_, Option<keepalive::ReqId>>| {
                        let id = ua.request(ctx, "response", get(&url)).unwrap();
                        *ctx.heap() = Some(id);
                        // Cancel once the request is on the wire (the server has it).
                        ctx.delay("cancel", 0.1, ()).unwrap();
                    },
                )
                .on("cancel", |ctx: &mut Ctx<'_, Option<keepalive::ReqId>>| {
                    let id = ctx.heap().unwrap();
                    let n: usize = ctx
                        .call("ua", "pending_requests_count", ())
                        .unwrap()
                        .take()
                        .unwrap();
                    assert_eq!(n, 1);
                    ctx.post("ua", "cancel", (id,)).unwrap();
                })
                .on(
                    "response",
                    move |ctx: &mut Ctx<'_, Option<keepalive::ReqId>>| {
                        let r: http::Response<Vec<u8>> = ctx.take_arg(1).unwrap();
                        r2.borrow_mut().push(r);
                        ctx.post("ua", "shutdown", ()).unwrap();
                    },
                ),
        )
        .unwrap();
    kernel.run().unwrap();
    let responses = responses.borrow();
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].status(), 408);
    assert_eq!(
        errmsg(&responses[0]),
        "Request timed out (request canceled)"
    );
    drop(kernel);
    server.wait_all_closed();
    common::assert_no_new_fds(&fds);
}

/// Shutdown answers every pending request (408, component shut down), and so is every
/// request after it; the kernel then runs out of work.
#[test]
fn shutdown_answers_everything_pending() {
    let _w = common::timeout(20, "shutdown_answers_everything_pending");
    let _serial = common::ka::serial();
    let server = Server::start(|p| while p.request().is_some() {});
    let url = server.url("/");
    let mut kernel = Kernel::new().unwrap();
    HttpClient::builder()
        .alias("ua")
        .build(&mut kernel)
        .unwrap();
    let got = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let g2 = got.clone();
    kernel
        .create(
            Session::new(())
                .on("_start", move |ctx: &mut Ctx<'_, ()>| {
                    for i in 0..5u32 {
                        ctx.post("ua", "request", ("response", get(&url), i))
                            .unwrap();
                    }
                    ctx.delay("stop", 0.1, ()).unwrap();
                })
                .on("stop", |ctx: &mut Ctx<'_, ()>| {
                    ctx.post("ua", "shutdown", ()).unwrap();
                })
                .on("response", move |ctx: &mut Ctx<'_, ()>| {
                    let p: RequestPacket = ctx.take_arg(0).unwrap();
                    let r: http::Response<Vec<u8>> = ctx.take_arg(1).unwrap();
                    g2.borrow_mut().push((
                        *p.tag::<u32>().unwrap(),
                        r.status().as_u16(),
                        errmsg(&r),
                    ));
                }),
        )
        .unwrap();
    kernel.run().unwrap();
    let mut got = got.borrow().clone();
    got.sort();
    assert_eq!(got.len(), 5);
    for (i, (tag, code, msg)) in got.iter().enumerate() {
        assert_eq!(*tag, i as u32);
        assert_eq!(*code, 408);
        assert_eq!(msg, "Request timed out (component shut down)");
    }
}

#[test]
fn many_requests_in_parallel_each_get_one_response() {
    let _w = common::timeout(30, "many_requests_in_parallel_each_get_one_response");
    let _serial = common::ka::serial();
    let server = Server::answering(|req| ok(req.line.split(' ').nth(1).unwrap()));
    let fds = common::open_fds();
    let submits = (0..200)
        .map(|i| Submit::new("response", get(&server.url(&format!("/{i}")))).tag(i))
        .collect();
    let got = run_parallel(client(), submits);
    assert_eq!(got.responses.len(), 200);
    let mut tags: Vec<i32> = got
        .responses
        .iter()
        .map(|(p, r)| {
            let t = *p.tag::<i32>().unwrap();
            assert_eq!(r.body(), format!("/{t}").as_bytes());
            t
        })
        .collect();
    tags.sort_unstable();
    assert_eq!(tags, (0..200).collect::<Vec<_>>());
    // The manager's default limit: at most 4 connections to one host.
    assert!(server.connections() <= 4, "{}", server.connections());
    server.wait_all_closed();
    common::assert_no_new_fds(&fds);
}

/// A server's `Keep-Alive: timeout=1` hint leaves the socket at most 0 s in the pool: the
/// next request takes a new connection instead of racing the server's close.
#[test]
fn a_keep_alive_timeout_hint_shortens_the_idle_life() {
    let _w = common::timeout(20, "a_keep_alive_timeout_hint_shortens_the_idle_life");
    let _serial = common::ka::serial();
    let server = Server::answering(|req| {
        if req.line.contains("/hint") {
            b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1\r\nContent-Length: 2\r\n\r\nok".to_vec()
        } else {
            b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=30\r\nContent-Length: 2\r\n\r\nok".to_vec()
        }
    });
    let got = run_serial(
        client(),
        ["/x", "/x", "/hint", "/x"]
            .iter()
            .map(|p| Submit::new("response", get(&server.url(p))))
            .collect(),
    );
    assert_eq!(got.responses.len(), 4);
    let conns: Vec<usize> = server.seen().iter().map(|s| s.conn).collect();
    assert_eq!(conns, [0, 0, 0, 1]);
}

/// A cookie jar keeps what responses set and sends it back where it belongs.
#[test]
fn a_cookie_jar_keeps_and_sends_cookies() {
    let _w = common::timeout(20, "a_cookie_jar_keeps_and_sends_cookies");
    let _serial = common::ka::serial();
    let server = Server::answering(|req| {
        if req.line.contains("/login") {
            b"HTTP/1.1 200 OK\r\nSet-Cookie: session=abc; Path=/\r\nSet-Cookie: narrow=1; Path=/admin\r\nContent-Length: 0\r\n\r\n".to_vec()
        } else {
            ok(req.header("cookie").unwrap_or("none"))
        }
    });
    let jar: keepalive::CookieJar = std::rc::Rc::default();
    let got = run_serial(
        client().cookie_jar(jar.clone()),
        vec![
            Submit::new("response", get(&server.url("/"))),
            Submit::new("response", get(&server.url("/login"))),
            Submit::new("response", get(&server.url("/page"))),
            Submit::new("response", get(&server.url("/admin/x"))),
        ],
    );
    assert_eq!(got.responses[0].1.body(), b"none");
    assert_eq!(got.responses[2].1.body(), b"session=abc");
    let admin = String::from_utf8(got.responses[3].1.body().clone()).unwrap();
    let mut parts: Vec<&str> = admin.split("; ").collect();
    parts.sort_unstable();
    assert_eq!(parts, ["narrow=1", "session=abc"]);
    assert_eq!(jar.borrow().iter_unexpired().count(), 2);
}

/// https through a proxy: the manager asks for a `CONNECT` tunnel, then speaks TLS to
/// the origin through it (certificate checked for the origin's name), and the tunnel is
/// pooled under the origin. A proxy that refuses the tunnel is an error response.
#[test]
fn https_through_a_connect_proxy() {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use std::io::{BufRead, Read, Write};
    use std::sync::Arc;
    let _w = common::timeout(20, "https_through_a_connect_proxy");
    let _serial = common::ka::serial();
    let ck = rcgen::generate_simple_self_signed(vec!["origin.test".to_owned()]).unwrap();
    let cert = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap(),
    );
    // The proxy: answers CONNECT for origin.test:443, then is the origin itself (TLS and
    // HTTP on the tunnel), which is all a client can see of a tunnel.
    let proxy = Server::start(move |p| {
        let mut line = String::new();
        p.reader.read_line(&mut line).unwrap();
        let mut h = String::new();
        while p.reader.read_line(&mut h).is_ok_and(|n| n > 2) {
            h.clear();
        }
        if !line.starts_with("CONNECT origin.test:443 ") {
            p.send(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
            return;
        }
        p.send(b"HTTP/1.1 200 Connection established\r\n\r\n");
        let conn = rustls::ServerConnection::new(config.clone()).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, p.stream.try_clone().unwrap());
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                buf.drain(..end + 4);
                let body = "secret over tls";
                let r = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                if tls.write_all(r.as_bytes()).is_err() {
                    return;
                }
            }
            match tls.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    });
    let roots = keepalive::tls::client_config_with_roots([cert]).unwrap();
    let got = run_serial(
        client().proxy(&proxy.url("")).tls_config(roots),
        vec![
            Submit::new("response", get("https://origin.test/a")),
            Submit::new("response", get("https://origin.test/b")),
            Submit::new("response", get("https://elsewhere.test/")),
        ],
    );
    for (_, r) in &got.responses[..2] {
        assert_eq!(r.status(), 200, "{}", errmsg(r));
        assert_eq!(r.body(), b"secret over tls");
    }
    // One tunnel served both requests.
    assert_eq!(proxy.seen().len(), 0);
    assert_eq!(got.pool.connected, 1);
    assert_eq!(got.pool.immediate, 1);
    assert_eq!(got.pool.connect_failures, 1);
    let refused = &got.responses[2].1;
    assert_eq!(refused.status(), 500);
    assert!(
        errmsg(refused).contains("CONNECT refused: 403"),
        "{}",
        errmsg(refused)
    );
}

/// `BindAddr`: new connections come from the address asked for.
#[test]
fn bind_addr_sets_the_local_address() {
    let _w = common::timeout(20, "bind_addr_sets_the_local_address");
    let _serial = common::ka::serial();
    let server = Server::start(|p| {
        let from = p.stream.peer_addr().unwrap().ip().to_string();
        while p.request().is_some() {
            p.send(&ok(&from));
        }
    });
    let got = run_serial(
        client().bind_addr("127.0.0.2".parse().unwrap()),
        vec![Submit::new("response", get(&server.url("/")))],
    );
    assert_eq!(got.responses[0].1.body(), b"127.0.0.2");
}

/// Requests without headers of their own get `Host`, `User-Agent` and `Accept-Encoding`,
/// in that order, each its own agent in turn and its own server's `Host`, however many
/// come one after another (the client keeps the last such map to copy).
#[test]
fn bare_requests_get_the_headers_the_client_adds_in_order() {
    let _w = common::timeout(20, "bare_requests_get_the_headers_the_client_adds_in_order");
    let _serial = common::ka::serial();
    let a = Server::answering(|_| ok("a"));
    let b = Server::answering(|_| ok("b"));
    // Several agents in turn, and one agent (the same map again and again).
    for agent_list in [&["one/1", "two/2", "three/3"][..], &["one/1"][..]] {
        let mut submits = Vec::new();
        for i in 0..8 {
            let server = if i < 3 || i == 5 { &a } else { &b };
            submits.push(Submit::new("response", get(&server.url("/"))));
        }
        // One with a header of its own among them: built as before.
        let mut own = get(&a.url("/"));
        own.headers_mut()
            .insert("x-own", http::HeaderValue::from_static("1"));
        submits.insert(4, Submit::new("response", own));
        let got = run_serial(
            client()
                .agents(agent_list.iter().copied())
                .accept_encoding(true),
            submits,
        );
        assert_eq!(got.responses.len(), 9);
        let mut agents = Vec::new();
        for (packet, _) in &got.responses {
            let req = packet.request();
            let port = req.uri().port_u16().unwrap();
            let names: Vec<&str> = req.headers().keys().map(|n| n.as_str()).collect();
            if req.headers().contains_key("x-own") {
                assert_eq!(names, ["x-own", "host", "user-agent", "accept-encoding"]);
            } else {
                assert_eq!(names, ["host", "user-agent", "accept-encoding"]);
            }
            assert_eq!(req.headers()["host"], format!("127.0.0.1:{port}").as_str());
            assert_eq!(req.headers()["accept-encoding"], "gzip, deflate");
            agents.push(req.headers()["user-agent"].to_str().unwrap().to_owned());
        }
        let turn: Vec<String> = agent_list
            .iter()
            .cycle()
            .take(9)
            .map(|s| s.to_string())
            .collect();
        assert_eq!(agents, turn);
    }
}
