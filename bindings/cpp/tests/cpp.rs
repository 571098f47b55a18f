//! Builds the C++ test program `tests/session_test.cpp` against the binding
//! as a C++ user would (`include/fieldauth.hpp`, the cxx-generated headers,
//! `libfieldauth_cpp.a`), with `-std=c++17 -Wall -Wextra -Werror
//! -pedantic`, runs it against an in-process provider emulator, and fails
//! with its output if any check fails.
//!
//! The archive and headers come from a nested `cargo build -p
//! fieldauth-cpp` with `CARGO_TARGET_DIR=<workspace>/target/cpp`: `cargo
//! test` holds the lock of its own target directory while tests run, and
//! the nested build leaves `target/cpp/debug/libfieldauth_cpp.a` and
//! `target/cpp/cxxbridge/{rust/cxx.h, fieldauth-cpp/src/lib.rs.h}` at fixed
//! places (a clean clone builds them; later runs are incremental). Set
//! `CXX` to use another compiler than `c++`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use fieldauth_emulator::{spawn, EmulatorConfig, Provider};

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn nested_target() -> PathBuf {
    root().join("target").join("cpp")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs a command; panics with its output unless it succeeds.
fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    out
}

fn cxx() -> String {
    std::env::var("CXX").unwrap_or_else(|_| "c++".into())
}

/// The system libraries a program linking a Rust staticlib needs (what
/// `rustc --print native-static-libs` reports for this crate), plus the
/// C++ runtime the bridge's C++ half uses.
fn system_libs() -> &'static [&'static str] {
    if cfg!(target_os = "linux") {
        &[
            "-lstdc++",
            "-lgcc_s",
            "-lutil",
            "-lrt",
            "-lpthread",
            "-lm",
            "-ldl",
            "-lc",
        ]
    } else if cfg!(target_os = "macos") {
        &["-lc++", "-liconv", "-lSystem", "-lc", "-lm"]
    } else {
        &["-lpthread", "-lm"]
    }
}

#[test]
fn cpp_test_program_passes() {
    let found = Command::new(cxx())
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        found,
        "`{}` is not installed: this test compiles C++17. On Debian/Ubuntu: `apt-get install g++` \
         (or set CXX to a C++17 compiler)",
        cxx()
    );

    // 1. The library and the generated headers.
    let t = Instant::now();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(cargo)
        .args(["build", "-p", "fieldauth-cpp", "--lib", "--quiet"])
        .current_dir(root())
        .env("CARGO_TARGET_DIR", nested_target()));
    let build_s = t.elapsed().as_secs_f64();
    let lib = nested_target().join("debug").join("libfieldauth_cpp.a");
    let generated = nested_target().join("cxxbridge");
    for f in [
        lib.clone(),
        generated.join("rust/cxx.h"),
        generated.join("fieldauth-cpp/src/lib.rs.h"),
    ] {
        assert!(
            f.is_file(),
            "the nested build did not produce {}",
            f.display()
        );
    }

    // 2. The test program, warnings as errors: plain, and with AddressSanitizer
    //    and UndefinedBehaviorSanitizer (use-after-free of a view into Rust
    //    memory, leaks of a session, ...), compiled side by side.
    let t = Instant::now();
    let dir = nested_target().join("tests");
    std::fs::create_dir_all(&dir).unwrap();
    let variants: [(&str, &[&str]); 2] = [
        ("session_test", &["-O1"]),
        (
            "session_test_asan",
            &[
                "-O0",
                "-fsanitize=address,undefined",
                "-fno-sanitize-recover=all",
            ],
        ),
    ];
    let builds: Vec<_> = variants
        .iter()
        .map(|&(name, flags)| {
            let exe = dir.join(name);
            let _ = std::fs::remove_file(&exe);
            let mut cmd = Command::new(cxx());
            cmd.args(["-std=c++17", "-Wall", "-Wextra", "-Werror", "-pedantic"])
                .args(flags)
                .arg("-I")
                .arg(crate_dir().join("include"))
                .arg("-I")
                .arg(&generated)
                .arg(crate_dir().join("tests/session_test.cpp"))
                .arg(&lib)
                .args(system_libs())
                .arg("-o")
                .arg(&exe);
            (exe, std::thread::spawn(move || run(&mut cmd)))
        })
        .collect();
    let exes: Vec<PathBuf> = builds
        .into_iter()
        .map(|(exe, h)| {
            if let Err(e) = h.join() {
                std::panic::resume_unwind(e);
            }
            exe
        })
        .collect();
    let compile_s = t.elapsed().as_secs_f64();
    println!("(nested cargo build {build_s:.1} s, C++ compile and link {compile_s:.1} s)");

    // 3. Run them, with a provider emulator on a loopback port.
    let server = spawn(EmulatorConfig::default()).expect("start the provider emulator");
    let autotask = server.base_url(Provider::Autotask);
    let emulator_root = autotask
        .strip_suffix("/autotask")
        .unwrap_or_else(|| panic!("unexpected emulator URL {autotask}"));
    for (exe, sanitized) in exes.iter().zip([false, true]) {
        check_run(exe, emulator_root, sanitized);
    }
}

/// Runs one build of the test program and checks its report.
fn check_run(exe: &Path, emulator_root: &str, sanitized: bool) {
    let out = Command::new(exe)
        .env("FIELDAUTH_EMULATOR_URL", emulator_root)
        .env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        .env("UBSAN_OPTIONS", "print_stacktrace=1")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    println!("--- {}\n{stdout}", exe.display());
    assert!(
        out.status.success(),
        "{} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        exe.display(),
        out.status
    );
    // Guard against a program that checks nothing or skipped the emulator.
    let summary = stdout
        .lines()
        .find(|l| l.ends_with(" failed") && l.contains(" passed, "))
        .unwrap_or_else(|| panic!("no summary line in:\n{stdout}"));
    let passed: u32 = summary.split(' ').next().unwrap().parse().unwrap();
    assert!(passed >= 400, "only {passed} checks ran:\n{stdout}");
    assert!(summary.ends_with(" 0 failed"), "{summary}");
    assert!(
        stdout.contains("emulator: Autotask token of"),
        "the emulator part did not run:\n{stdout}"
    );
    assert_eq!(
        stdout.contains("instrumented: AddressSanitizer"),
        sanitized,
        "{}: sanitizer instrumentation is not as built:\n{stdout}",
        exe.display()
    );
    assert!(stderr.is_empty(), "unexpected diagnostics:\n{stderr}");
}
