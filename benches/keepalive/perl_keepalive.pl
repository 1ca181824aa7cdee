#!/usr/bin/perl
# HTTP/1.1 keep-alive load generator on POE::Component::Client::Keepalive 0.272 (POE 1.370):
# the Perl reference point for examples/demo.rs. Makes N GETs of one URL with C in flight;
# each request allocates a connection from the manager, runs a POE::Wheel::ReadWrite on it
# (POE::Filter::Stream), sends the request, reads one response, and drops the connection
# so that it goes back to the pool.
#
# Usage: perl perl_keepalive.pl --url http://127.0.0.1:8080/ [-n 20000] [-c 8]
# Prints one line at the end:
#   requests=N errors=E new_connections=K reused=R rps=X p50_us=A p99_us=B
# new_connections/reused: responses whose from_cache was undef/defined; rps: successful
# responses per second of wall time (first allocate to last response); p50/p99: latency
# of successful requests from allocate() to the end of the response, in microseconds.
use strict;
use warnings;
use Getopt::Long qw(GetOptions);
use Time::HiRes qw(time);
use POE qw(Filter::Stream);
use POE::Component::Client::Keepalive;

my ($url, $total, $conc) = (undef, 20_000, 8);
GetOptions('url=s' => \$url, 'n=i' => \$total, 'c=i' => \$conc)
  or die "usage: $0 --url http://HOST:PORT/PATH [-n N] [-c C]\n";
die "usage: $0 --url http://HOST:PORT/PATH [-n N] [-c C]\n" unless defined $url;
die "-n and -c must be positive\n" unless $total > 0 && $conc > 0;

my ($host, $port, $path) = $url =~ m{^http://([^/:]+)(?::(\d+))?(/.*)?$}
  or die "unsupported url (want http://HOST:PORT/PATH): $url\n";
$port //= 80;
$path //= '/';
my $request = "GET $path HTTP/1.1\r\nHost: $host:$port\r\n\r\n";

my $cm = POE::Component::Client::Keepalive->new(
  max_per_host => $conc,
  max_open     => $conc * 2,
);

# Counters and results.
my ($issued, $finished, $errors, $new_conns, $reused) = (0, 0, 0, 0, 0);
my @latencies;    # seconds, successful requests only
my ($t_start, $t_end);

# Parses as much of one HTTP/1.1 response as $st->{buf} holds. Returns 1 when the
# response is complete, 0 when more bytes are needed, dies on garbage. Sets $st->{close}
# when the server will close (or has to close) the connection afterwards.
sub response_complete {
  my ($st, $eof) = @_;
  unless (defined $st->{body_at}) {
    my $end = index($st->{buf}, "\r\n\r\n");
    return 0 if $end < 0;
    my $head = substr($st->{buf}, 0, $end);
    my ($status_line, @lines) = split /\r\n/, $head;
    my ($version, $status) = $status_line =~ m{^HTTP/(\d\.\d) (\d{3})}
      or die "bad status line: $status_line\n";
    $st->{status} = $status;
    my %h;
    for (@lines) {
      my ($k, $v) = /^([^:]+):\s*(.*?)\s*$/ or next;
      $h{lc $k} = $v;
    }
    my $conn_hdr = lc($h{connection} // '');
    $st->{close} = ($conn_hdr =~ /\bclose\b/ || ($version eq '1.0' && $conn_hdr !~ /keep-alive/));
    $st->{body_at} = $end + 4;
    if (($h{'transfer-encoding'} // '') =~ /chunked/i) {
      $st->{chunked} = 1;
      $st->{pos} = $st->{body_at};
    }
    elsif (defined $h{'content-length'}) {
      $st->{length} = $h{'content-length'};
    }
    elsif ($status =~ /^(1|204|304)/) {
      $st->{length} = 0;
    }
    else {
      $st->{close} = 1;    # delimited by EOF
    }
  }
  if (defined $st->{length}) {
    return length($st->{buf}) >= $st->{body_at} + $st->{length} ? 1 : 0;
  }
  if ($st->{chunked}) {
    while (1) {
      my $eol = index($st->{buf}, "\r\n", $st->{pos});
      return 0 if $eol < 0;
      my ($size) = substr($st->{buf}, $st->{pos}, $eol - $st->{pos}) =~ /^([0-9a-fA-F]+)/
        or die "bad chunk size\n";
      $size = hex $size;
      if ($size == 0) {
        # Trailers end with an empty line.
        return index($st->{buf}, "\r\n\r\n", $eol - 2) >= 0 ? 1 : 0;
      }
      my $next = $eol + 2 + $size + 2;
      return 0 if length($st->{buf}) < $next;
      $st->{pos} = $next;
    }
  }
  return $eof ? 1 : 0;
}

POE::Session->create(
  inline_states => {
    _start => sub {
      $t_start = time;
      $_[KERNEL]->yield('next_request') for 1 .. ($conc < $total ? $conc : $total);
    },

    next_request => sub {
      return if $issued >= $total;
      $issued++;
      $cm->allocate(
        scheme  => 'http',
        addr    => $host,
        port    => $port,
        event   => 'got_connection',
        context => { t0 => time },
        timeout => 30,
      );
    },

    got_connection => sub {
      my ($kernel, $heap, $r) = @_[KERNEL, HEAP, ARG0];
      my $conn = $r->{connection};
      unless (defined $conn) {
        warn "allocate: $r->{function} error $r->{error_num}: $r->{error_str}\n"
          if $errors++ < 5;
        $kernel->yield('finished');
        return;
      }
      if (defined $r->{from_cache}) { $reused++ } else { $new_conns++ }
      $conn->start(
        InputEvent => 'got_input',
        ErrorEvent => 'got_error',
        Filter     => POE::Filter::Stream->new,
      );
      my $wid = $conn->wheel->ID;
      $heap->{req}{$wid} = { conn => $conn, buf => '', t0 => $r->{context}{t0} };
      $conn->wheel->put($request);
    },

    got_input => sub {
      my ($heap, $data, $wid) = @_[HEAP, ARG0, ARG1];
      my $st = $heap->{req}{$wid} or return;
      $st->{buf} .= $data;
      my $done = eval { response_complete($st, 0) };
      unless (defined $done) {
        warn "response: $@" if $errors < 5;
        $st->{close} = 1;
        $_[KERNEL]->call($_[SESSION], 'request_done', $wid, 0);
        return;
      }
      $_[KERNEL]->call($_[SESSION], 'request_done', $wid, 1) if $done;
    },

    got_error => sub {
      my ($heap, $op, $errnum, $errstr, $wid) = @_[HEAP, ARG0 .. ARG3];
      my $st = $heap->{req}{$wid} or return;
      $st->{close} = 1;
      # EOF (read error 0) ends a response delimited by the connection's end.
      my $ok = ($op eq 'read' && $errnum == 0 && length $st->{buf})
        ? (eval { response_complete($st, 1) } // 0) : 0;
      warn "$op error $errnum: $errstr\n" if !$ok && $errors < 5;
      $_[KERNEL]->call($_[SESSION], 'request_done', $wid, $ok);
    },

    # Ends the request on wheel $wid; the connection returns to the pool when the last
    # reference to it goes, unless the server is closing it.
    request_done => sub {
      my ($kernel, $heap, $wid, $ok) = @_[KERNEL, HEAP, ARG0, ARG1];
      my $st = delete $heap->{req}{$wid} or return;
      if ($ok && $st->{status} =~ /^2/) {
        push @latencies, time - $st->{t0};
      }
      else {
        $errors++;
      }
      $st->{conn}->close if $st->{close};
      delete $st->{conn};
      $kernel->yield('finished');
    },

    finished => sub {
      my $kernel = $_[KERNEL];
      if (++$finished >= $total) {
        $t_end = time;
        report();
        $cm->shutdown;
        return;
      }
      $kernel->yield('next_request');
    },
  },
);

POE::Kernel->run();
report() unless defined $t_end;    # only if the run stopped early
exit($errors ? 1 : 0);

sub report {
  $t_end //= time;
  my $wall = $t_end - ($t_start // $t_end);
  my @sorted = sort { $a <=> $b } @latencies;
  my $pct_us = sub {
    my $p = shift;
    return 0 unless @sorted;
    my $i = int($p * @sorted + 0.999999) - 1;    # nearest rank
    $i = 0 if $i < 0;
    return int($sorted[$i] * 1e6 + 0.5);
  };
  printf "requests=%d errors=%d new_connections=%d reused=%d rps=%.0f p50_us=%d p99_us=%d\n",
    $finished, $errors, $new_conns, $reused, ($wall > 0 ? @latencies / $wall : 0),
    $pct_us->(0.50), $pct_us->(0.99);
}
