# Sourced by the HTTP benchmarks (benches/keepalive/run.sh, benches/http/run.sh): a
# private nginx for the run, pinned to CPU 0, stopped and cleaned up on exit. Expects
# nginx_bin to be set.

# --- nginx ------------------------------------------------------------------------------
prefix=$(mktemp -d "${TMPDIR:-/tmp}/keepalive-bench-nginx.XXXXXX")
nginx_pid=
cleanup() {
    if [ -n "$nginx_pid" ] && kill -0 "$nginx_pid" 2>/dev/null; then
        kill -TERM "$nginx_pid" 2>/dev/null || true
        for _ in $(seq 300); do
            kill -0 "$nginx_pid" 2>/dev/null || break
            sleep 0.01
        done
        kill -KILL "$nginx_pid" 2>/dev/null || true
        wait "$nginx_pid" 2>/dev/null || true
    fi
    rm -rf "$prefix"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    perl -MIO::Socket::INET -e \
        'my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 1, ReuseAddr => 0) or die "bind: $!\n"; print $s->sockport, "\n"'
}

write_config() {
    local port=$1 user=
    [ "$(id -u)" = 0 ] && user="user root;"
    mkdir -p "$prefix/logs" "$prefix/tmp"
    cat >"$prefix/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
$user
pid $prefix/nginx.pid;
error_log $prefix/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $prefix/tmp/client_body;
    proxy_temp_path $prefix/tmp/proxy;
    fastcgi_temp_path $prefix/tmp/fastcgi;
    uwsgi_temp_path $prefix/tmp/uwsgi;
    scgi_temp_path $prefix/tmp/scgi;
    default_type text/plain;
    keepalive_requests 100000;
    keepalive_timeout 75s;
    server {
        listen 127.0.0.1:$port;
        location / { return 200 "hello\n"; }
    }
}
EOF
}

# Starts nginx on a free port; retries with another port if it cannot bind.
port=
for attempt in 1 2 3 4 5; do
    candidate=$(free_port)
    write_config "$candidate"
    rm -f "$prefix/nginx.pid"
    taskset -c 0 "$nginx_bin" -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/logs/error.log" \
        </dev/null >/dev/null 2>>"$prefix/logs/stderr.log" &
    nginx_pid=$!
    # Ready when the pid file exists (written after binding) and the port accepts.
    for _ in $(seq 500); do
        kill -0 "$nginx_pid" 2>/dev/null || break
        if [ -s "$prefix/nginx.pid" ] && (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
            port=$candidate
            break
        fi
        sleep 0.01
    done
    [ -n "$port" ] && break
    kill -KILL "$nginx_pid" 2>/dev/null || true
    wait "$nginx_pid" 2>/dev/null || true
    nginx_pid=
    grep -q "Address already in use" "$prefix/logs/error.log" "$prefix/logs/stderr.log" 2>/dev/null || break
done
if [ -z "$port" ]; then
    echo "nginx did not start:" >&2
    cat "$prefix/logs/stderr.log" "$prefix/logs/error.log" >&2 2>/dev/null || true
    exit 1
fi
url="http://127.0.0.1:$port/"
echo "nginx $("$nginx_bin" -v 2>&1 | sed 's/.*\///') on $url (pid $nginx_pid, CPU 0); clients on CPU 1" >&2
