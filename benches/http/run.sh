#!/usr/bin/env bash
# HTTP client benchmark against a local nginx: wrk -t1 (the ceiling), our client (the demo,
# examples/demo.rs, on HttpClient and the keep-alive manager), POE::Component::Client::HTTP
# (perl_http.pl) and the Rust peer a user would pick instead, hyper-util's pooled client on
# tokio's current_thread runtime (src/main.rs here). GETs of a small response with C in
# flight; nginx is pinned to CPU 0 and the clients to CPU 1. CPU per request is the
# client's user+system time (GNU time) over its requests.
#
# Usage: benches/http/run.sh
# Environment: CONNS ("1 8 64"), DURATION (wrk seconds, 5), REQUESTS (Rust clients, 200000),
#              PERL_REQUESTS (20000), CLIENT_TIMEOUT (600), NGINX, WRK.
# Needs: nginx, wrk, GNU time, util-linux (taskset), perl with POE::Component::Client::HTTP.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
main=$(cd "$here/../.." && pwd)
conns=${CONNS:-"1 8 64"}
duration=${DURATION:-5}
requests=${REQUESTS:-200000}
perl_requests=${PERL_REQUESTS:-20000}
client_timeout=${CLIENT_TIMEOUT:-600}
nginx_bin=${NGINX:-/usr/sbin/nginx}
wrk_bin=${WRK:-wrk}
target=${CARGO_TARGET_DIR:-$main/target}
demo="$target/release/examples/demo"
peer="$target/release/http-bench"

command -v "$nginx_bin" >/dev/null || { echo "nginx not found" >&2; exit 1; }
command -v "$wrk_bin" >/dev/null || { echo "wrk not found" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "GNU time not found (apt-get install time)" >&2; exit 1; }
(cd "$main" && cargo build --release --example demo >&2)
(cd "$here" && CARGO_TARGET_DIR="$target" cargo build --release >&2)

# --- nginx ------------------------------------------------------------------------------
. "$here/../nginx.sh"

# --- measurements -----------------------------------------------------------------------
field() { sed -n "s/.*\\b$1=\\([0-9.]*\\).*/\\1/p" <<<"$2"; }
ratio() { if [ -n "$1" ] && [ -n "$2" ]; then awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; else echo n/a; fi; }

# run NAME N CMD...: runs a client on CPU 1 under GNU time; sets rps and us_per_req (CPU
# microseconds per request).
run() {
    local name=$1 n=$2; shift 2
    local out cpu
    out=$(timeout "$client_timeout" taskset -c 1 /usr/bin/time -f "CPU %U %S" "$@" 2>&1) || true
    cpu=$(sed -n 's/^CPU \([0-9.]*\) \([0-9.]*\)$/\1 \2/p' <<<"$out" | tail -n 1)
    if [ "$name" = wrk ]; then
        rps=$(sed -n 's/^Requests\/sec:[[:space:]]*\([0-9.]*\).*/\1/p' <<<"$out")
        n=$(sed -n 's/^[[:space:]]*\([0-9]*\) requests in.*/\1/p' <<<"$out")
    else
        local line
        line=$(grep -E '^requests=' <<<"$out" | tail -n 1)
        echo "  $name: $line" >&2
        rps=$(field rps "$line")
        local errors; errors=$(field errors "$line")
        [ "${errors:-1}" = 0 ] || echo "  $name: errors=$errors" >&2
    fi
    rps=$(awk -v x="$rps" 'BEGIN { if (x != "") printf "%.0f", x }')
    us_per_req=$(awk -v c="$cpu" -v n="$n" 'BEGIN { split(c, t, " "); if (n > 0) printf "%.2f", (t[1] + t[2]) * 1e6 / n }')
    echo "  $name: rps=$rps cpu_us_per_request=$us_per_req" >&2
}

rows=()
for c in $conns; do
    echo "C=$c" >&2
    run wrk 0 "$wrk_bin" -t1 -c"$c" -d"${duration}s" "$url"; wrk_rps=$rps wrk_cpu=$us_per_req
    run ours "$requests" "$demo" --url "$url" -n "$requests" -c "$c"; our_rps=$rps our_cpu=$us_per_req
    run hyper "$requests" "$peer" --url "$url" -n "$requests" -c "$c"; hy_rps=$rps hy_cpu=$us_per_req
    run perl "$perl_requests" perl "$here/perl_http.pl" --url "$url" -n "$perl_requests" -c "$c"; pl_rps=$rps
    rows+=("| $c | $wrk_rps | $our_rps | $(ratio "$our_rps" "$wrk_rps") | $hy_rps | $(ratio "$our_rps" "$hy_rps") | $pl_rps | $(ratio "$our_rps" "$pl_rps") | $wrk_cpu | $our_cpu | $hy_cpu | $(ratio "$our_cpu" "$hy_cpu") |")
done

echo
echo "| C | wrk req/s | ours req/s | ours/wrk | hyper-util req/s | ours/hyper | POE req/s | ours/POE | wrk CPU µs/req | ours CPU µs/req | hyper CPU µs/req | ours/hyper CPU |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
