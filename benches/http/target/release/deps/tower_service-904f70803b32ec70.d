/work/main/benches/http/target/release/deps/tower_service-904f70803b32ec70.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tower-service-0.3.3/src/lib.rs

/work/main/benches/http/target/release/deps/libtower_service-904f70803b32ec70.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tower-service-0.3.3/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tower-service-0.3.3/src/lib.rs:
