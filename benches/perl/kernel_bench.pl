#!/usr/bin/perl
# POE 1.370 side of reactor/benches/kernel.rs: the same work, timed the same way.
# Usage: perl kernel_bench.pl EVENTS TIMERS
# Prints lines "name ns_per_op" for: post_dispatch, timer_set, timer_cancel, timer_fire.
use strict;
use warnings;
use Time::HiRes qw(time);
use List::Util qw(shuffle);
use POE;

my $events = shift || 200_000;
my $timers = shift || 100_000;
srand(42);

# post + dispatch: one session yields to itself $events times.
my ($t0, $t1);
POE::Session->create(
  inline_states => {
    _start => sub { $_[HEAP]{n} = 0; $t0 = time; $_[KERNEL]->yield('tick') },
    tick   => sub {
      if (++$_[HEAP]{n} < $events) { $_[KERNEL]->yield('tick') } else { $t1 = time }
    },
  }
);
POE::Kernel->run();
printf "post_dispatch %.1f\n", ($t1 - $t0) * 1e9 / $events;

# timers: set $timers with random due times, cancel them in random order.
POE::Session->create(
  inline_states => {
    _start => sub {
      my $k = $_[KERNEL];
      my $base = time + 1000;
      my @ids;
      my $s = time;
      push @ids, $k->alarm_set(never => $base + rand(1000)) for 1 .. $timers;
      my $e = time;
      printf "timer_set %.1f\n", ($e - $s) * 1e9 / $timers;
      @ids = shuffle @ids;
      $s = time;
      $k->alarm_remove($_) for @ids;
      $e = time;
      printf "timer_cancel %.1f\n", ($e - $s) * 1e9 / $timers;
    },
    never => sub { die "fired" },
  }
);
POE::Kernel->run();

# fire: $timers alarms already due (random past times), dispatched by the loop.
my ($f0, $fired) = (0, 0);
POE::Session->create(
  inline_states => {
    _start => sub {
      my $k = $_[KERNEL];
      my $past = time - 2000;
      $k->alarm_add(ring => $past + rand(1000)) for 1 .. $timers;
      $f0 = time;
    },
    ring => sub { $fired++ },
  }
);
POE::Kernel->run();
my $f1 = time;
die "fired $fired of $timers" unless $fired == $timers;
printf "timer_fire %.1f\n", ($f1 - $f0) * 1e9 / $timers;
