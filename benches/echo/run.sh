#!/bin/sh
# Builds everything the echo benchmark needs and runs it; arguments go to the runner, e.g.
#   benches/echo/run.sh --conns "10 100" --servers "mio reactor poe"
# Needs: perl with POE (libpoe-perl), util-linux (taskset), linux-perf, valgrind.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
main=$(cd "$here/../.." && pwd)
cd "$here"
cargo build --release --bins
# The same binaries for callgrind: rustix's vDSO lookup crashes under valgrind
# (rustix issue #1559), so these use the libc backend.
RUSTFLAGS="--cfg rustix_use_libc" cargo build --release --bins --target-dir target/valgrind
if [ -f "$main/examples/echo_server.rs" ]; then
    (cd "$main" && cargo build --release --example echo_server) &&
    (cd "$main" && RUSTFLAGS="--cfg rustix_use_libc" cargo build --release --example echo_server \
        --target-dir "$here/target/valgrind-main") ||
    echo "examples/echo_server does not build: not measured" >&2
fi
exec "$here/target/release/bench" "$@"
