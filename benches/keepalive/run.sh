#!/usr/bin/env bash
# Keep-alive HTTP client benchmark against a local nginx: wrk (the ceiling), the Rust demo
# (examples/demo.rs, on this crate's connection manager) and the Perl original
# (perl_keepalive.pl, on POE::Component::Client::Keepalive), each making GETs of a small
# response with C connections in flight. nginx is pinned to CPU 0 and the clients to CPU 1.
#
# Usage: benches/keepalive/run.sh
# Environment: CONNS ("1 8 64"), DURATION (wrk seconds, 5), REQUESTS (demo, 200000),
#              PERL_REQUESTS (20000), CLIENT_TIMEOUT (seconds per client run, 600),
#              NGINX (/usr/sbin/nginx), WRK (wrk).
# Needs: nginx, wrk, util-linux (taskset), perl with POE and POE::Component::Client::Keepalive.
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
demo="$main/target/release/examples/demo"

command -v "$nginx_bin" >/dev/null || { echo "nginx not found at $nginx_bin: install nginx or set NGINX" >&2; exit 1; }
command -v "$wrk_bin" >/dev/null || { echo "wrk not found: install wrk or set WRK" >&2; exit 1; }
command -v taskset >/dev/null || { echo "taskset not found: install util-linux" >&2; exit 1; }

# --- the demo ---------------------------------------------------------------------------
if ! (cd "$main" && cargo build --release --example demo >&2); then
    echo "examples/demo does not build: its columns are n/a" >&2
fi
have_demo=0
[ -x "$demo" ] && have_demo=1

# --- nginx ------------------------------------------------------------------------------
. "$here/../nginx.sh"

# --- measurements -----------------------------------------------------------------------
# field NAME LINE: the value of NAME=... in a result line, or empty.
field() { sed -n "s/.*\\b$1=\\([0-9.]*\\).*/\\1/p" <<<"$2"; }
ratio() { if [ -n "$1" ] && [ -n "$2" ]; then awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; else echo n/a; fi; }
or_na() { if [ -n "$1" ]; then echo "$1"; else echo n/a; fi; }
RESULT_RE='^requests=[0-9]+ errors=[0-9]+ new_connections=[0-9]+ reused=[0-9]+ rps=[0-9.]+ '

rows=()
for c in $conns; do
    echo "C=$c: wrk ${duration}s" >&2
    wrk_out=$(taskset -c 1 "$wrk_bin" -t1 -c"$c" -d"${duration}s" "$url" 2>&1) || true
    wrk_rps=$(sed -n 's/^Requests\/sec:[[:space:]]*\([0-9.]*\).*/\1/p' <<<"$wrk_out")
    [ -n "$wrk_rps" ] || echo "wrk gave no Requests/sec: $wrk_out" >&2
    wrk_rps=$(awk -v x="$wrk_rps" 'BEGIN { if (x != "") printf "%.0f", x }')

    demo_rps= demo_reuse=
    if [ "$have_demo" = 1 ]; then
        echo "C=$c: demo -n $requests" >&2
        demo_line=$(timeout "$client_timeout" taskset -c 1 "$demo" --url "$url" -n "$requests" -c "$c" 2>/dev/null | tail -n 1) || true
        if grep -Eq "$RESULT_RE" <<<"$demo_line"; then
            echo "  $demo_line" >&2
            demo_rps=$(field rps "$demo_line")
            demo_reuse=$(awk -v r="$(field reused "$demo_line")" -v n="$(field requests "$demo_line")" \
                'BEGIN { if (n > 0) printf "%.1f", 100 * r / n }')
        else
            echo "  demo gave no result line: $demo_line" >&2
        fi
    fi

    echo "C=$c: perl -n $perl_requests" >&2
    perl_line=$(timeout "$client_timeout" taskset -c 1 perl "$here/perl_keepalive.pl" --url "$url" -n "$perl_requests" -c "$c" 2>/dev/null | tail -n 1) || true
    perl_rps=
    if grep -Eq "$RESULT_RE" <<<"$perl_line"; then
        echo "  $perl_line" >&2
        perl_rps=$(field rps "$perl_line")
    else
        echo "  perl gave no result line: $perl_line" >&2
    fi

    rows+=("| $c | $(or_na "$wrk_rps") | $(or_na "$demo_rps") | $(ratio "$demo_rps" "$wrk_rps") | $(or_na "$perl_rps") | $(ratio "$demo_rps" "$perl_rps") | $(or_na "$demo_reuse") |")
done

echo
echo "| C | wrk req/s | demo req/s | demo/wrk | perl req/s | demo/perl | demo reuse % |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
