//! Runs `tests/c/test_api.c` (every exported function, good and bad input)
//! against the shipped `no_std` release library: plain, under
//! AddressSanitizer + UndefinedBehaviorSanitizer, and under valgrind, each
//! with proof that the instrumentation is really there. The plain build is
//! linked with `--gc-sections` and must contain no panic machinery: no panic
//! path is reachable from any exported function.
// Test code: panicking on failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// Compiles `tests/c/<src>` with `extra` flags into `dir/<out>`, linking
/// `libfieldauth.a`. The canary is deliberately broken, so it is built
/// without `-Werror`.
fn build(dir: &Path, src: &str, out: &str, extra: &[&str]) -> PathBuf {
    let exe = dir.join(out);
    let warnings: &[&str] = if src == "canary.c" { &[] } else { STRICT };
    run(Command::new(cc())
        .args(["-std=c11", "-g", "-O1"])
        .args(warnings)
        .args(extra)
        .arg("-I")
        .arg(include_dir())
        .arg(root().join("tests/c").join(src))
        .arg(static_lib())
        .arg("-o")
        .arg(&exe));
    exe
}

/// Every symbol name (defined or not), one per line.
fn names(path: &Path) -> String {
    symbols(path).into_iter().map(|(_, n)| n + "\n").collect()
}

/// The closing line of a passing run: "N passed, 0 failed".
fn assert_all_passed(stdout: &str) {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.ends_with(" failed"))
        .unwrap_or_else(|| panic!("no summary line in:\n{stdout}"));
    let passed: u32 = line.split(' ').next().unwrap().parse().unwrap();
    assert!(line.ends_with(", 0 failed"), "C tests failed: {line}");
    assert!(passed > 500, "too few C checks ran: {line}");
}

#[test]
fn c_tests_pass_and_link_no_panic_path() {
    let dir = scratch("c_plain");
    let exe = build(&dir, "test_api.c", "test_api", &["-Wl,--gc-sections"]);
    let out = run(&mut Command::new(&exe));
    assert_all_passed(&text(&out.stdout));
    let syms = symbols(&exe);
    let all = names(&exe);
    // The symbol table is readable, and the library is in the binary...
    assert!(
        syms.iter()
            .any(|(d, n)| *d && n == "fieldauth_session_exchange"),
        "the symbol table lacks the library"
    );
    // ...but no panic handler: it would be kept if any panic path were reachable.
    for panic_symbol in ["rust_begin_unwind", "panic_fmt", "panic_bounds_check"] {
        assert!(
            !all.contains(panic_symbol),
            "a panic path is reachable from the exported functions: `{panic_symbol}` is linked \
             (link with -fuse-ld=lld -Wl,--why-live='*panic_fmt*' to see which)"
        );
    }
    // No allocator: the library references no malloc/free and no Rust allocator.
    let lib = symbols(&static_lib());
    assert!(
        lib.iter().any(|(d, n)| *d && n == "fieldauth_session_init"),
        "the archive's symbol table is unreadable"
    );
    for (_, name) in &lib {
        let alloc = [
            "malloc",
            "free",
            "realloc",
            "calloc",
            "posix_memalign",
            "aligned_alloc",
        ]
        .contains(&name.as_str())
            || name.contains("__rust_alloc")
            || name.contains("__rust_dealloc");
        assert!(!alloc, "libfieldauth.a references the allocator: `{name}`");
    }
}

#[test]
fn c_tests_pass_under_asan_and_ubsan() {
    let dir = scratch("c_asan");
    let flags = [
        "-fsanitize=address,undefined",
        "-fno-sanitize-recover=all",
        "-fno-omit-frame-pointer",
    ];
    let exe = build(&dir, "test_api.c", "test_api_asan", &flags);
    let all = names(&exe);
    assert!(
        all.contains("__asan_init"),
        "not built with AddressSanitizer"
    );
    assert!(all.contains("__ubsan_handle_"), "not built with UBSan");
    let sanitized = |c: &mut Command| {
        c.env(
            "ASAN_OPTIONS",
            "detect_leaks=1:halt_on_error=1:abort_on_error=0",
        )
        .env("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1");
    };
    let mut cmd = Command::new(&exe);
    sanitized(&mut cmd);
    let out = run(&mut cmd);
    assert_all_passed(&text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("ERROR: AddressSanitizer"), "{stderr}");
    assert!(!stderr.contains("runtime error:"), "{stderr}");

    // The instrumentation catches errors: deliberately broken programs fail
    // (one sanitizer each, so each proves its own detection).
    let canary = build(&dir, "canary.c", "canary_asan", &["-fsanitize=address"]);
    let mut cmd = Command::new(&canary);
    cmd.arg("heap");
    sanitized(&mut cmd);
    let out = run_any(&mut cmd);
    assert!(!out.status.success(), "ASan missed a heap overflow");
    assert!(
        text(&out.stderr).contains("heap-buffer-overflow"),
        "{}",
        text(&out.stderr)
    );
    let canary = build(
        &dir,
        "canary.c",
        "canary_ubsan",
        &["-fsanitize=undefined", "-fno-sanitize-recover=all"],
    );
    let mut cmd = Command::new(&canary);
    cmd.arg("ub");
    sanitized(&mut cmd);
    let out = run_any(&mut cmd);
    assert!(!out.status.success(), "UBSan missed a signed overflow");
    assert!(
        text(&out.stderr).contains("signed integer overflow"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn c_tests_pass_under_valgrind() {
    require("valgrind", "valgrind");
    let dir = scratch("c_valgrind");
    let exe = build(&dir, "test_api.c", "test_api", &[]);
    let valgrind = |exe: &Path, arg: Option<&str>| {
        let mut c = Command::new("valgrind");
        c.args([
            "--error-exitcode=99",
            "--leak-check=full",
            "--errors-for-leak-kinds=all",
            "--track-origins=yes",
        ])
        .arg(exe);
        if let Some(a) = arg {
            c.arg(a);
        }
        run_any(&mut c)
    };
    let out = valgrind(&exe, None);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "valgrind found errors:\n{stderr}"
    );
    assert!(
        stderr.contains("ERROR SUMMARY: 0 errors from 0 contexts"),
        "{stderr}"
    );
    assert_all_passed(&text(&out.stdout));

    // valgrind is really checking: the broken program is reported with our exit code.
    let canary = build(&dir, "canary.c", "canary", &[]);
    let out = valgrind(&canary, Some("heap"));
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(99),
        "valgrind missed an invalid read:\n{stderr}"
    );
    assert!(stderr.contains("Invalid read"), "{stderr}");
}
