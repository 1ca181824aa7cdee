/work/main/benches/http/target/release/deps/pin_project_lite-a2cc221e7b6abf23.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/pin-project-lite-0.2.19/src/lib.rs

/work/main/benches/http/target/release/deps/libpin_project_lite-a2cc221e7b6abf23.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/pin-project-lite-0.2.19/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/pin-project-lite-0.2.19/src/lib.rs:
