//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod example_server;
pub mod ka;
pub mod nginx;
pub mod test_server;
pub mod web;

use std::path::PathBuf;
use std::process::Command;

/// The path of example `name`, built (or found up to date) first: `cargo test --test X`
/// does not build examples.
pub fn example(name: &str) -> PathBuf {
    let mut p = std::env::current_exe().expect("test binary path");
    p.pop();
    p.pop();
    let release = p.ends_with("release");
    p.push("examples");
    p.push(name);
    {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-q", "--example", name])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("cargo runs");
        assert!(status.success(), "building example {name} failed");
    }
    p
}

#[path = "../../reactor/tests/common/watchdog.rs"]
mod watchdog;
#[allow(unused_imports)] // not every test file arms one
pub use watchdog::timeout;

#[path = "../../reactor/tests/common/fds.rs"]
mod fds;
pub use fds::{assert_no_new_fds, open_fds, Fds};
