#!/usr/bin/env python3
"""Compile every C (and C++) code block of README.md and docs/*.md.

    python3 tests/readme/check_c_snippets.py [--require-cpp] [FILE.md ...]

Each ```c block is written to its own file and compiled, as a translation
unit of its own, with

    cc -std=c11 -Wall -Wextra -Werror -I include -c

so a block must be complete: its #includes, and declarations for what it
calls but does not define (your callbacks, say). Nothing is linked. A block
that is deliberately partial is marked ```c,fragment: it is compiled inside
a function body, after <stddef.h>, <stdint.h> and "fieldauth.h".

Each ```cpp block is compiled the same way with
`c++ -std=c++17 -Wall -Wextra -Werror -I bindings/cpp/include -I target/cxxbridge -c`
when the headers cxx generates exist (`cargo build -p fieldauth-cpp`);
otherwise it is skipped with a note, or fails with --require-cpp.

Every fence must name its language (```rust, ```c, ```sh, ```text, ...): an
unlabelled block would be taken for Rust by the doc tests, which run the Rust
blocks of the same files (core/src/lib.rs includes them under
`#[cfg(doctest)]`).

CC and CXX override the compilers. Exit status 1 if any block fails.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
C_FLAGS = ["-std=c11", "-Wall", "-Wextra", "-Werror"]
CPP_FLAGS = ["-std=c++17", "-Wall", "-Wextra", "-Werror"]
FRAGMENT_PROLOGUE = '#include <stddef.h>\n#include <stdint.h>\n\n#include "fieldauth.h"\n\n'


@dataclass
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    info: str
    text: str

    @property
    def language(self) -> str:
        return re.split(r"[\s,{]", self.info.strip(), maxsplit=1)[0].lower()

    @property
    def attributes(self) -> list[str]:
        return [a for a in re.split(r"[\s,]+", self.info.strip())[1:] if a]

    def where(self) -> str:
        try:
            shown = self.path.relative_to(ROOT)
        except ValueError:
            shown = self.path
        return f"{shown}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file (CommonMark fences)."""
    found: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m or (m.group("fence")[0] == "`" and "`" in m.group("info")):
            i += 1
            continue
        fence, start = m.group("fence"), i
        body: list[str] = []
        i += 1
        while i < len(lines):
            close = FENCE.match(lines[i])
            if (
                close
                and close.group("fence")[0] == fence[0]
                and len(close.group("fence")) >= len(fence)
                and not close.group("info").strip()
            ):
                break
            body.append(lines[i])
            i += 1
        found.append(Block(path, start + 1, m.group("info").strip(), "\n".join(body) + "\n"))
        i += 1
    return found


def compiler(env: str, default: str) -> list[str]:
    return shlex.split(os.environ.get(env, default))


def compile_block(block: Block, command: list[str], suffix: str, work: Path) -> tuple[bool, str]:
    name = re.sub(r"[^A-Za-z0-9]+", "_", block.where())
    source = work / f"{name}{suffix}"
    text = block.text
    if "fragment" in block.attributes:
        text = f"{FRAGMENT_PROLOGUE}void fieldauth_snippet_{name}(void) {{\n{text}}}\n"
    source.write_text(text, encoding="utf-8")
    cmd = [*command, "-c", str(source), "-o", str(source.with_suffix(".o"))]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except FileNotFoundError as e:
        return False, f"cannot run {cmd[0]}: {e}"
    report = f"$ {shlex.join(cmd)}\n{out.stdout}{out.stderr}"
    return out.returncode == 0, report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path, help="Markdown files (default: README.md docs/*.md)")
    parser.add_argument("--require-cpp", action="store_true", help="fail, rather than skip, C++ blocks when the cxx headers are missing")
    parser.add_argument("--cxxbridge", type=Path, default=ROOT / "target" / "cxxbridge", help="the headers cxx generated (default: target/cxxbridge)")
    args = parser.parse_args()

    files = args.files or [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    cc = [*compiler("CC", "cc"), *C_FLAGS, "-I", str(ROOT / "include")]
    cxx_ready = (args.cxxbridge / "rust" / "cxx.h").is_file()
    cxx = [
        *compiler("CXX", "c++"),
        *CPP_FLAGS,
        "-I", str(ROOT / "bindings" / "cpp" / "include"),
        "-I", str(args.cxxbridge),
        "-I", str(ROOT / "include"),
    ]

    failures = checked = 0
    with tempfile.TemporaryDirectory(prefix="fieldauth-snippets-") as tmp:
        work = Path(tmp)
        for path in files:
            path = path if path.is_absolute() else Path.cwd() / path
            for block in blocks(path):
                if not block.language:
                    print(f"{block.where()}: FAIL: the fence names no language (```rust, ```c, ```sh, ```text ...)")
                    failures += 1
                    continue
                if block.language == "c":
                    ok, report = compile_block(block, cc, ".c", work)
                elif block.language in ("cpp", "c++"):
                    if not cxx_ready:
                        msg = f"no {args.cxxbridge}/rust/cxx.h (run `cargo build -p fieldauth-cpp` first)"
                        if args.require_cpp:
                            print(f"{block.where()}: FAIL: {msg}")
                            failures += 1
                        else:
                            print(f"{block.where()}: skipped C++ block: {msg}")
                        continue
                    ok, report = compile_block(block, cxx, ".cpp", work)
                else:
                    continue
                checked += 1
                if ok:
                    print(f"{block.where()}: {block.language} block compiles")
                else:
                    failures += 1
                    print(f"{block.where()}: FAIL: {block.language} block does not compile\n{report}")
    print(f"{checked} block(s) compiled, {failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
