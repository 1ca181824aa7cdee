#!/usr/bin/perl
# HTTP/1.1 load generator on POE::Component::Client::HTTP 0.949 (POE 1.370): the Perl
# reference point for examples/demo.rs on our HttpClient. Makes N GETs of one URL with C in
# flight; each response handler sends the next request.
#
# Usage: perl perl_http.pl --url http://127.0.0.1:8080/ [-n 20000] [-c 8]
# Prints one line at the end, as the demo does:
#   requests=N errors=E new_connections=0 reused=0 rps=X p50_us=A p99_us=B
use strict;
use warnings;
use Getopt::Long qw(GetOptions);
use Time::HiRes qw(time);
use HTTP::Request;
use POE qw(Component::Client::HTTP Component::Client::Keepalive);

my ($url, $total, $conc) = (undef, 20_000, 8);
GetOptions('url=s' => \$url, 'n=i' => \$total, 'c=i' => \$conc)
  or die "usage: $0 --url URL [-n N] [-c C]\n";
die "usage: $0 --url URL [-n N] [-c C]\n" unless defined $url;

my $cm = POE::Component::Client::Keepalive->new(
  max_per_host => $conc,
  max_open     => $conc * 2,
);
POE::Component::Client::HTTP->spawn(Alias => 'ua', ConnectionManager => $cm, Timeout => 30);

my ($issued, $finished, $errors) = (0, 0, 0);
my @lat;
my $t_start;

sub send_next {
  return if $issued >= $total;
  $issued++;
  $poe_kernel->post(ua => request => 'response', HTTP::Request->new(GET => $url), time());
}

POE::Session->create(inline_states => {
  _start => sub {
    $t_start = time();
    send_next() for 1 .. $conc;
  },
  response => sub {
    my ($req_packet, $res_packet) = @_[ARG0, ARG1];
    my $res = $res_packet->[0];
    if ($res->is_success) {
      push @lat, time() - $req_packet->[1];
    } else {
      $errors++;
    }
    if (++$finished >= $total) {
      my $elapsed = time() - $t_start;
      my @s = sort { $a <=> $b } @lat;
      my $pct = sub {
        return 0 unless @s;
        my $i = int(@s * $_[0] + 0.999999);
        $i = 1 if $i < 1;
        $i = @s if $i > @s;
        return int($s[$i - 1] * 1e6);
      };
      printf "requests=%d errors=%d new_connections=0 reused=0 rps=%.0f p50_us=%d p99_us=%d\n",
        $total, $errors, ($total - $errors) / $elapsed, $pct->(0.5), $pct->(0.99);
      $poe_kernel->post(ua => 'shutdown');
      $cm->shutdown;
      return;
    }
    send_next();
  },
});
POE::Kernel->run();
