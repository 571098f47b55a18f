//! The C ABI of fieldauth: `libfieldauth.a` / `libfieldauth.so` and
//! `include/fieldauth.h` (generated from this crate by cbindgen in
//! `build.rs`).
//!
//! - `no_std`, no allocator: every object is caller-allocated storage whose
//!   size and alignment are constants in the header, checked here at compile
//!   time for every target this crate builds for.
//! - Every pointer is checked (NULL, alignment, overlap with the object), every
//!   length and UTF-8 input validated; enumerations cross the boundary as
//!   `uint32_t` and unknown values are errors. Nothing panics (the workspace
//!   lints deny the panicking constructs; `panic = "abort"` is the backstop)
//!   and nothing unwinds into C.
//! - The `std` feature exists only so `cargo test` can link the test harness.
//!
//! The documentation of each item is the header's documentation: read
//! `include/fieldauth.h`.
#![cfg_attr(not(feature = "std"), no_std)]
// C names for C types (`fieldauth_session`, ...): the header is the API.
#![allow(non_camel_case_types)]
#![cfg_attr(
    test,
    allow(
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

// Declaration order is the header's order.
mod body;
mod cell;
mod event;
mod exchange;
mod head;
mod preset;
mod ptr;
mod session;
mod status;
mod types;
mod worker;

pub use body::*;
pub use exchange::*;
pub use head::*;
pub use preset::*;
pub use session::*;
pub use status::*;
pub use types::*;
pub use worker::*;

/// The `no_std` build's panic handler. The library has no panic paths (the
/// workspace lints forbid the constructs, the C tests link every function
/// with `--gc-sections` and check that this handler is gone); should one
/// appear anyway, the device stops here instead of unwinding into C.
#[cfg(not(feature = "std"))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

/// Never called (panics abort): the precompiled `core` of hosted targets
/// refers to Rust's unwinding personality routine, which `std` would
/// provide; without this definition a C program linking `libfieldauth.a`, or
/// loading `libfieldauth.so`, fails on the undefined symbol. Bare-metal
/// targets' `core` is built with `panic = "abort"` and needs nothing.
#[cfg(all(not(feature = "std"), not(target_os = "none")))]
#[no_mangle]
extern "C" fn rust_eh_personality() {}
