/work/main/benches/http/target/release/deps/try_lock-6ed9c232ba77a53c.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/try-lock-0.2.5/src/lib.rs

/work/main/benches/http/target/release/deps/libtry_lock-6ed9c232ba77a53c.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/try-lock-0.2.5/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/try-lock-0.2.5/src/lib.rs:
