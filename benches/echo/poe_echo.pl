#!/usr/bin/perl
# POE's line echo: POE::Component::Server::TCP with a Line filter ("\n" both ways), each
# input line put back to the client. The peer of reactor_echo in the echo benchmark.
#
# Usage: perl poe_echo.pl --port P   (0 = any); prints "listening on ADDR" first.
use strict;
use warnings;
use Getopt::Long;
use Socket qw(sockaddr_in inet_ntoa);
use POE qw(Component::Server::TCP Filter::Line);

my $port = 0;
GetOptions('port=i' => \$port) or die "usage: $0 --port P\n";
$| = 1;

POE::Component::Server::TCP->new(
    Address      => '127.0.0.1',
    Port         => $port,
    ClientFilter => POE::Filter::Line->new(Literal => "\n"),
    Started      => sub {
        my ($p, $a) = sockaddr_in($_[HEAP]{listener}->getsockname);
        print "listening on ", inet_ntoa($a), ":$p\n";
    },
    ClientInput => sub { $_[HEAP]{client}->put($_[ARG0]) },
);

POE::Kernel->run;
