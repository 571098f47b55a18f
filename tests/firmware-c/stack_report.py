#!/usr/bin/env python3
"""Worst-case stack of every C entry point of libfieldauth.a on a Cortex-M4F.

Static analysis, for BENCHMARKS.md (not run by .ci/run: it needs nightly Rust
for `-Z emit-stack-sizes`):

    rustup +nightly target add thumbv7em-none-eabihf
    python3 tests/firmware-c/stack_report.py
    STACK_CHAINS=1 python3 tests/firmware-c/stack_report.py   # with each chain

1. Builds libfieldauth.a (firmware profile, thumbv7em-none-eabihf) with
   nightly and `-Z emit-stack-sizes`, so every Rust function's frame size is
   recorded in its object file (`.stack_sizes`, read with llvm-readobj).
2. Links tests/firmware-c/main.c with every `fieldauth_*` function of the
   header kept (`-Wl,-u,...`), using arm-none-eabi-gcc with -fstack-usage
   for the C frames.
3. Builds the call graph from the disassembly (direct `bl`/`b.w` calls) and
   prints, for each entry point, the deepest chain: the stack the library
   needs below the caller's frame.

Limits: indirect calls (the transport callbacks of fieldauth_session_exchange,
which run the caller's code) are not followed; compiler-builtins leaf
functions without recorded sizes (memcpy, memset) count as 0 (they use a few
words). Recursion would be reported (there is none).
"""

from __future__ import annotations

import collections
import glob
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TARGET = "thumbv7em-none-eabihf"
CFLAGS = [
    "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-Os",
    "-ffunction-sections", "-fdata-sections", "-ffreestanding", "-std=c11",
]


def run(cmd: list[str], **kw: object) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout  # type: ignore[call-overload]


def main() -> int:
    work = tempfile.mkdtemp(prefix="fieldauth-stack-")
    target_dir = os.path.join(ROOT, "target", "stack-report")
    env = dict(os.environ, RUSTFLAGS="-Zemit-stack-sizes", CARGO_TARGET_DIR=target_dir)
    subprocess.run(
        ["cargo", "+nightly", "rustc", "-q", "-p", "fieldauth-ffi", "--profile", "firmware",
         "--target", TARGET, "--crate-type", "staticlib"],
        check=True, cwd=ROOT, env=env,
    )
    lib = os.path.join(target_dir, TARGET, "firmware", "libfieldauth.a")
    sysroot = run(["rustc", "--print", "sysroot"]).strip()
    host = re.search(r"^host: (\S+)", run(["rustc", "-vV"]), re.M).group(1)  # type: ignore[union-attr]
    readobj = os.path.join(sysroot, "lib", "rustlib", host, "bin", "llvm-readobj")

    # Frame sizes: Rust from .stack_sizes, C from gcc's .su files.
    objdir = os.path.join(work, "objs")
    os.mkdir(objdir)
    subprocess.run(["arm-none-eabi-ar", "x", lib], check=True, cwd=objdir)
    sizes: dict[str, int] = {}
    for obj in glob.glob(os.path.join(objdir, "*.o")):
        out = subprocess.run([readobj, "--stack-sizes", obj], capture_output=True, text=True).stdout
        for names, size in re.findall(r"Functions: \[(.*?)\]\s*\n\s*Size: (0x[0-9A-Fa-f]+)", out):
            for name in names.split(", "):
                sizes[name] = max(sizes.get(name, 0), int(size, 16))

    header = open(os.path.join(ROOT, "include", "fieldauth.h"), encoding="utf-8").read()
    entries = sorted(set(re.findall(r"\b(fieldauth_[a-z0-9_]+)\(", header)))
    src = os.path.join(ROOT, "tests", "firmware-c")
    elf = os.path.join(work, "all.elf")
    subprocess.run(
        ["arm-none-eabi-gcc", *CFLAGS, "-fstack-usage", "-I", os.path.join(ROOT, "include"),
         "-nostdlib", "-Wl,--gc-sections", "-Wl,-z,noexecstack",
         *[f"-Wl,-u,{e}" for e in entries], "-T", "cortex-m4.ld",
         "startup.c", "main.c", lib, "-o", elf],
        check=True, cwd=src, env=dict(os.environ, TMPDIR=work),
    )
    for su in glob.glob(os.path.join(src, "*.su")) + glob.glob(os.path.join(work, "*.su")):
        for line in open(su, encoding="utf-8"):
            loc, n, _kind = line.rstrip("\n").split("\t")
            sizes[loc.split(":")[-1]] = int(n)
        os.remove(su)

    calls: dict[str, set[str]] = collections.defaultdict(set)
    indirect: set[str] = set()
    cur = None
    for line in run(["arm-none-eabi-objdump", "-d", elf]).splitlines():
        m = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
        if m:
            cur = m.group(1)
            continue
        if cur is None:
            continue
        m = re.search(r"\t(bl|b\.w|b)\s+[0-9a-f]+ <([^>+]+)>", line)
        if m and m.group(2) != cur:
            calls[cur].add(m.group(2))
        if re.search(r"\tblx\s+r", line):
            indirect.add(cur)

    memo: dict[str, tuple[int, list[str]]] = {}
    unknown: set[str] = set()

    def peak(f: str, path: tuple[str, ...] = ()) -> tuple[int, list[str]]:
        if f in path:
            raise SystemExit(f"recursion: {' -> '.join(path + (f,))}")
        if f in memo:
            return memo[f]
        own = sizes.get(f)
        if own is None:
            unknown.add(f)
            own = 0
        best: tuple[int, list[str]] = (0, [])
        for g in calls.get(f, ()):
            r = peak(g, path + (f,))
            if r[0] > best[0]:
                best = r
        memo[f] = (own + best[0], [f"{demangle(f)} ({own})"] + best[1])
        return memo[f]

    rows = sorted(((peak(e), e) for e in entries if e in calls or e in sizes), reverse=True)
    print(f"worst-case stack below the caller, {len(rows)} entry points of libfieldauth.a "
          f"({TARGET}, firmware profile)\n")
    chains = os.environ.get("STACK_CHAINS") == "1"
    for (total, chain), entry in rows:
        note = "  (+ indirect calls, not followed)" if entry in indirect else ""
        print(f"{total:6}  {entry}{note}")
        if chains:  # STACK_CHAINS=1: every entry point's deepest chain
            for link in chain[1:]:
                print(f"          {link}")
    worst = rows[0]
    print(f"\ndeepest chain ({worst[0][0]} bytes):")
    for link in worst[0][1]:
        print(f"  {link}")
    leftover = sorted(u for u in unknown if not u.startswith(("__aeabi_", "mem", "OUTLINED")))
    if leftover:
        print(f"\nfunctions without a recorded frame size (counted as 0): {', '.join(leftover)}")
    return 0


def demangle(name: str) -> str:
    """The last two identifiers of a v0-mangled Rust symbol (`Request::write_http`)."""
    if not name.startswith("_R"):
        return name
    idents, i = [], 0
    while i < len(name):
        m = re.match(r"\d+", name[i:])
        if not m:
            i += 1
            continue
        n, i = int(m.group()), i + len(m.group())
        if name[i:i + 1] == "_":
            i += 1
        ident = name[i:i + n]
        if ident and (ident[0].isalpha() or ident[0] == "_"):
            idents.append(ident)
        i += n
    return "::".join(idents[-2:]) if idents else name


if __name__ == "__main__":
    sys.exit(main())
