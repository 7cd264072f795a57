"""Package discovery for the folder-to-import-name mapping of pyproject.toml, and the optional mypyc build.

The repository keeps the owner's layout (``core/``, ``plugins/<name>/``) while the installed
import names are ``hookmq`` and ``hookmq.plugins.<name>``; setuptools' own finder cannot rename
folders, so the package list is derived here from the folders.

A wheel (``pip install .``, the README's install command) also compiles the protocol layer and
the engine's hot modules (`hookmq.buildinfo.COMPILED_MODULES`) with mypyc when it can: mypy is a
build requirement, and a C compiler with Python's headers must be present. Without them, or if
compiling fails, the wheel holds the pure-Python modules only, which behave the same; a line
on stderr says why. ``HOOKMQ_COMPILE=0`` never compiles, ``HOOKMQ_COMPILE=1`` must compile (an
error otherwise). Editable installs (``pip install -e``) stay pure Python unless
``HOOKMQ_COMPILE=1``: compiled modules would shadow the sources being edited.
"""

from __future__ import annotations

import os
import runpy
import shutil
import sys
import sysconfig
from pathlib import Path
from typing import Any

from setuptools import find_namespace_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
#: Commands that build binaries; metadata-only runs (egg_info, dist_info, sdist) never compile.
_BUILDING = {"bdist_wheel", "build", "build_ext", "install", "editable_wheel", "develop"}


def renamed(folder: str, import_name: str) -> list[str]:
    """List the packages under ``folder`` (data folders such as ``static/`` included) under their installed names."""
    found = find_namespace_packages(where=folder, exclude=["*__pycache__*", "*.mypy_cache*"])
    return [import_name] + [f"{import_name}.{name}" for name in found]


def _say(message: str) -> None:
    print(f"hookmq setup: {message}", file=sys.stderr)


def _why_not_compiled() -> str | None:
    """None when a C compiler and Python's headers are there, else what is missing."""
    compiler = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        return f"no C compiler ({compiler})"
    include = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not include.exists():
        return f"no Python headers ({include}; on Debian: apt-get install python3-dev)"
    return None


def _installed_layout() -> Path:
    """A folder where ``hookmq/`` links to ``core/``'s entries, so mypy names the modules as installed."""
    tree = ROOT / "build" / "mypyc-src"
    package = tree / "hookmq"
    if tree.exists():
        shutil.rmtree(tree)
    package.mkdir(parents=True)
    for entry in (ROOT / "core").iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    (package / "plugins").symlink_to(ROOT / "plugins")
    return tree


def compiled_extensions() -> list[Any]:
    """The mypyc extensions of `COMPILED_MODULES`, or none (pure Python) when they cannot or should not be built."""
    choice = os.environ.get("HOOKMQ_COMPILE", "auto")
    command = set(sys.argv[1:])
    if choice == "0" or not command & _BUILDING:
        return []
    if choice != "1" and command & {"editable_wheel", "develop"}:
        return []
    try:
        missing = _why_not_compiled()
        if missing:
            raise RuntimeError(missing)
        from mypyc.build import mypycify

        modules = runpy.run_path(str(ROOT / "core" / "buildinfo.py"))["COMPILED_MODULES"]
        tree = _installed_layout()
        paths = [str(tree / Path(*name.split("."))) + ".py" for name in modules]
        # Its own mypy settings: a build environment need not hold the runtime dependencies
        # (pydantic, pluggy, websockets are then Any to mypyc), and --strict is .ci/typecheck's job.
        config = tree / "mypyc.ini"
        config.write_text("[mypy]\nignore_missing_imports = True\n")
        cwd = os.getcwd()
        os.chdir(tree)  # mypy finds the package by crawling up from each path
        try:
            flags = ["--config-file", str(config)]
            return list(mypycify(flags + [os.path.relpath(path, tree) for path in paths], opt_level="3",
                                 group_name="hookmq", target_dir=str(ROOT / "build" / "mypyc-c")))
        finally:
            os.chdir(cwd)
    except Exception as error:  # the pure-Python build is always a valid build
        if choice == "1":
            raise
        _say(f"building the pure-Python modules only: {error}")
        return []


class OptionalBuildExt(build_ext):
    """build_ext that falls back to pure Python (unless HOOKMQ_COMPILE=1) when compiling fails."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as error:
            if os.environ.get("HOOKMQ_COMPILE") == "1":
                raise
            for extension in self.extensions:  # half a compiled group is worse than none
                Path(self.get_ext_fullpath(extension.name)).unlink(missing_ok=True)
            _say(f"compiling with mypyc failed, the pure-Python modules are installed: {error}")


setup(
    packages=renamed("core", "hookmq") + renamed("plugins", "hookmq.plugins"),
    ext_modules=compiled_extensions(),
    cmdclass={"build_ext": OptionalBuildExt},
)
