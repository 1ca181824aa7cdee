//! `examples/sessions.rs` prints exactly what POE's `examples/sessions.perl` prints.
//!
//! The Perl program's output is kept in `tests/fixtures/sessions.perl.out`; a second test
//! reruns the Perl program (installed by `libpoe-perl`) to show the fixture is still what
//! POE 1.370 prints.

mod common;

use std::process::Command;

fn fixture() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sessions.perl.out"
    ))
    .expect("fixture")
}

#[test]
fn rust_port_output_is_byte_identical_to_perl() {
    let bin = common::example("sessions");
    let out = Command::new(&bin)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()));
    assert!(
        out.status.success(),
        "sessions example failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = fixture();
    assert_eq!(out.stdout.len(), want.len(), "output length differs");
    assert!(out.stdout == want, "output differs from the Perl program's");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 311);
}

#[test]
fn fixture_is_what_perl_poe_prints() {
    let script = "/usr/share/doc/libpoe-perl/examples/sessions.perl";
    assert!(
        std::path::Path::new(script).exists(),
        "{script} is missing: install libpoe-perl (.ci/run does)"
    );
    let out = Command::new("perl")
        .arg(script)
        .output()
        .expect("perl runs");
    assert!(out.status.success());
    assert!(
        out.stdout == fixture(),
        "Perl POE's output no longer matches the fixture"
    );
}
