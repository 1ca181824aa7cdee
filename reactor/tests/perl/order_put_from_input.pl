# An input handler puts a record and yields: the record is written when the next poll
# reports the handle writable, so the yielded event and what it posts run first.
use strict; use warnings;
use POE qw(Wheel::ReadWrite Filter::Line);
use Socket; use IO::Handle;
socketpair(my $a, my $b, AF_UNIX, SOCK_STREAM, PF_UNSPEC) or die;
syswrite($b, "go\n");
POE::Session->create(inline_states => {
  _start => sub { $_[KERNEL]->alias_set('T');
    $_[HEAP]{w} = POE::Wheel::ReadWrite->new(Handle => $b, InputEvent => 'in', Filter => POE::Filter::Line->new);
  },
  in => sub { print "T in $_[ARG0]\n"; delete $_[HEAP]{w}; $_[KERNEL]->alias_remove('T') },
  note => sub { print "T note\n" },
});
POE::Session->create(inline_states => {
  _start => sub {
    $_[HEAP]{w} = POE::Wheel::ReadWrite->new(Handle => $a, InputEvent => 'in', FlushedEvent => 'flushed', Filter => POE::Filter::Line->new);
  },
  in => sub { print "S in $_[ARG0]\n"; $_[HEAP]{w}->put("x"); $_[KERNEL]->yield('after') },
  after => sub { print "S after\n"; $_[KERNEL]->post(T => 'note') },
  flushed => sub { print "S flushed\n"; delete $_[HEAP]{w} },
});
POE::Kernel->run;
