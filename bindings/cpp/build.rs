//! Generates and compiles the C++ half of the cxx bridge (`src/lib.rs`):
//! `<target>/cxxbridge/fieldauth-cpp/src/lib.rs.h` (declarations, included
//! by `include/fieldauth.hpp`), `<target>/cxxbridge/rust/cxx.h`, and the
//! bridge's C++ definitions, bundled into `libfieldauth_cpp.a`.

fn main() {
    cxx_build::bridge("src/lib.rs")
        .std("c++17")
        .flag_if_supported("-Wall")
        .flag_if_supported("-Wextra")
        .compile("fieldauth-cpp-bridge");
    println!("cargo:rerun-if-changed=src/lib.rs");
    println!("cargo:rerun-if-changed=build.rs");
    // The integration test finds the C++ compiler for the same target.
    if let Ok(target) = std::env::var("TARGET") {
        println!("cargo:rustc-env=FIELDAUTH_CPP_TARGET={target}");
    }
}
