#!/usr/bin/perl
# A POE::Component::Client::TCP peer for the interop tests.
# Usage: client_tcp.pl PORT LINE...   (each LINE may hold \xHH escapes)
# Sends every line, prints "got: <hex of each received record>" per record, and after the
# last expected reply closes; prints "disconnected" when the connection is gone.
use strict;
use warnings;
use POE qw(Component::Client::TCP Filter::Line);

my ($port, @lines) = @ARGV;
@lines = map { my $l = $_; $l =~ s/\\x([0-9a-fA-F]{2})/chr(hex($1))/ge; $l } @lines;
my $expected = @lines;
$| = 1;

POE::Component::Client::TCP->new(
  RemoteAddress => '127.0.0.1',
  RemotePort    => $port,
  Filter        => POE::Filter::Line->new(),
  Connected     => sub { $_[HEAP]{server}->put($_) for @lines },
  ConnectError  => sub { print "connect error: $_[ARG0] $_[ARG1]\n"; },
  ServerInput   => sub {
    print "got: ", unpack("H*", $_[ARG0]), "\n";
    $_[KERNEL]->yield('shutdown') if --$expected == 0;
  },
  ServerError   => sub { print "server error: $_[ARG0] $_[ARG1]\n" if $_[ARG1]; },
  Disconnected  => sub { print "disconnected\n"; },
);
POE::Kernel->run();
exit 0;
