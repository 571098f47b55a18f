"""Build hook: puts ``libfieldauth`` inside the wheel.

The package itself is pure Python (ctypes), but it is useless without the
shared library, so every wheel built from this directory carries one and is
tagged for the platform it was built on (``py3-none-<platform>``: any Python 3,
because ctypes does not depend on CPython's ABI; one OS and CPU, because the
library does).

Where the library comes from, first match wins:

1. ``FIELDAUTH_LIB`` set at build time: that prebuilt file is bundled as it is
   (cargo is not run).
2. A fieldauth checkout: ``FIELDAUTH_SOURCE_DIR``, else the directory two levels
   up from this file (``bindings/python`` in the repository). There the hook runs
   ``cargo build -p fieldauth-ffi --release --locked`` (``CARGO`` names another
   cargo; ``CARGO_TARGET_DIR`` is honoured) and bundles the ``cdylib`` cargo
   reports.

Anything else stops the build with what to do. Only ``build_py`` and
``bdist_wheel`` are customised; ``sdist`` is setuptools' own (the Python
sources; building a wheel from it needs 1. or 2.).

This file is also imported by the test suite (``tests/test_packaging.py``) to
check the error messages, so ``setup()`` runs only as a script.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

try:  # setuptools >= 70.1 has it; older ones need the `wheel` package
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # pragma: no cover - depends on the build environment
    from wheel.bdist_wheel import bdist_wheel  # type: ignore[no-redef]

HERE = Path(__file__).resolve().parent
PACKAGE = "fieldauth"


class BuildError(Exception):
    """The library could not be provided; the message says what to do."""


def library_file_name() -> str:
    """The platform's file name of the shared library (as ``fieldauth._lib`` loads it)."""
    if sys.platform == "darwin":
        return "libfieldauth.dylib"
    if sys.platform == "win32":
        return "fieldauth.dll"
    return "libfieldauth.so"


def source_dir(environ: Optional[Dict[str, str]] = None) -> Optional[Path]:
    """The fieldauth checkout to build from, or ``None`` if there is none."""
    env = os.environ if environ is None else environ
    named = env.get("FIELDAUTH_SOURCE_DIR")
    candidates = [Path(named)] if named else [HERE.parent.parent]
    for root in candidates:
        if (root / "ffi" / "Cargo.toml").is_file() and (root / "Cargo.toml").is_file():
            return root.resolve()
    if named:
        raise BuildError(
            f"FIELDAUTH_SOURCE_DIR={named} is not a fieldauth checkout (no ffi/Cargo.toml "
            "there): point it at the repository root"
        )
    return None


INSTALL_RUST = (
    "  - install Rust (https://rustup.rs, or your distribution's cargo package) so that\n"
    "    `cargo` is on PATH (or set CARGO to its path), then run pip again; or\n"
)
OTHER_WAYS = (
    "  - bundle a library built elsewhere: FIELDAUTH_LIB=/path/to/{lib} pip install ...; or\n"
    "  - install a wheel built on a machine with cargo (`pip wheel ./bindings/python` there)."
)
HOW_TO = INSTALL_RUST + OTHER_WAYS


def find_cargo(environ: Optional[Dict[str, str]] = None) -> str:
    """The cargo executable to run; :class:`BuildError` with what to do if there is none."""
    env = os.environ if environ is None else environ
    named = env.get("CARGO")
    if named:
        if shutil.which(named, path=env.get("PATH")) is None and not Path(named).is_file():
            raise BuildError(f"fieldauth: CARGO={named} does not exist: unset CARGO or fix the path")
        return named
    found = shutil.which("cargo", path=env.get("PATH"))
    if found is None:
        raise BuildError(
            "fieldauth: building this package compiles the Rust library "
            f"{library_file_name()}, and `cargo` is not on PATH. Either\n"
            + HOW_TO.format(lib=library_file_name())
        )
    return found


