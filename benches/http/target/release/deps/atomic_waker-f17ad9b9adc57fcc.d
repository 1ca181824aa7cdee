/work/main/benches/http/target/release/deps/atomic_waker-f17ad9b9adc57fcc.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/atomic-waker-1.1.2/src/lib.rs

/work/main/benches/http/target/release/deps/libatomic_waker-f17ad9b9adc57fcc.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/atomic-waker-1.1.2/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/atomic-waker-1.1.2/src/lib.rs:
