# A POE::NFA machine, child of a plain session: transitions go through the queue (events
# posted before goto_state are handled in the old state, after it in the new one), entry
# events and `leave`, call_state/return_state with and without a return event, the
# runstate kept across states, _default, `immediate`, an event no handler takes (a DIE the
# machine catches), stop.
use strict; use warnings;
use POE::Kernel;

package Machine;
use POE::NFA;

sub say { print join(' ', @_), "\n" }

sub spawn {
  return POE::NFA->spawn(
    runstate => { count => 0 },
    inline_states => {
      a => {
        start => sub {
          my ($m, $k, $rs) = @_[MACHINE, KERNEL, RUNSTATE];
          say('a start', $_[STATE], ($_[SENDER] == $m ? 'from-self' : 'from-other'), scalar(@_) - ARG0);
          $rs->{count}++;
          $k->yield('x');
          $m->goto_state(b => 'enter', 'one', 'two');
          $k->yield('y');
          say('a still', $m->get_current_state);
        },
        x => sub { say('a x') },
        y => sub { say('a y') },
        leave => sub { say('leave', $_[STATE], $_[EVENT]) },
        _default => sub { say('a default', $_[ARG0]); return },
      },
      b => {
        enter => sub {
          say('b enter', @_[ARG0 .. $#_], 'count', ++$_[RUNSTATE]{count});
          $_[KERNEL]->yield('only_in_a');
          $_[KERNEL]->yield('z', 3);
        },
        y => sub { say('b y') },
        obs => sub { say('b obs', ($_[SENDER] == $_[MACHINE] ? 'from-self' : 'from-other')) },
        z => sub {
          say('b z', $_[ARG0]);
          $_[MACHINE]->call_state(back => c => 'enter', 5);
          $_[KERNEL]->yield('before_c');
          say('b after call_state', $_[MACHINE]->get_current_state);
        },
        back => sub {
          say('b back', @_[ARG0 .. $#_], 'count', $_[RUNSTATE]{count});
          $_[MACHINE]->call_state(undef, c => 'again');
        },
        after_return => sub {
          say('b after_return', $_[STATE]);
          $_[MACHINE]->option(immediate => 1);
          $_[MACHINE]->goto_state(d => 'enter');
          say('b now', $_[MACHINE]->get_current_state);
          $_[MACHINE]->option(immediate => 0);
        },
        leave => sub { say('leave', $_[STATE]) },
        _default => sub { say('b default', $_[EVENT], $_[ARG0], scalar @{$_[ARG1]}); return },
      },
      c => {
        enter => sub {
          say('c enter', $_[ARG0], 'count', ++$_[RUNSTATE]{count});
          $_[MACHINE]->return_state('r1', 'r2');
          $_[KERNEL]->yield('in_c');
        },
        before_c => sub { say('c before_c') },
        in_c => sub { say('c in_c') },
        again => sub {
          say('c again', scalar(@_) - ARG0);
          $_[MACHINE]->return_state('dropped');
          $_[KERNEL]->yield('after_return');
        },
      },
      d => {
        enter => sub {
          say('d enter', $_[STATE]);
          $_[KERNEL]->sig(DIE => 'oops');
          $_[KERNEL]->yield('nohandler', 1);
          $_[KERNEL]->yield('fine');
        },
        oops => sub {
          say('d oops', $_[ARG0], $_[ARG1]{event});
          $_[KERNEL]->sig_handled;
        },
        fine => sub {
          say('d fine', 'count', $_[RUNSTATE]{count});
          $_[MACHINE]->stop;
          $_[KERNEL]->yield('never');
        },
        never => sub { say('d never') },
      },
    },
  );
}

package Observer;
use POE::Session;

sub say { print join(' ', @_), "\n" }

POE::Session->create(inline_states => {
  _start => sub {
    my $m = Machine::spawn();
    say('spawned', $m->get_current_state);
    $m->goto_state(a => 'start');
    say('observer sees', $m->get_current_state);
    $_[KERNEL]->post($m->ID, 'obs');
  },
  _child => sub { say('observer _child', $_[ARG0]) },
  _stop => sub { say('observer _stop') },
});

POE::Kernel->run;
say('done');