def cargo_build(root: Path, cargo: str) -> Path:
    """Runs ``cargo build -p fieldauth-ffi --release --locked`` in ``root``; the cdylib's path."""
    command = [cargo, "build", "-p", "fieldauth-ffi", "--release", "--locked", "--message-format=json-render-diagnostics"]
    print("fieldauth: " + " ".join(command[:-1]) + f"  (in {root})", file=sys.stderr)
    try:
        proc = subprocess.run(command, cwd=root, stdout=subprocess.PIPE, check=False)
    except OSError as exc:
        raise BuildError(f"fieldauth: cannot run {cargo}: {exc}. Either\n" + HOW_TO.format(lib=library_file_name())) from exc
    if proc.returncode != 0:
        raise BuildError(
            f"fieldauth: `cargo build -p fieldauth-ffi --release --locked` failed (exit {proc.returncode}; "
            "cargo's messages are above). The library's minimum Rust is 1.89 (`rustup update`); "
            "--locked needs the repository's Cargo.lock unchanged."
        )
    name = library_file_name()
    found: List[Path] = []
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        try:
            message: Any = json.loads(line)
        except ValueError:
            continue
        if message.get("reason") != "compiler-artifact":
            continue
        target = message.get("target", {})
        if target.get("name") == "fieldauth" and "cdylib" in target.get("kind", []):
            found += [Path(f) for f in message.get("filenames", []) if Path(f).name == name]
    if not found or not found[-1].is_file():
        raise BuildError(
            f"fieldauth: cargo built fieldauth-ffi but reported no {name}: is this a fieldauth "
            "checkout whose ffi crate builds a cdylib?"
        )
    return found[-1]


def locate_library(environ: Optional[Dict[str, str]] = None) -> Path:
    """The shared library to bundle: ``FIELDAUTH_LIB``, or one cargo builds (see the module doc)."""
    env = os.environ if environ is None else environ
    prebuilt = env.get("FIELDAUTH_LIB")
    if prebuilt:
        path = Path(prebuilt)
        if not path.is_file():
            raise BuildError(
                f"fieldauth: FIELDAUTH_LIB={prebuilt} does not exist: unset it to build the library "
                "with cargo, or point it at a built libfieldauth"
            )
        return path
    root = source_dir(env)
    if root is None:
        raise BuildError(
            f"fieldauth: no fieldauth checkout around {HERE} to build {library_file_name()} from "
            "(this happens when building from an sdist outside the repository). Either\n"
            "  - set FIELDAUTH_SOURCE_DIR to a fieldauth checkout (cargo builds the library there); or\n"
            + OTHER_WAYS.format(lib=library_file_name())
        )
    return cargo_build(root, find_cargo(env))


class BuildPyWithLibrary(build_py):  # type: ignore[misc]
    """``build_py`` that also places the shared library inside the built package."""

    def run(self) -> None:
        super().run()
        try:
            library = locate_library()
        except BuildError as exc:
            # setuptools prints it as the last lines of the output pip shows.
            raise SystemExit(f"\nerror: {exc}\n") from None
        dest = Path(self.build_lib) / PACKAGE / library_file_name()
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(library, dest)
        os.chmod(dest, 0o755)
        print(f"fieldauth: bundled {library} ({dest.stat().st_size} bytes)", file=sys.stderr)


class BinaryDistribution(Distribution):  # type: ignore[misc]
    """Says the package carries a binary, so it installs into platlib and the wheel is not pure."""

    def has_ext_modules(self) -> bool:
        return True


class PlatformWheel(bdist_wheel):  # type: ignore[misc]
    """A wheel for this platform and any Python 3: ``py3-none-<platform>``."""

    def get_tag(self) -> Any:
        _python, _abi, plat = super().get_tag()
        return "py3", "none", plat


def private_build_dir() -> str:
    """A build directory of this build alone, removed at exit.

    setuptools' default (``build/`` here) is shared by every build of this
    directory: two pip runs at once (two checkouts' tests, an IDE) would
    delete each other's files mid-build.
    """
    path = tempfile.mkdtemp(prefix="fieldauth-build-")
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


if __name__ == "__main__":
    setup(
        options={"build": {"build_base": private_build_dir()}},
        distclass=BinaryDistribution,
        cmdclass={"build_py": BuildPyWithLibrary, "bdist_wheel": PlatformWheel},
    )
