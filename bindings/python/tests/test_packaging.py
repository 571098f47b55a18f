"""The package build (setup.py's hook) and the library bundled in the installed package."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import fieldauth
from fieldauth import _lib

from conftest import REPO

SETUP = REPO / "bindings" / "python" / "setup.py"


def _setup_module() -> ModuleType:
    if not SETUP.is_file():
        pytest.skip(f"{SETUP} is not part of this installation (run from the repository)")
    spec = importlib.util.spec_from_file_location("fieldauth_setup", SETUP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # setup() itself runs only as __main__
    return module


def test_the_installed_package_loads_its_bundled_library(tmp_path: Path) -> None:
    bundled = Path(fieldauth.__file__).resolve().parent / _lib.library_file_name()
    assert bundled.is_file(), (
        f"{bundled} is missing: the package was not installed from a wheel built by setup.py's hook"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("FIELDAUTH_LIB", "CARGO_TARGET_DIR")}
    code = "import fieldauth, fieldauth._lib as l; fieldauth.version(); print(l.lib()._name)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == str(bundled)


def test_fieldauth_lib_still_overrides_the_bundled_library(tmp_path: Path) -> None:
    bundled = Path(fieldauth.__file__).resolve().parent / _lib.library_file_name()
    other = tmp_path / "elsewhere" / _lib.library_file_name()
    other.parent.mkdir()
    shutil.copy(bundled, other)
    env = dict(os.environ, FIELDAUTH_LIB=str(other))
    code = "import fieldauth, fieldauth._lib as l; fieldauth.version(); print(l.lib()._name)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == str(other)


def test_without_cargo_the_build_says_what_to_do(tmp_path: Path) -> None:
    setup = _setup_module()
    with pytest.raises(setup.BuildError) as caught:
        setup.find_cargo({"PATH": str(tmp_path)})
    message = str(caught.value)
    assert "`cargo` is not on PATH" in message
    assert "rustup.rs" in message and "FIELDAUTH_LIB=" in message and "pip wheel" in message


def test_a_missing_prebuilt_library_or_checkout_is_named(tmp_path: Path) -> None:
    setup = _setup_module()
    with pytest.raises(setup.BuildError, match="FIELDAUTH_LIB=.*does not exist"):
        setup.locate_library({"FIELDAUTH_LIB": str(tmp_path / "nope.so")})
    with pytest.raises(setup.BuildError, match="not a fieldauth checkout"):
        setup.locate_library({"FIELDAUTH_SOURCE_DIR": str(tmp_path)})
    prebuilt = tmp_path / "libfieldauth.so"
    prebuilt.write_bytes(b"\x7fELF")
    assert setup.locate_library({"FIELDAUTH_LIB": str(prebuilt)}) == prebuilt


def test_pip_without_cargo_fails_with_the_message(tmp_path: Path) -> None:
    """The real user path: `pip wheel ./bindings/python` on a machine without cargo."""
    _setup_module()
    pytest.importorskip("setuptools.command.bdist_wheel", reason="needs setuptools >= 70.1 (run-tests.sh installs it)")
    bin_dir = Path(sys.executable).parent
    path = os.pathsep.join(d for d in (str(bin_dir), "/usr/bin", "/bin") if shutil.which("cargo", path=d) is None)
    env = {k: v for k, v in os.environ.items() if k not in ("FIELDAUTH_LIB", "CARGO", "FIELDAUTH_SOURCE_DIR")}
    env["PATH"] = path
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--disable-pip-version-check",
         "-w", str(tmp_path), str(SETUP.parent)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "`cargo` is not on PATH" in output, output
    assert "FIELDAUTH_LIB=/path/to/" in output
    assert not list(tmp_path.glob("*.whl"))
