//! Shared helpers of the C-facing integration tests.
//!
//! The C programs link the *shipped* library: the `no_std` release
//! `libfieldauth.a` / `.so`. `cargo test` cannot build it in its own target
//! directory (it holds that directory's lock while tests run, so a nested
//! `cargo build` there would wait forever), so the first test that needs it
//! runs `cargo build -p fieldauth-ffi --release` with
//! `CARGO_TARGET_DIR=<workspace>/target/ffi-c` (incremental: later runs take
//! a second). Set `FIELDAUTH_FFI_LIB_DIR` to a directory holding an
//! already built `libfieldauth.a` (and `.so`) to skip the nested build, and
//! `FIELDAUTH_EMULATOR_BIN` to a built `fieldauth-emulator`.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The nested target directory.
pub fn nested_target() -> PathBuf {
    root().join("target").join("ffi-c")
}

/// A fresh scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let d = nested_target().join("tests").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs a command; panics with its output unless it succeeds.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// Runs a command and returns its output whatever the status.
pub fn run_any(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Fails with a clear message if `tool` is not installed.
pub fn require(tool: &str, debian_package: &str) {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        found,
        "`{tool}` is not installed: this test needs it. On Debian/Ubuntu: \
         `apt-get install {debian_package}`, or run `bash .ci/run`, which installs every \
         package the tests need"
    );
}

/// Serializes nested cargo builds within one test binary.
static CARGO: Mutex<()> = Mutex::new(());

fn nested_cargo(args: &[&str]) {
    let _guard = CARGO.lock().unwrap_or_else(|e| e.into_inner());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(cargo)
        .args(args)
        .current_dir(root())
        .env("CARGO_TARGET_DIR", nested_target()));
}

/// The directory with the release `libfieldauth.a` (and `.so`).
pub fn lib_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(d) = std::env::var_os("FIELDAUTH_FFI_LIB_DIR") {
            let d = PathBuf::from(d);
            assert!(
                d.join("libfieldauth.a").is_file(),
                "FIELDAUTH_FFI_LIB_DIR={} has no libfieldauth.a",
                d.display()
            );
            return d;
        }
        nested_cargo(&["build", "-p", "fieldauth-ffi", "--release", "--quiet"]);
        nested_target().join("release")
    })
}

/// The static library.
pub fn static_lib() -> PathBuf {
    lib_dir().join("libfieldauth.a")
}

/// The provider emulator binary: `FIELDAUTH_EMULATOR_BIN` if set, else a
/// debug build in the nested target dir.
pub fn emulator() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("FIELDAUTH_EMULATOR_BIN") {
            let p = PathBuf::from(p);
            assert!(
                p.is_file(),
                "FIELDAUTH_EMULATOR_BIN={} does not exist",
                p.display()
            );
            return p;
        }
        nested_cargo(&[
            "build",
            "-p",
            "fieldauth-emulator",
            "--bin",
            "fieldauth-emulator",
            "--quiet",
        ]);
        nested_target().join("debug").join("fieldauth-emulator")
    })
    .clone()
}

/// The header directory.
pub fn include_dir() -> PathBuf {
    root().join("include")
}

/// The C compiler for the host, found by the `cc` crate (honours `CC`).
pub fn cc() -> PathBuf {
    compiler(false)
}

/// The C++ compiler (honours `CXX`).
pub fn cxx() -> PathBuf {
    compiler(true)
}

fn compiler(cpp: bool) -> PathBuf {
    let target = env!("FIELDAUTH_BUILD_TARGET");
    cc::Build::new()
        .cargo_metadata(false)
        .cpp(cpp)
        .target(target)
        .host(target)
        .opt_level(1)
        .try_get_compiler()
        .unwrap_or_else(|e| panic!("no C{} compiler found: {e}", if cpp { "++" } else { "" }))
        .path()
        .to_path_buf()
}

/// The symbols of an object, executable or archive, from `readelf` (which,
/// unlike `nm`, is not confused by a system LLVM bfd plugin that claims the
/// bitcode sections of Rust objects): `(defined, name)` pairs.
pub fn symbols(path: &Path) -> Vec<(bool, String)> {
    let out = run(Command::new("readelf").arg("-sW").arg(path));
    text(&out.stdout)
        .lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            // Num: Value Size Type Bind Vis Ndx Name
            if cols.len() < 8 || !cols[0].ends_with(':') || cols[0] == "Num:" {
                return None;
            }
            if cols[3] == "SECTION" || cols[3] == "FILE" {
                return None;
            }
            Some((cols[6] != "UND", cols[7].to_string()))
        })
        .collect()
}

/// The strict warning flags every C build uses.
pub const STRICT: &[&str] = &["-Wall", "-Wextra", "-Werror", "-pedantic"];
