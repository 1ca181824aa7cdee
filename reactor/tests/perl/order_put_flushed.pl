# A put from an ordinary event is written, and FlushedEvent called, in the next poll.
use strict; use warnings;
use POE qw(Wheel::ReadWrite Filter::Line);
use Socket; use IO::Handle;
socketpair(my $a, my $b, AF_UNIX, SOCK_STREAM, PF_UNSPEC) or die;
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
    $_[KERNEL]->yield('go');
  },
  go => sub { print "S in go\n"; $_[HEAP]{w}->put("x"); $_[KERNEL]->yield('after') },
  after => sub { print "S after\n"; $_[KERNEL]->post(T => 'note') },
  flushed => sub { print "S flushed\n"; delete $_[HEAP]{w} },
  in => sub {},
});
POE::Kernel->run;
