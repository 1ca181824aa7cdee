/work/main/benches/http/target/release/deps/want-fc0e31223d79225e.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/want-0.3.2/src/lib.rs

/work/main/benches/http/target/release/deps/libwant-fc0e31223d79225e.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/want-0.3.2/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/want-0.3.2/src/lib.rs:
