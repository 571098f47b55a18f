#!/usr/bin/env python3
"""Where fieldauth's flash goes, and whether it stays within its budgets.

    size_report.py --llvm-bin DIR --budgets tests/firmware/size-budgets \
        full=target/.../fieldauth-firmware-check-full presets=...

For every image (NAME=PATH, a linked Cortex-M ELF) it prints:
- flash (.text + .rodata + .data, as `llvm-size -A` reports them);
- flash per core module (`fieldauth::session`, `fieldauth::body`, ...), from
  the sizes `llvm-nm` gives each symbol. With LTO a function inlined into
  another counts where it landed: the harness's own functions
  (`fieldauth_firmware_check::*`) hold core code inlined into them, and
  `(unattributed)` is what no symbol covers (literal pools, padding, anonymous
  constants);
- the 25 largest functions.

The budgets file has one `NAME BUDGET TARGET` per line (`#` comments): the
budget is a regression guard (the current size plus a small margin; lower it
whenever the image shrinks), the target is the project's goal (issue #13).
An image over its budget makes the script exit 1, naming it; the target is
reported, met or not. Images without a line are reported only.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

FLASH_SECTIONS = (".text", ".rodata", ".data")


def run(tool: Path, *args: str) -> str:
    return subprocess.run([str(tool), *args], check=True, capture_output=True, text=True).stdout


def flash(llvm: Path, image: Path) -> int:
    total = 0
    for line in run(llvm / "llvm-size", "-A", str(image)).splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in FLASH_SECTIONS:
            total += int(parts[1])
    return total


def symbols(llvm: Path, image: Path) -> list[tuple[int, str, str]]:
    """(size, type letter, demangled name) of every sized symbol in flash."""
    out = []
    for line in run(llvm / "llvm-nm", "--size-sort", "-S", "-C", str(image)).splitlines():
        parts = line.split(" ", 3)
        if len(parts) < 4:
            continue
        _addr, size, kind, name = parts
        if kind.lower() not in "trd":  # text, read-only data, data
            continue
        out.append((int(size, 16), kind, name))
    return out


HASH = re.compile(r"::h[0-9a-f]{16}$")


def module(name: str) -> str:
    """The module a symbol belongs to: `fieldauth::session`, `core`, ..."""
    name = HASH.sub("", name).replace("..", "::")
    if name.startswith("OUTLINED_FUNCTION"):
        return "(outlined: code LTO shares between functions)"
    if name in ("memcpy", "memset", "memmove", "memcmp", "__aeabi_memcpy", "__aeabi_memset"):
        return "compiler_builtins"
    # `<fieldauth::x::T as Trait>::f` and `fieldauth::x::<impl ...>::f` both
    # name their module first.
    m = re.search(r"(fieldauth_firmware_check|fieldauth|core|compiler_builtins|sha2|zeroize|embedded_io)"
                  r"(::([a-z_][a-z0-9_]*))?", name)
    if not m:
        return "(other)"
    crate, sub = m.group(1), m.group(3)
    if crate == "fieldauth_firmware_check":
        return "harness (+ core code inlined into it)"
    if crate == "fieldauth" and sub:
        # `fieldauth::session::snapshot` and `fieldauth::session` both count
        # as the session's; report the second level for the big modules.
        rest = name[m.end():]
        sub2 = re.match(r"::([a-z_][a-z0-9_]*)::", rest)
        if sub in ("session", "http", "driver") and sub2 and sub2.group(1) not in ("Session",):
            return f"fieldauth::{sub}::{sub2.group(1)}"
        return f"fieldauth::{sub}"
    return crate


def report(llvm: Path, name: str, image: Path) -> int:
    total = flash(llvm, image)
    syms = symbols(llvm, image)
    per_module: dict[str, int] = defaultdict(int)
    for size, _kind, sym in syms:
        per_module[module(sym)] += size
    attributed = sum(per_module.values())
    print(f"\n== {name}: {image}")
    print(f"flash (.text + .rodata + .data): {total} bytes")
    print(f"  {'module':<44} {'bytes':>7} {'share':>6}")
    for mod, size in sorted(per_module.items(), key=lambda kv: -kv[1]):
        print(f"  {mod:<44} {size:>7} {100 * size / max(total, 1):>5.1f}%")
    print(f"  {'(unattributed)':<44} {total - attributed:>7} {100 * (total - attributed) / max(total, 1):>5.1f}%")
    print("  25 largest functions:")
    for size, _kind, sym in sorted(syms, reverse=True)[:25]:
        print(f"  {size:>7}  {HASH.sub('', sym)[:100]}")
    return total


def budgets(path: Path) -> dict[str, tuple[int, int | None]]:
    out: dict[str, tuple[int, int | None]] = {}
    for line in path.read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if fields:
            target = int(fields[2]) if len(fields) > 2 else None
            out[fields[0]] = (int(fields[1]), target)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--llvm-bin", type=Path, required=True, help="directory with llvm-size and llvm-nm")
    ap.add_argument("--budgets", type=Path, help="NAME BYTES per line")
    ap.add_argument("images", nargs="+", help="NAME=PATH of a linked image")
    args = ap.parse_args()
    limits = budgets(args.budgets) if args.budgets else {}
    over = []
    sizes = {}
    for spec in args.images:
        name, _, path = spec.partition("=")
        sizes[name] = report(args.llvm_bin, name, Path(path))
    print("\nflash per image: regression budget (CI fails above it) and target (issue #13):")
    print(f"  {'image':<12} {'bytes':>7} {'budget':>7} {'target':>7}")
    for name, size in sizes.items():
        limit, target = limits.get(name, (None, None))
        notes = []
        if limit is not None and size > limit:
            notes.append("OVER BUDGET")
            over.append(name)
        if target is not None:
            notes.append("target met" if size <= target else f"target missed by {size - target} bytes")
        print(f"  {name:<12} {size:>7} {limit if limit is not None else '-':>7} "
              f"{target if target is not None else '-':>7}  {', '.join(notes)}")
    if over:
        print(f"size_report: over budget: {', '.join(over)} (tests/firmware/size-budgets)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
