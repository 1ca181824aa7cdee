//! The HTTP client against a real server: nginx on a free loopback port with its own
//! configuration (`common::nginx`). Bodies from 0 bytes to 10 MiB, chunked bodies (nginx's
//! gzip filter sends them so), redirects, HEAD, and connection reuse with
//! `keepalive_requests 5`.

mod common;

use common::nginx::{gzip_text, sized_body, Nginx, NginxConfig, SIZES};
use common::web::{get, run_parallel, run_serial};
use keepalive::{HttpClient, Redirects, Submit};
use std::time::Duration;

fn url(n: &Nginx, path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", n.port())
}

fn client() -> keepalive::HttpClientBuilder {
    HttpClient::builder().timeout(Duration::from_secs(20))
}

#[test]
fn bodies_from_0_bytes_to_10_mib() {
    let _w = common::timeout(60, "bodies_from_0_bytes_to_10_mib");
    let _s = common::ka::serial();
    let nginx = Nginx::start(NginxConfig {
        sizes: true,
        ..NginxConfig::default()
    })
    .unwrap();
    let fds = common::open_fds();
    let got = run_serial(
        client(),
        SIZES
            .iter()
            .map(|n| Submit::new("response", get(&url(&nginx, &format!("/sizes/{n}")))).tag(*n))
            .collect(),
    );
    assert_eq!(got.responses.len(), SIZES.len());
    for (p, r) in &got.responses {
        let n = *p.tag::<usize>().unwrap();
        assert_eq!(r.status(), 200, "{n}");
        assert_eq!(r.headers()["content-length"], n.to_string().as_str());
        assert!(r.body() == &sized_body(n), "body of {n} bytes differs");
    }
    common::assert_no_new_fds(&fds);
    drop(nginx);
}

#[test]
fn chunked_gzip_bodies_are_decoded() {
    let _w = common::timeout(30, "chunked_gzip_bodies_are_decoded");
    let _s = common::ka::serial();
    let nginx = Nginx::start(NginxConfig::default()).unwrap();
    let text = gzip_text();
    let u = url(&nginx, "/gzip/text.txt");
    // Decoded: the text, with neither Content-Length nor Content-Encoding (nginx chunked it).
    let got = run_serial(
        client().accept_encoding(true),
        (0..3).map(|_| Submit::new("response", get(&u))).collect(),
    );
    for (_, r) in &got.responses {
        assert_eq!(r.status(), 200);
        assert!(r.headers().get("content-length").is_none());
        assert!(r.headers().get("content-encoding").is_none());
        assert!(r.body() == &text);
    }
    // Not decoded: the gzip bytes as sent, de-chunked.
    let req = http::Request::get(u.as_str())
        .header("accept-encoding", "gzip")
        .body(Vec::new())
        .unwrap();
    let got = run_serial(
        client().decode_content(false),
        vec![Submit::new("response", req)],
    );
    let r = &got.responses[0].1;
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert!(r.headers().get("transfer-encoding").is_none());
    assert_eq!(&r.body()[..2], &[0x1f, 0x8b]);
    assert!(r.body().len() < text.len() / 4);
}

#[test]
fn redirects_and_head() {
    let _w = common::timeout(30, "redirects_and_head");
    let _s = common::ka::serial();
    let nginx = Nginx::start(NginxConfig {
        body: b"the index\n".to_vec(),
        ..NginxConfig::default()
    })
    .unwrap();
    let head = http::Request::head(url(&nginx, "/big"))
        .body(Vec::new())
        .unwrap();
    let got = run_serial(
        client().follow_redirects(5),
        vec![
            Submit::new("response", get(&url(&nginx, "/redirect2"))),
            Submit::new("response", head),
            Submit::new("response", get(&url(&nginx, "/"))),
        ],
    );
    let r = &got.responses[0].1;
    assert_eq!(r.status(), 200);
    assert_eq!(r.body(), b"the index\n");
    let hops = r.extensions().get::<Redirects>().unwrap();
    let codes: Vec<u16> = hops.0.iter().map(|h| h.status().as_u16()).collect();
    assert_eq!(codes, [301, 302]);
    let h = &got.responses[1].1;
    assert_eq!(h.status(), 200);
    assert_eq!(h.headers()["content-length"], "1048576");
    assert!(h.body().is_empty());
    assert_eq!(got.responses[2].1.body(), b"the index\n");

    // Without following, the redirect is the response.
    let got = run_serial(
        client(),
        vec![Submit::new("response", get(&url(&nginx, "/redirect")))],
    );
    assert_eq!(got.responses[0].1.status(), 302);
}

/// nginx closes each connection after 5 responses: 40 requests, 8 in flight, all
/// answered, the connections renewed by the pool without an error.
#[test]
fn keepalive_requests_5() {
    let _w = common::timeout(30, "keepalive_requests_5");
    let _s = common::ka::serial();
    let nginx = Nginx::start(NginxConfig {
        keepalive_requests: 5,
        ..NginxConfig::default()
    })
    .unwrap();
    let fds = common::open_fds();
    // Serially: exactly one connection per 5 requests.
    let got = run_serial(
        client(),
        (0..20)
            .map(|_| Submit::new("response", get(&url(&nginx, "/"))))
            .collect(),
    );
    assert!(got
        .responses
        .iter()
        .all(|(_, r)| r.status() == 200 && r.body() == b"hello\n"));
    assert_eq!((got.pool.connected, got.pool.immediate), (4, 16));
    assert_eq!(got.stats.retries, 0);
    // In parallel.
    let got = run_parallel(
        client(),
        (0..40)
            .map(|_| Submit::new("response", get(&url(&nginx, "/"))))
            .collect(),
    );
    assert_eq!(got.responses.len(), 40);
    for (_, r) in &got.responses {
        assert_eq!(r.status(), 200, "{:?}", r.headers().get("x-pcch-errmsg"));
    }
    assert_eq!(got.stats.errors, 0);
    // Four connections at most at once, each good for 5 responses.
    assert!(got.pool.connected >= 8, "{:?}", got.pool);
    common::assert_no_new_fds(&fds);
}
