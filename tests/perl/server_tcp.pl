#!/usr/bin/perl
# A POE::Component::Server::TCP line echo peer for the interop tests.
# Prints "listening on PORT" first; echoes every line back as "echo: LINE"; a client line
# "bye" makes it close that connection (the client sees EOF); prints one "input: <hex>" per
# record received and "disconnected" per closed client. Exits after its first client leaves.
use strict;
use warnings;
use POE qw(Component::Server::TCP Filter::Line);
use Socket qw(sockaddr_in);
$| = 1;

POE::Component::Server::TCP->new(
  Address      => '127.0.0.1',
  Port         => 0,
  ClientFilter => POE::Filter::Line->new(),
  Started      => sub {
    my $port = (sockaddr_in($_[HEAP]{listener}->getsockname))[0];
    print "listening on 127.0.0.1:$port\n";
  },
  ClientInput  => sub {
    my $line = $_[ARG0];
    print "input: ", unpack("H*", $line), "\n";
    if ($line eq 'bye') { $_[KERNEL]->yield('shutdown'); return; }
    $_[HEAP]{client}->put("echo: $line");
  },
  ClientDisconnected => sub {
    print "disconnected\n";
    exit 0;
  },
);
POE::Kernel->run();
