//! The C example `ffi/examples/emulator_client.c`, built with plain `cc`
//! from the header and `libfieldauth.a` only, gets tokens from the provider
//! emulator over POSIX sockets and makes authorized API calls.
// Test code: panicking on failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::*;

/// Kills the emulator when the test ends, however it ends.
struct Emulator(Child);

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn c_example_gets_tokens_and_calls_the_api() {
    let dir = scratch("example");
    let exe = dir.join("emulator_client");
    run(Command::new("cc")
        .args(["-std=c11", "-O2"])
        .args(STRICT)
        .arg("-I")
        .arg(include_dir())
        .arg(root().join("ffi/examples/emulator_client.c"))
        .arg(static_lib())
        .arg("-o")
        .arg(&exe));

    // Start the emulator on a free port; it prints the address first.
    let mut child = Command::new(emulator())
        .args(["--port", "0", "--quiet", "--seed", "7"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start fieldauth-emulator");
    let stdout = child.stdout.take().unwrap();
    let emu = Emulator(child);
    let mut reader = BufReader::new(stdout);
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    // Keep draining its output (a closed pipe would kill it).
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    let port = first
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("no port in the emulator's first line: {first:?}"));

    for provider in ["autotask", "fieldnation", "patchworks", "fentu-key"] {
        let out = run(Command::new(&exe).args(["127.0.0.1", &port.to_string(), provider]));
        let stdout = text(&out.stdout);
        assert!(stdout.contains("API 200"), "{provider}: {stdout}");
        assert!(stdout.trim_end().ends_with("ok"), "{provider}: {stdout}");
        if provider != "fentu-key" {
            assert!(stdout.contains("token issued"), "{provider}: {stdout}");
        }
    }
    drop(emu);
}
