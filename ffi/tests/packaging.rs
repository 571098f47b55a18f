//! Packaging: `ffi/pkg/install.sh` stages an install prefix (include/, lib/,
//! lib/pkgconfig/, lib/cmake/fieldauth/); a CMake project finds it with
//! `find_package(fieldauth)` and links it statically and dynamically; and
//! `pkg-config --cflags --libs fieldauth` builds a program too.
// Test code: panicking on failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

mod common;

use std::process::Command;

use common::*;

#[test]
fn cmake_find_package_and_pkg_config_consumers() {
    require("cmake", "cmake");
    require("pkg-config", "pkg-config");
    let dir = scratch("packaging");
    let prefix = dir.join("prefix");
    run(Command::new("bash")
        .arg(root().join("ffi/pkg/install.sh"))
        .arg(&prefix)
        .arg(lib_dir()));
    for f in [
        "include/fieldauth.h",
        "lib/libfieldauth.a",
        "lib/libfieldauth.so",
        "lib/pkgconfig/fieldauth.pc",
        "lib/cmake/fieldauth/fieldauthConfig.cmake",
        "lib/cmake/fieldauth/fieldauthConfigVersion.cmake",
    ] {
        assert!(prefix.join(f).is_file(), "{f} not installed");
    }

    // CMake: configure, build and run the consumer project.
    let build = dir.join("cmake-build");
    run(Command::new("cmake")
        .arg("-S")
        .arg(root().join("tests/cmake-consumer"))
        .arg("-B")
        .arg(&build)
        .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display()))
        .arg(format!("-DCMAKE_C_COMPILER={}", cc().display())));
    run(Command::new("cmake").arg("--build").arg(&build));
    for exe in ["consumer_static", "consumer_shared"] {
        // The RUNPATH CMake set must find the installed library (cargo test's
        // own LD_LIBRARY_PATH would find the test build's instead).
        let out = run(Command::new(build.join(exe)).env_remove("LD_LIBRARY_PATH"));
        assert!(
            text(&out.stdout).contains("Authorization: Bearer demo-key"),
            "{exe}"
        );
    }
    // A version the package does not satisfy is refused.
    let bad = dir.join("cmake-bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(
        bad.join("CMakeLists.txt"),
        "cmake_minimum_required(VERSION 3.13)\nproject(p C)\nfind_package(fieldauth 9.0 REQUIRED)\n",
    )
    .unwrap();
    let out = run_any(
        Command::new("cmake")
            .arg("-S")
            .arg(&bad)
            .arg("-B")
            .arg(bad.join("build"))
            .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display())),
    );
    assert!(
        !out.status.success(),
        "find_package(fieldauth 9.0) succeeded"
    );

    // pkg-config.
    let pc = |args: &[&str]| {
        let out = run(Command::new("pkg-config")
            .args(args)
            .arg("fieldauth")
            .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig")));
        text(&out.stdout).trim().to_string()
    };
    let flags = pc(&["--cflags", "--libs"]);
    let inc = format!("-I{}", prefix.join("include").display());
    let lib = format!("-L{}", prefix.join("lib").display());
    assert!(
        flags.contains(&inc) && flags.contains(&lib) && flags.contains("-lfieldauth"),
        "{flags}"
    );
    assert_eq!(pc(&["--modversion"]), env!("CARGO_PKG_VERSION"));
    let exe = dir.join("pkgconfig_consumer");
    run(Command::new(cc())
        .args(STRICT)
        .arg("-std=c99")
        .arg(root().join("tests/cmake-consumer/main.c"))
        .arg("-o")
        .arg(&exe)
        .args(flags.split_whitespace()));
    let out = run(Command::new(&exe).env("LD_LIBRARY_PATH", prefix.join("lib")));
    assert!(text(&out.stdout).contains("Authorization: Bearer demo-key"));
}
