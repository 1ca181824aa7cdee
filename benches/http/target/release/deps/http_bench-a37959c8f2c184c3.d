/work/main/benches/http/target/release/deps/http_bench-a37959c8f2c184c3.d: src/main.rs Cargo.toml

/work/main/benches/http/target/release/deps/libhttp_bench-a37959c8f2c184c3.rmeta: src/main.rs Cargo.toml

src/main.rs:
Cargo.toml:

# env-dep:CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__
# env-dep:CLIPPY_CONF_DIR
