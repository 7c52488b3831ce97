"""Build hook: ``pip install .`` and ``pip install -e .`` compile the native hit scanner.

feedscan.c has no CPython API (it is loaded with ctypes), so it is compiled as a plain shared
library with ``zig cc`` from the ``ziglang`` build requirement - no system compiler needed. If
that fails (a platform zig does not target), the install still succeeds and feedsync runs the
slower Python scanner, saying so once on stderr.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

SOURCE = Path("layers/shared/feedsync/datafeed/native/feedscan.c")
LIBRARY = "feedsync/datafeed/native/libfeedscan.so"


class BuildNativeScanner(build_py):
    """build_py runs for wheels and for editable installs alike (build_ext does not, without
    C extensions); the library lands beside the package sources in editable mode."""

    def run(self) -> None:
        super().run()
        # editable installs build in place; wheels build into build_lib
        editable = getattr(self, "editable_mode", False)
        root = Path("layers/shared") if editable else Path(self.build_lib)
        target = root / LIBRARY
        target.parent.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "ziglang", "cc", "-O2", "-shared", "-fPIC",
            "-Wall", "-Wextra", "-Werror", "-o", str(target), str(SOURCE),
        ]  # fmt: skip
        try:
            subprocess.run(command, check=True, capture_output=True, text=True)  # noqa: S603
        except (OSError, subprocess.CalledProcessError) as exc:
            detail = getattr(exc, "stderr", "") or str(exc)
            print(
                f"warning: the native scanner was not built ({detail.strip()[:300]}); "
                "feedsync will use the slower Python scanner",
                file=sys.stderr,
            )

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs: list[str] = super().get_outputs(include_bytecode)
        if not getattr(self, "editable_mode", False):
            outputs.append(str(Path(self.build_lib) / LIBRARY))
        return outputs


class BinaryDistribution(Distribution):
    """The wheel holds a compiled library: tag it for this platform."""

    def has_ext_modules(self) -> bool:
        return True


setup(cmdclass={"build_py": BuildNativeScanner}, distclass=BinaryDistribution)
