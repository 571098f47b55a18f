//! `include/fieldauth.h`: compiles cleanly as C99, C11, C17 and C++17 with
//! `-Wall -Wextra -Werror -pedantic`; its version macros match Cargo.toml;
//! its size constants match the library's; ignoring a status warns.
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

fn header() -> String {
    std::fs::read_to_string(include_dir().join("fieldauth.h")).unwrap()
}

/// The value of `#define NAME value`.
fn define(h: &str, name: &str) -> String {
    let prefix = format!("#define {name} ");
    h.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no #define {name} in the header"))
        .trim()
        .to_string()
}

#[test]
fn header_compiles_cleanly_as_c99_c11_c17_and_cpp17() {
    let dir = scratch("header");
    let src = root().join("tests/c/header_check.c");
    for std in ["c99", "c11", "c17"] {
        let exe = dir.join(format!("header_{std}"));
        run(Command::new(cc())
            .arg(format!("-std={std}"))
            .args(STRICT)
            .arg("-I")
            .arg(include_dir())
            .arg(&src)
            .arg(static_lib())
            .arg("-o")
            .arg(&exe));
        run(&mut Command::new(&exe));
    }
    let cpp = dir.join("header_check.cpp");
    std::fs::copy(&src, &cpp).unwrap();
    let exe = dir.join("header_cpp17");
    run(Command::new(cxx())
        .arg("-std=c++17")
        .args(STRICT)
        .arg("-I")
        .arg(include_dir())
        .arg(&cpp)
        .arg(static_lib())
        .arg("-o")
        .arg(&exe));
    run(&mut Command::new(&exe));
}

#[test]
fn ignoring_a_status_is_a_warning() {
    let dir = scratch("unused_status");
    let out = run_any(
        Command::new(cc())
            .args(["-std=c11", "-c"])
            .args(STRICT)
            .arg("-I")
            .arg(include_dir())
            .arg(root().join("tests/c/unused_status.c"))
            .arg("-o")
            .arg(dir.join("unused.o")),
    );
    assert!(
        !out.status.success(),
        "ignoring a fieldauth_status compiled without a warning"
    );
    assert!(
        text(&out.stderr).contains("unused-result"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn version_macros_match_cargo_toml() {
    let h = header();
    assert_eq!(
        define(&h, "FIELDAUTH_VERSION_MAJOR"),
        env!("CARGO_PKG_VERSION_MAJOR")
    );
    assert_eq!(
        define(&h, "FIELDAUTH_VERSION_MINOR"),
        env!("CARGO_PKG_VERSION_MINOR")
    );
    assert_eq!(
        define(&h, "FIELDAUTH_VERSION_PATCH"),
        env!("CARGO_PKG_VERSION_PATCH")
    );
    assert_eq!(
        define(&h, "FIELDAUTH_VERSION_STRING"),
        format!("\"{}\"", env!("CARGO_PKG_VERSION"))
    );
    // SAFETY: a static NUL-terminated string.
    let v = unsafe { std::ffi::CStr::from_ptr(fieldauth::fieldauth_version()) };
    assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}

#[test]
fn size_constants_match_the_library() {
    let h = header();
    let num = |name: &str| define(&h, name).parse::<usize>().unwrap();
    assert_eq!(
        num("FIELDAUTH_SESSION_SIZE"),
        fieldauth::FIELDAUTH_SESSION_SIZE
    );
    assert_eq!(num("FIELDAUTH_HEAD_SIZE"), fieldauth::FIELDAUTH_HEAD_SIZE);
    assert_eq!(num("FIELDAUTH_BODY_SIZE"), fieldauth::FIELDAUTH_BODY_SIZE);
    assert_eq!(num("FIELDAUTH_SESSION_ALIGN"), 8);
    assert_eq!(
        fieldauth::fieldauth_session_sizeof(),
        fieldauth::FIELDAUTH_SESSION_SIZE
    );
    assert_eq!(
        fieldauth::fieldauth_head_sizeof(),
        fieldauth::FIELDAUTH_HEAD_SIZE
    );
    assert_eq!(
        fieldauth::fieldauth_body_sizeof(),
        fieldauth::FIELDAUTH_BODY_SIZE
    );
    assert_eq!(
        std::mem::size_of::<fieldauth::fieldauth_session>(),
        fieldauth::FIELDAUTH_SESSION_SIZE
    );
}

/// The function names declared at the start of a header line.
fn prototypes(h: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, l) in h.lines().enumerate() {
        if l.starts_with([' ', '#', '/', '*']) || l.starts_with("typedef") {
            continue;
        }
        let Some(open) = l.find('(') else { continue };
        let before = &l[..open];
        let Some(start) = before.rfind([' ', '*']) else {
            continue;
        };
        let name = &before[start + 1..];
        if name.starts_with("fieldauth_") {
            out.push((i, name.to_string()));
        }
    }
    out
}

#[test]
fn header_declares_and_documents_every_exported_function() {
    let h = header();
    let lines: Vec<&str> = h.lines().collect();
    let protos = prototypes(&h);
    for (i, name) in &protos {
        // A doc comment ends right above the prototype (or above FIELDAUTH_MUST_USE).
        let above: Vec<&str> = lines[..*i].iter().rev().take(2).copied().collect();
        assert!(
            above.iter().any(|b| b.trim() == "*/"),
            "undocumented: {name}"
        );
        let line = lines[*i];
        if line.contains("fieldauth_status fieldauth_") {
            assert!(
                line.starts_with("FIELDAUTH_MUST_USE") || lines[i - 1] == "FIELDAUTH_MUST_USE",
                "status of {name} is not FIELDAUTH_MUST_USE"
            );
        }
    }
    // The header and the library agree on the exported functions.
    let mut exported: Vec<String> = symbols(&static_lib())
        .into_iter()
        .filter(|(defined, n)| *defined && n.starts_with("fieldauth_"))
        .map(|(_, n)| n)
        .collect();
    exported.sort();
    exported.dedup();
    let mut declared: Vec<String> = protos.into_iter().map(|(_, n)| n).collect();
    declared.sort();
    assert_eq!(declared, exported);
    assert!(declared.len() >= 40, "{declared:?}");
}
