# A yield from a select_read handler runs in the same timeslice: POE reads the clock after I/O.
use strict; use warnings;
use POE;
pipe(my $r1, my $w1) or die; pipe(my $r2, my $w2) or die;
syswrite($w1, "a");
POE::Session->create(inline_states => {
  _start => sub { $_[KERNEL]->select_read($r1, 'rd'); $_[KERNEL]->yield('tick') },
  tick => sub { print "tick\n" },
  rd => sub { print "rd\n"; $_[KERNEL]->select_read($r1); syswrite($w2, "b"); $_[KERNEL]->select_read($r2, 'rd2'); $_[KERNEL]->yield('after') },
  rd2 => sub { print "rd2\n"; $_[KERNEL]->select_read($r2) },
  after => sub { print "after\n" },
});
POE::Kernel->run;
