//! Firmware: `libfieldauth.a` for `thumbv7em-none-eabihf` (Cortex-M4F) linked
//! into bare-metal C programs (the C API only) with `arm-none-eabi-gcc
//! -nostdlib`, for both the `release` and the `firmware` (opt-level z)
//! profiles, next to a baseline image (same startup, trivial main):
//! `tests/firmware-c/main.c` calls every entry point, `one_preset.c` only
//! what a device with one preset (Autotask: client_credentials, Bearer,
//! X-RateLimit/Retry-After, snapshot) calls — issue #13's "one preset" row,
//! linked with the library built as such a device builds it
//! (`--no-default-features`: none of the core's optional parts). It
//!
//! 1. prints flash (text + data) and RAM (data + bss) of every image, from
//!    `arm-none-eabi-size`, and writes the table to
//!    `target/ffi-c/tests/firmware_link/sizes.txt`;
//! 2. checks with `arm-none-eabi-nm` that neither the library nor the linked
//!    images define or reference an allocator (malloc/free/calloc/realloc or
//!    Rust's `__rust_alloc` family), and that the images have no undefined
//!    or weak-undefined symbol (the link itself fails on undefined ones);
//! 3. runs the images on QEMU's `mps2-an386` (a Cortex-M4F board) with
//!    semihosting, so the programs' checks execute on the target ISA and
//!    their exit status (the number of failed checks) is checked — and
//!    proves (with main.c) that a failing check does reach that status;
//! 4. holds both C images to flash regression budgets, and main.c's run to a
//!    stack budget.
//!
//! Tools (Debian packages): gcc-arm-none-eabi, binutils-arm-none-eabi,
//! qemu-system-arm; the Rust target: `rustup target add
//! thumbv7em-none-eabihf`. None of them is optional: a missing one fails the
//! test with the command that installs it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::print_stdout
)]

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Issue #13's stack target for the stack peak QEMU measures while main.c
/// runs (main's own frames included): 936 B (firmware profile; 948 B
/// release) since main.c keeps its results in static storage, 1,056 B
/// before that, 1,956 B before issue #13's stack work, and 8.5 KB while
/// fieldauth_session_init built the session on the stack.
const STACK_BUDGET: u32 = 1024;
/// Issue #13's stack target, which the one-preset image (a device's real
/// program) meets: its QEMU peak must stay within it (900 B measured).
const ONE_PRESET_STACK_TARGET: u32 = 1024;

/// Regression budget for the `firmware`-profile C image's flash over the
/// baseline (main.c's own 5.3 KB included): the measured 52,012 bytes plus a
/// small margin (52,360 before issue #13's stack work; 49,794 before the
/// redirect parser, the extra request parameters and the Bearer texts of
/// issue #14; 51,464 measured after the second round of issue #13's
/// levers). Not the project's target, which is not met.
const C_FLASH_BUDGET: u64 = 51_800;

/// Regression budget for the library share of the `firmware`-profile
/// one-preset image (`one_preset.c`): its flash over the baseline minus
/// `one_preset.o`'s own text and data. The measured figure plus about 2 %;
/// issue #13's target is 14,000 bytes.
const ONE_PRESET_BUDGET: u64 = ONE_PRESET_MEASURED + ONE_PRESET_MEASURED / 50;
/// The library share of the one-preset image when its budget was last set:
/// 34,780 with the library built `--no-default-features` after issue #13's
/// size levers (the redirect parser behind feature `redirect`, the session's
/// clock out of line); 35,442 after issue #13's stack work (36,064 before
/// it; 40,024 with every optional part, as it was linked before issue #13's
/// device build; 37,904 before issue #14's redirect parser, extra
/// parameters and Bearer texts).
const ONE_PRESET_MEASURED: u64 = 34_780;

use common::*;

const TARGET: &str = "thumbv7em-none-eabihf";
const GCC: &str = "arm-none-eabi-gcc";
const SIZE: &str = "arm-none-eabi-size";
const NM: &str = "arm-none-eabi-nm";
const QEMU: &str = "qemu-system-arm";

/// Cortex-M4 with the single-precision FPU, hard-float ABI (what
/// `thumbv7em-none-eabihf` is), optimized for size, one section per function
/// and object so `--gc-sections` keeps only what is used.
const CFLAGS: &[&str] = &[
    "-mcpu=cortex-m4",
    "-mthumb",
    "-mfloat-abi=hard",
    "-mfpu=fpv4-sp-d16",
    "-Os",
    "-ffunction-sections",
    "-fdata-sections",
    "-ffreestanding",
    "-std=c11",
];

/// Symbols of an allocator: exact C names...
const ALLOC_C: &[&str] = &["malloc", "free", "calloc", "realloc"];
/// ...and Rust's allocator shims, matched as substrings (recent rustc mangles
/// them, e.g. `_RNvCs..._7___rustc12___rust_alloc`).
const ALLOC_RUST: &[&str] = &[
    "__rust_alloc", // also __rust_alloc_zeroed, __rust_alloc_error_handler
    "__rust_dealloc",
    "__rust_realloc",
    "__rg_alloc",
    "__rdl_alloc",
    "__rust_no_alloc_shim_is_unstable",
];

/// The two profiles measured: `release` is what `.ci/run` and the host
/// tests build; `firmware` (opt-level "z", LTO) is what size reports use.
const PROFILES: &[&str] = &["release", "firmware"];

fn sources() -> PathBuf {
    root().join("tests").join("firmware-c")
}

/// The nested target directory of the thumbv7em builds (the outer `cargo
/// test` holds the lock of `target/`; see `common`).
fn firmware_target() -> PathBuf {
    root().join("target").join("ffi-firmware")
}

/// Fails with the `rustup` command unless the Rust target is installed.
fn require_rust_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = run(Command::new(rustc).args(["--print", "sysroot"]));
    let sysroot = PathBuf::from(text(&out.stdout).trim());
    let lib = sysroot.join("lib").join("rustlib").join(TARGET).join("lib");
    assert!(
        lib.is_dir(),
        "the Rust target {TARGET} is not installed (no {}): run `rustup target add {TARGET}`",
        lib.display()
    );
}

/// Builds `libfieldauth.a` for the target with `profile`; returns its path.
/// `minimal`: without the core's optional parts (`--no-default-features`:
/// no device flow, PKCE, Basic authentication, IETF RateLimit, obsolete
/// dates, extra parameters or redirect parser), what a device with one
/// provider preset builds; in a target directory of its own (same file
/// name).
fn build_library(profile: &str, minimal: bool) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target_dir = if minimal {
        firmware_target().with_file_name("ffi-firmware-minimal")
    } else {
        firmware_target()
    };
    let mut cmd = Command::new(cargo);
    cmd.args(["rustc", "-p", "fieldauth-ffi", "--profile", profile])
        .args(["--target", TARGET, "--crate-type", "staticlib", "--quiet"]);
    if minimal {
        cmd.arg("--no-default-features");
    }
    run(cmd.current_dir(root()).env("CARGO_TARGET_DIR", &target_dir));
    let lib = target_dir.join(TARGET).join(profile).join("libfieldauth.a");
    assert!(lib.is_file(), "cargo built no {}", lib.display());
    lib
}

/// Compiles one C file of `tests/firmware-c` into an object in `dir`.
fn compile(dir: &Path, src: &str, obj: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(obj);
    run(Command::new(GCC)
        .args(CFLAGS)
        .args(STRICT)
        .args(extra)
        .arg("-I")
        .arg(include_dir())
        .arg("-c")
        .arg(sources().join(src))
        .arg("-o")
        .arg(&out));
    out
}

/// Links objects (and archives) with the board's linker script: no C
/// library, no libgcc, unused sections dropped.
fn link(dir: &Path, board: &str, inputs: &[&Path], out: &str) -> PathBuf {
    let elf = dir.join(out);
    run(Command::new(GCC)
        .args(CFLAGS)
        .args(["-nostdlib", "-Wl,--gc-sections", "-Wl,-z,noexecstack"])
        .arg("-L")
        .arg(sources())
        .arg("-T")
        .arg(format!("{board}.ld"))
        .arg(format!("-Wl,-Map={}", elf.with_extension("map").display()))
        .args(inputs)
        .arg("-o")
        .arg(&elf));
    elf
}

/// `(text, data, bss)` of an image, from `arm-none-eabi-size` (Berkeley
/// format: text counts code and read-only data, data the initialized RAM
/// that also occupies flash, bss the zeroed RAM).
fn size(path: &Path) -> (u64, u64, u64) {
    let out = text(&run(Command::new(SIZE).arg(path)).stdout);
    let row: Vec<u64> = out
        .lines()
        .nth(1)
        .unwrap_or_else(|| panic!("no size row for {}:\n{out}", path.display()))
        .split_whitespace()
        .take(3)
        .map(|v| v.parse().unwrap())
        .collect();
    (row[0], row[1], row[2])
}

/// The symbols of an object, archive or image as `(type letter, name)`,
/// from `arm-none-eabi-nm`. `--target=elf32-littlearm` reads the ELF symbol
/// tables directly: without it, binutils hands the compiler_builtins members
/// (which embed LLVM bitcode) to the system's LLVM gold plugin, which may
/// fail on newer bitcode and report them as having "no symbols".
fn nm(path: &Path) -> Vec<(char, String)> {
    let out = run(Command::new(NM).arg("--target=elf32-littlearm").arg(path));
    let err = text(&out.stderr);
    assert!(
        !err.contains("plugin"),
        "{NM} used a bfd plugin on {}: {err}",
        path.display()
    );
    text(&out.stdout)
        .lines()
        .filter_map(|l| {
            // "ADDR T name" for defined symbols, "         U name" for undefined.
            let mut cols = l.split_whitespace().rev();
            let name = cols.next()?;
            let kind = cols.next()?;
            (kind.len() == 1).then(|| (kind.chars().next().unwrap(), name.to_string()))
        })
        .collect()
}

/// The allocator symbols (defined or undefined) among `symbols`.
fn allocator_symbols(symbols: &[(char, String)]) -> Vec<String> {
    symbols
        .iter()
        .filter(|(_, n)| ALLOC_C.contains(&n.as_str()) || ALLOC_RUST.iter().any(|r| n.contains(r)))
        .map(|(k, n)| format!("{k} {n}"))
        .collect()
}

fn defines(symbols: &[(char, String)], name: &str) -> bool {
    symbols
        .iter()
        .any(|(k, n)| n == name && !matches!(k, 'U' | 'w' | 'v'))
}

/// Instructions of one token exchange and of one authorized API call, from
/// one_preset.c's `ticks:` line (SysTick ticks under `-icount shift=0`: 40
/// instructions each, to within one tick). The line's calibration loop of
/// 50,000 instructions must read 1,250 ticks, or the conversion is wrong.
fn instructions_of(console: &str) -> (u64, u64) {
    let line = console
        .lines()
        .find_map(|l| l.strip_prefix("ticks: "))
        .unwrap_or_else(|| panic!("no `ticks:` line in the console:\n{console}"));
    let num = |key: &str| -> u64 {
        let rest = &line[line
            .find(key)
            .unwrap_or_else(|| panic!("no {key} in {line}"))
            + key.len()..];
        rest.trim_start()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|d| d.parse().ok())
            .unwrap_or_else(|| panic!("no number after {key} in {line}"))
    };
    assert_eq!(
        num("calibration"),
        1_250,
        "the calibration loop (50,000 instructions) did not read 1,250 SysTick ticks: \
         is QEMU running with -icount shift=0 on mps2-an386 (25 MHz)? {line}"
    );
    (num("token exchange") * 40, num("api call") * 40)
}

/// Runs a semihosting image on QEMU's Cortex-M4F board (60 s limit);
/// returns its exit status and console output.
fn qemu(elf: &Path) -> (i32, String) {
    let dir = elf.parent().unwrap();
    let log = dir.join(format!(
        "{}.qemu.log",
        elf.file_stem().unwrap().to_string_lossy()
    ));
    // The semihosting console goes to QEMU's stderr, its own messages to
    // either: both are kept in the log.
    let out = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(QEMU)
        .args(["-M", "mps2-an386", "-nographic", "-monitor", "none"])
        .args(["-serial", "none"])
        .args(["-semihosting-config", "enable=on,target=native"])
        // Virtual time, 1 ns per instruction: runs are deterministic and
        // SysTick counts instructions (one tick = 40 at the board's 25 MHz).
        .args(["-icount", "shift=0"])
        .arg("-kernel")
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {QEMU}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} did not finish within 60 s on QEMU; console:\n{}",
                elf.display(),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let console = std::fs::read_to_string(&log).unwrap();
    let code = status
        .code()
        .unwrap_or_else(|| panic!("QEMU was killed ({status}); console:\n{console}"));
    (code, console)
}

/// `(checks, failed, stack peak)` from a program's closing line, e.g.
/// main.c's "fieldauth firmware: N checks, F failed; stack peak B bytes"
/// (`prefix` is "fieldauth firmware: ").
fn summary_of(console: &str, prefix: &str) -> (u32, u32, u32) {
    let line = console
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no summary line on the console:\n{console}"));
    let nums: Vec<u32> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(nums.len(), 3, "unexpected summary line: {line}");
    (nums[0], nums[1], nums[2])
}

/// `summary_of` main.c's closing line.
fn summary(console: &str) -> (u32, u32, u32) {
    summary_of(console, "fieldauth firmware: ")
}

/// One image's row of the size table.
struct Row {
    name: String,
    text: u64,
    data: u64,
    bss: u64,
}

impl Row {
    fn of(name: &str, elf: &Path) -> Row {
        let (text, data, bss) = size(elf);
        Row {
            name: name.into(),
            text,
            data,
            bss,
        }
    }
    fn flash(&self) -> u64 {
        self.text + self.data
    }
    fn ram(&self) -> u64 {
        self.data + self.bss
    }
}

#[test]
fn firmware_links_with_arm_none_eabi_gcc_without_allocator_and_runs_on_qemu() {
    require(GCC, "gcc-arm-none-eabi");
    require(SIZE, "binutils-arm-none-eabi");
    require(NM, "binutils-arm-none-eabi");
    require(QEMU, "qemu-system-arm");
    require_rust_target();

    let dir = scratch("firmware_link");
    let startup = compile(&dir, "startup.c", "startup.o", &[]);
    let main = compile(&dir, "main.c", "main.o", &[]);
    let failing = compile(&dir, "main.c", "main-fail.o", &["-DFW_FORCE_FAILURE"]);
    let baseline = compile(&dir, "baseline.c", "baseline.o", &[]);
    let one = compile(&dir, "one_preset.c", "one_preset.o", &[]);

    // The allocator check itself can fail: an object that calls malloc is
    // caught, and so is a (mangled) Rust allocator shim.
    let probe_src = dir.join("alloc_probe.c");
    std::fs::write(
        &probe_src,
        "void *malloc(unsigned n);\nvoid *probe(void) { return malloc(4); }\n\
         void _RNvCs1_7___rustc12___rust_alloc(void) {}\n",
    )
    .unwrap();
    let probe = dir.join("alloc_probe.o");
    run(Command::new(GCC)
        .args(CFLAGS)
        .arg("-c")
        .arg(&probe_src)
        .arg("-o")
        .arg(&probe));
    assert_eq!(
        allocator_symbols(&nm(&probe)),
        ["T _RNvCs1_7___rustc12___rust_alloc", "U malloc"],
        "the allocator-symbol check does not see an allocator"
    );

    let base_elf = link(&dir, "cortex-m4", &[&startup, &baseline], "baseline.elf");
    let base = Row::of("baseline (startup + empty main)", &base_elf);
    let base_syms = nm(&base_elf);
    assert!(
        !base_syms.iter().any(|(_, n)| n.starts_with("fieldauth_")),
        "the baseline image contains fieldauth"
    );
    let (main_text, main_data, main_bss) = size(&main);
    let (one_text, one_data, _) = size(&one);

    // Baseline on the board: the startup code itself works.
    let base_qemu = link(
        &dir,
        "mps2-an386",
        &[&startup, &baseline],
        "baseline-qemu.elf",
    );
    let (code, console) = qemu(&base_qemu);
    assert!(
        code == 0 && console.contains("baseline: ok"),
        "the baseline image failed on QEMU (exit {code}):\n{console}"
    );

    let mut report = String::new();
    writeln!(
        report,
        "fieldauth on a Cortex-M4F: arm-none-eabi-gcc -Os -nostdlib --gc-sections, \
         libfieldauth.a for {TARGET}\n\
         flash = text + data, RAM = data + bss (static; stack not included)\n"
    )
    .unwrap();
    writeln!(
        report,
        "{:<46} {:>8} {:>6} {:>7} {:>8} {:>8}",
        "image", "text", "data", "bss", "flash", "RAM"
    )
    .unwrap();
    let mut row = |r: &Row| {
        writeln!(
            report,
            "{:<46} {:>8} {:>6} {:>7} {:>8} {:>8}",
            r.name,
            r.text,
            r.data,
            r.bss,
            r.flash(),
            r.ram()
        )
        .unwrap();
    };
    row(&base);

    let mut notes = String::new();
    let mut one_notes = String::new();
    let mut one_rows = Vec::new();
    for profile in PROFILES {
        let lib = build_library(profile, false);
        let minimal = build_library(profile, true);

        // No allocator in the library, defined or referenced.
        let lib_syms = nm(&lib);
        assert!(
            defines(&lib_syms, "fieldauth_session_init") && defines(&lib_syms, "memcpy"),
            "{NM} did not read the library and its compiler_builtins members"
        );
        let found = allocator_symbols(&lib_syms);
        assert!(
            found.is_empty(),
            "{} ({profile}) has allocator symbols: {found:?}",
            lib.display()
        );

        // The image links (an undefined reference fails the link) ...
        let elf = link(
            &dir,
            "cortex-m4",
            &[&startup, &main, &lib],
            &format!("firmware-{profile}.elf"),
        );
        let syms = nm(&elf);
        assert!(
            defines(&syms, "fieldauth_session_authorize"),
            "the library is not in the image"
        );
        // ... with nothing left unresolved (weak undefined symbols would
        // silently become address 0) and no allocator.
        let unresolved: Vec<_> = syms
            .iter()
            .filter(|(k, _)| matches!(k, 'U' | 'w' | 'v'))
            .collect();
        assert!(
            unresolved.is_empty(),
            "unresolved symbols in {}: {unresolved:?}",
            elf.display()
        );
        let found = allocator_symbols(&syms);
        assert!(
            found.is_empty(),
            "allocator symbols in the image: {found:?}"
        );
        // memcpy/memset come from Rust's compiler_builtins in the archive.
        assert!(
            defines(&syms, "memcpy") || defines(&syms, "__aeabi_memcpy"),
            "no memcpy in the image"
        );

        let fw = Row::of(&format!("firmware, {profile} profile"), &elf);
        assert!(
            fw.flash() > base.flash() + 10_000,
            "implausibly small image: {} bytes",
            fw.flash()
        );
        // The library has no static RAM of its own: every RAM symbol of the
        // image is main.c's or the startup's storage (session, head,
        // buffers), and the RAM is theirs plus at most the links' alignment
        // padding between their sections.
        // (Every symbol of the baseline image counts as its own: that takes
        // in the linker script's, whose kind letter nm may give either way.)
        let own: std::collections::BTreeSet<String> = nm(&main)
            .into_iter()
            .chain(nm(&startup))
            .filter(|(k, _)| "dDbB".contains(*k))
            .chain(nm(&base_elf))
            .map(|(_, n)| n)
            .collect();
        let foreign: Vec<String> = nm(&elf)
            .into_iter()
            .filter(|(k, n)| "dDbB".contains(*k) && !own.contains(n))
            .map(|(_, n)| n)
            .collect();
        assert!(
            foreign.is_empty(),
            "libfieldauth.a ({profile}) brought static RAM (.data/.bss) into the image: {foreign:?}"
        );
        let ram_own = base.ram() + main_data + main_bss;
        assert!(
            (ram_own..=ram_own + 32).contains(&fw.ram()),
            "the image's RAM ({}) is not main.c's and the startup's ({ram_own}) plus alignment",
            fw.ram()
        );
        if *profile == "firmware" {
            assert!(
                fw.flash() - base.flash() <= C_FLASH_BUDGET,
                "the C firmware image grew to {} bytes over the baseline, above the \
                 regression budget of {C_FLASH_BUDGET}: find what a change added \
                 (arm-none-eabi-nm --size-sort on the .elf) or raise the budget on purpose",
                fw.flash() - base.flash()
            );
        }
        row(&fw);
        writeln!(
            notes,
            "difference ({profile}): flash {} bytes, RAM {} bytes",
            fw.flash() - base.flash(),
            fw.ram() - base.ram()
        )
        .unwrap();

        // The same objects at QEMU's memory map: main's checks run.
        let qemu_elf = link(
            &dir,
            "mps2-an386",
            &[&startup, &main, &lib],
            &format!("firmware-{profile}-qemu.elf"),
        );
        let (code, console) = qemu(&qemu_elf);
        let (checks, failed, stack) = summary(&console);
        assert!(
            code == 0 && failed == 0,
            "firmware ({profile}) failed on QEMU (exit {code}):\n{console}"
        );
        assert!(checks >= 150, "only {checks} checks ran:\n{console}");
        assert!(
            stack <= STACK_BUDGET,
            "firmware ({profile}): stack peak {stack} bytes exceeds the regression budget of \
             {STACK_BUDGET} bytes: a change put a large temporary on the stack (build objects \
             in place, as fieldauth_session_init does with Session::new_in)"
        );
        writeln!(
            notes,
            "QEMU mps2-an386 ({profile}): {checks} checks passed, stack peak {stack} bytes"
        )
        .unwrap();

        // One preset: the same library under a program that uses only what
        // an Autotask device uses; --gc-sections keeps only what it reaches.
        let one_elf = link(
            &dir,
            "cortex-m4",
            &[&startup, &one, &minimal],
            &format!("one-preset-{profile}.elf"),
        );
        let one_syms = nm(&one_elf);
        assert!(
            !one_syms.iter().any(|(k, _)| matches!(k, 'U' | 'w' | 'v'))
                && allocator_symbols(&one_syms).is_empty(),
            "unresolved or allocator symbols in {}",
            one_elf.display()
        );
        let one_row = Row::of(
            &format!("one preset (one_preset.c), {profile} profile"),
            &one_elf,
        );
        let one_over = one_row.flash() - base.flash();
        let one_share = one_over - (one_text + one_data);
        if *profile == "firmware" {
            assert!(
                one_share <= ONE_PRESET_BUDGET,
                "the one-preset C image's library share grew to {one_share} bytes, above the \
                 regression budget of {ONE_PRESET_BUDGET}: find what a change added \
                 (arm-none-eabi-nm --size-sort on {}) or raise ONE_PRESET_MEASURED on purpose",
                one_elf.display()
            );
        }
        one_rows.push(one_row);
        let one_qemu = link(
            &dir,
            "mps2-an386",
            &[&startup, &one, &minimal],
            &format!("one-preset-{profile}-qemu.elf"),
        );
        let (code, console) = qemu(&one_qemu);
        let (checks, failed, one_stack) = summary_of(&console, "fieldauth one preset: ");
        assert!(
            code == 0 && failed == 0 && checks >= 20,
            "one_preset.c ({profile}) failed on QEMU (exit {code}, {checks} checks):\n{console}"
        );
        assert!(
            one_stack <= ONE_PRESET_STACK_TARGET,
            "one_preset.c ({profile}): stack peak {one_stack} bytes, above issue #13's \
             {ONE_PRESET_STACK_TARGET}-byte target (STACK_CHAINS=1 python3 \
             tests/firmware-c/stack_report.py shows each entry point's deepest chain)"
        );
        let (exchange, api) = instructions_of(&console);
        writeln!(
            one_notes,
            "one preset ({profile}): flash {one_over} bytes over the baseline, of which \
             one_preset.c's own {}: library share {one_share} bytes (budget {}); QEMU: \
             {checks} checks passed, stack peak {one_stack} bytes; instructions: one token \
             exchange {exchange}, one authorized API call {api}",
            one_text + one_data,
            if *profile == "firmware" {
                ONE_PRESET_BUDGET.to_string()
            } else {
                "none".to_string()
            }
        )
        .unwrap();

        // A failed check reaches the exit status.
        let bad = link(
            &dir,
            "mps2-an386",
            &[&startup, &failing, &lib],
            &format!("firmware-{profile}-fail.elf"),
        );
        let (code, console) = qemu(&bad);
        assert_eq!(
            (code, summary(&console).1),
            (1, 1),
            "a forced failure did not reach the exit status:\n{console}"
        );
    }
    for r in &one_rows {
        row(r);
    }
    writeln!(
        report,
        "\n{notes}main.c's own share of each difference: flash {} bytes (code and canned \
         responses), RAM {} bytes (session, head, buffers); the library has no static RAM\n\n\
         {one_notes}",
        main_text + main_data,
        main_data + main_bss
    )
    .unwrap();
    println!("{report}");
    std::fs::write(dir.join("sizes.txt"), &report).unwrap();
}

/// docs/PORTING.md's RTOS task (`tests/firmware-c/porting_example.c`: an
/// Autotask client over mbedTLS-style callbacks, a FreeRTOS-style tick
/// clock, flash snapshots) builds for the Cortex-M4F: compiled with the
/// strict flags, linked with `libfieldauth.a` (`firmware` profile) and
/// `porting_stubs.c` (placeholders for the platform it declares) with
/// nothing unresolved and no allocator. Built, not run: the stubs do no I/O.
#[test]
fn porting_example_builds_for_the_cortex_m4() {
    require(GCC, "gcc-arm-none-eabi");
    require(SIZE, "binutils-arm-none-eabi");
    require(NM, "binutils-arm-none-eabi");
    require_rust_target();

    let dir = scratch("porting_example");
    let startup = compile(&dir, "startup.c", "startup.o", &[]);
    let example = compile(&dir, "porting_example.c", "porting_example.o", &[]);
    let stubs = compile(&dir, "porting_stubs.c", "porting_stubs.o", &[]);
    let lib = build_library("firmware", false);
    let elf = link(
        &dir,
        "cortex-m4",
        &[&startup, &example, &stubs, &lib],
        "porting-example.elf",
    );
    let syms = nm(&elf);
    for name in [
        "fieldauth_task",
        "fieldauth_session_init_preset",
        "fieldauth_session_exchange",
        "fieldauth_session_authorize",
        "fieldauth_session_report_api_response_for",
        "fieldauth_session_snapshot",
        "fieldauth_session_restore",
    ] {
        assert!(defines(&syms, name), "{name} is not in {}", elf.display());
    }
    let unresolved: Vec<_> = syms
        .iter()
        .filter(|(k, _)| matches!(k, 'U' | 'w' | 'v'))
        .collect();
    assert!(
        unresolved.is_empty(),
        "unresolved symbols in {}: {unresolved:?}",
        elf.display()
    );
    let found = allocator_symbols(&syms);
    assert!(
        found.is_empty(),
        "allocator symbols in the image: {found:?}"
    );

    let image = Row::of("porting example", &elf);
    let (text, data, bss) = size(&example);
    let (stub_text, stub_data, _) = size(&stubs);
    println!(
        "porting example (firmware profile): image flash {} B, of which porting_example.o {} B \
         and the stubs {} B; static RAM {} B, of which porting_example.o {} B",
        image.flash(),
        text + data,
        stub_text + stub_data,
        image.ram(),
        data + bss
    );
}
