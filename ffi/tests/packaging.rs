//! Packaging: `ffi/pkg/install.sh` stages an install prefix (include/, lib/,
//! lib/pkgconfig/, lib/cmake/fieldauth/); a CMake project finds it with
//! `find_package(fieldauth)` and links it statically and dynamically; and
//! the README's own pkg-config command line builds a program that runs as it
//! would for a user: no `LD_LIBRARY_PATH`, `fieldauth.pc` linking the static
//! library, `fieldauth-shared.pc` the shared one with an rpath.
// Test code: panicking on failure is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

mod common;

use std::path::Path;
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
        "lib/pkgconfig/fieldauth-shared.pc",
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

    // pkg-config: the default links the static library by path (`-lfieldauth`
    // would pick the .so, which a program then cannot find at run time);
    // `--static` gives the same; fieldauth-shared links the .so with an rpath.
    let pkgconfig = prefix.join("lib/pkgconfig");
    let pc = |args: &[&str]| {
        let out = run(Command::new("pkg-config")
            .args(args)
            .env("PKG_CONFIG_PATH", &pkgconfig));
        text(&out.stdout).trim().to_string()
    };
    let inc = format!("-I{}", prefix.join("include").display());
    let archive = prefix.join("lib/libfieldauth.a").display().to_string();
    let lib = format!("-L{}", prefix.join("lib").display());
    let flags = pc(&["--cflags", "--libs", "fieldauth"]);
    assert!(
        flags.contains(&inc) && flags.contains(&archive) && !flags.contains("-lfieldauth"),
        "{flags}"
    );
    assert_eq!(pc(&["--static", "--cflags", "--libs", "fieldauth"]), flags);
    let shared = pc(&["--cflags", "--libs", "fieldauth-shared"]);
    let rpath = format!("-Wl,-rpath,{}", prefix.join("lib").display());
    assert!(
        shared.contains(&inc)
            && shared.contains(&lib)
            && shared.contains(&rpath)
            && shared.contains("-lfieldauth"),
        "{shared}"
    );
    for package in ["fieldauth", "fieldauth-shared"] {
        assert_eq!(pc(&["--modversion", package]), env!("CARGO_PKG_VERSION"));
    }

    // The README's build line, run by a shell in a directory holding `app.c`,
    // with PKG_CONFIG_PATH as the README sets it; then `./app`, with no
    // LD_LIBRARY_PATH (cargo test sets one that would find the test build's
    // library).
    let (compile, start) = readme_pkg_config_lines();
    let user = dir.join("user");
    std::fs::create_dir_all(&user).unwrap();
    std::fs::copy(
        root().join("tests/cmake-consumer/main.c"),
        user.join("app.c"),
    )
    .unwrap();
    let shell = |dir: &Path, line: &str| {
        run(Command::new("sh")
            .arg("-c")
            .arg(line)
            .current_dir(dir)
            .env("PKG_CONFIG_PATH", &pkgconfig)
            .env_remove("LD_LIBRARY_PATH"))
    };
    shell(&user, &compile);
    let out = shell(&user, &start);
    assert!(
        text(&out.stdout).contains("Authorization: Bearer demo-key"),
        "{start}: {}",
        text(&out.stdout)
    );
    let needed = dynamic_section(&user.join("app"));
    assert!(
        !needed.contains("libfieldauth"),
        "the default link is static:\n{needed}"
    );
    // The program runs from anywhere, the install prefix gone or not.
    let elsewhere = dir.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::copy(user.join("app"), elsewhere.join("app")).unwrap();
    run(Command::new(elsewhere.join("app")).env_remove("LD_LIBRARY_PATH"));

    // The same line with fieldauth-shared: the program needs libfieldauth.so
    // and finds it through its rpath.
    let shared_user = dir.join("user-shared");
    std::fs::create_dir_all(&shared_user).unwrap();
    std::fs::copy(user.join("app.c"), shared_user.join("app.c")).unwrap();
    shell(
        &shared_user,
        &compile.replace(
            "pkg-config --cflags --libs fieldauth)",
            "pkg-config --cflags --libs fieldauth-shared)",
        ),
    );
    let out = shell(&shared_user, &start);
    assert!(text(&out.stdout).contains("Authorization: Bearer demo-key"));
    let dynamic = dynamic_section(&shared_user.join("app"));
    assert!(
        dynamic.contains("libfieldauth.so")
            && dynamic.contains(&prefix.join("lib").display().to_string()),
        "the shared link needs libfieldauth.so and an rpath to the prefix:\n{dynamic}"
    );
}

/// The README's lines that build and start a program against the installed
/// library: the `cc ... $(pkg-config --cflags --libs fieldauth) ...` line and
/// the `./app` line after it, from the same ```sh block, which also installs
/// with `ffi/pkg/install.sh` and sets `PKG_CONFIG_PATH`.
fn readme_pkg_config_lines() -> (String, String) {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut block: Vec<&str> = Vec::new();
    let mut inside = false;
    for line in readme.lines() {
        if inside && line.trim_start().starts_with("```") {
            if block
                .iter()
                .any(|l| l.contains("$(pkg-config --cflags --libs fieldauth)"))
            {
                break;
            }
            inside = false;
            block.clear();
        } else if inside {
            block.push(line);
        } else if line.trim() == "```sh" {
            inside = true;
        }
    }
    let compile = block
        .iter()
        .find(|l| l.contains("$(pkg-config --cflags --libs fieldauth)"))
        .unwrap_or_else(|| {
            panic!("README.md has no ```sh line with `$(pkg-config --cflags --libs fieldauth)`")
        });
    assert!(
        block.iter().any(|l| l.starts_with("ffi/pkg/install.sh "))
            && block
                .iter()
                .any(|l| l.starts_with("export PKG_CONFIG_PATH=")),
        "README.md's pkg-config block should install and set PKG_CONFIG_PATH: {block:?}"
    );
    let start = block
        .iter()
        .find(|l| l.trim() == "./app")
        .unwrap_or_else(|| panic!("README.md's pkg-config block does not run ./app: {block:?}"));
    // The command without its comment, if any.
    let compile = compile.split(" #").next().unwrap().trim().to_string();
    assert!(
        compile.starts_with("cc ") && compile.ends_with("-o app"),
        "{compile}"
    );
    (compile, start.trim().to_string())
}

/// `readelf -d` of an executable: its NEEDED libraries and RUNPATH/RPATH.
fn dynamic_section(exe: &Path) -> String {
    text(&run(Command::new("readelf").arg("-dW").arg(exe)).stdout)
}
