// A build script fails the build on error: that is what `expect` is for here.
#![allow(clippy::expect_used)]

//! Regenerates `../include/fieldauth.h` from `src/` with cbindgen (pinned in
//! Cargo.toml) on every build that changes the sources. The header is
//! committed; CI builds and then runs `git diff --exit-code include/`, so a
//! stale or hand-edited header fails CI.
//!
//! The version macros are generated from this package's version, so they
//! always match Cargo.toml.

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../include/fieldauth.h");

    // The C tests discover the C compiler for the target with the `cc` crate.
    let target = env::var("TARGET").expect("TARGET");
    println!("cargo:rustc-env=FIELDAUTH_BUILD_TARGET={target}");
    // ELF shared library: give it a SONAME so consumers record `libfieldauth.so`.
    if target.contains("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libfieldauth.so");
    }

    let mut config =
        cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("read cbindgen.toml");
    let v = |k: &str| env::var(k).expect("package version");
    let (major, minor, patch) = (
        v("CARGO_PKG_VERSION_MAJOR"),
        v("CARGO_PKG_VERSION_MINOR"),
        v("CARGO_PKG_VERSION_PATCH"),
    );
    let version = format!(
        "\n/** Version of this header (generated from Cargo.toml). Compare with\n \
         * fieldauth_version_number() at run time to detect a header/library mismatch. */\n\
         #define FIELDAUTH_VERSION_MAJOR {major}\n\
         #define FIELDAUTH_VERSION_MINOR {minor}\n\
         #define FIELDAUTH_VERSION_PATCH {patch}\n\
         #define FIELDAUTH_VERSION_STRING \"{major}.{minor}.{patch}\"\n\
         /** MAJOR << 16 | MINOR << 8 | PATCH, as fieldauth_version_number() returns it. */\n\
         #define FIELDAUTH_VERSION_NUMBER ((FIELDAUTH_VERSION_MAJOR << 16) | (FIELDAUTH_VERSION_MINOR << 8) | FIELDAUTH_VERSION_PATCH)\n"
    );
    config.after_includes = Some(version + config.after_includes.as_deref().unwrap_or(""));

    let mut header = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen: generate include/fieldauth.h")
        .write(&mut header);

    let path = dir.join("../include/fieldauth.h");
    if fs::read(&path).ok().as_deref() != Some(&header[..]) {
        fs::create_dir_all(dir.join("../include")).expect("create include/");
        fs::write(&path, &header).expect("write include/fieldauth.h");
    }
}
