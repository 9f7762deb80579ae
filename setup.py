"""Build hooks; all metadata lives in pyproject.toml.

- The optional C accelerators of the O'zDSt 1106 hash and of an O'zDSt signature's point additions.
  `optional=True` makes setuptools warn and carry on when one cannot be compiled (no compiler, no Python headers,
  no unsigned __int128): eimzo_agent.crypto.gost94 and .ozdst then use their pure-Python code. (Windows installs
  get both C cores as plain DLLs loaded with ctypes instead: service_installers/windows/build_msi.py.)
- The files the agent serves over HTTP (browser client, demo portal) live once, in browser_js/ and
  examples/demo-portal/. A checkout serves them from there; a wheel gets them copied under
  eimzo_agent/server/static/ here, as listed by ROUTES in eimzo_agent/server/static_files.py (and, for the
  portal server's demo pages, FILES in eimzo_agent/portal/demo_site.py).
"""

import ast
import shutil
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def served_sources() -> list[str]:
    """The repository paths in static_files.ROUTES and portal/demo_site.FILES (the portal's demo pages), read
    without importing the package (its deps may be absent)."""
    return sorted(set(_table("server/static_files.py", "ROUTES")) | set(_table("portal/demo_site.py", "FILES")))


def _table(module: str, name: str) -> list[str]:
    tree = ast.parse((HERE / "eimzo_agent" / module).read_text(encoding="utf-8"))
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else (node.targets[0] if isinstance(node, ast.Assign)
                                                                        else None)
        if isinstance(target, ast.Name) and target.id == name:
            return list(ast.literal_eval(node.value).values())
    raise RuntimeError(f"{name} not found in eimzo_agent/{module}")


class BuildWithServedFiles(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install serves the files straight from the checkout
        for source in served_sources():
            target = Path(self.build_lib) / "eimzo_agent" / "server" / "static" / source
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(HERE / source, target)


class BuildExtOptimised(build_ext):
    """The accelerators at -O3 whatever the building Python's CFLAGS say: Debian's and Ubuntu's python3 (so our
    .deb) give -O2, at which gcc 12 hashed at 60 % of the -O3 speed before gost94_core.c was written for it, and
    still ≈ 85 % now (bench/bench_gost94_builds.py). Flags given here come after CFLAGS on gcc's and clang's
    command line, so this one wins; MSVC is left alone."""

    def build_extensions(self) -> None:
        if self.compiler.compiler_type in ("unix", "mingw32", "cygwin"):
            for extension in self.extensions:
                extension.extra_compile_args = [*extension.extra_compile_args, "-O3"]
        super().build_extensions()


setup(
    ext_modules=[
        # The hash core is plain C shared with the Windows ctypes library (service_installers/windows/).
        Extension("eimzo_agent.crypto._gost94", ["eimzo_agent/crypto/_gost94.c", "eimzo_agent/crypto/gost94_core.c"],
                  depends=["eimzo_agent/crypto/gost94_core.h"], optional=True),
        # An O'zDSt signature's fixed-base point additions (ozdst.py has the same in Python), its core likewise
        # shared. It needs a compiler with unsigned __int128 (gcc, clang); elsewhere the Python code runs.
        Extension("eimzo_agent.crypto._ozdst_ec",
                  ["eimzo_agent/crypto/_ozdst_ec.c", "eimzo_agent/crypto/ozdst_ec_core.c"],
                  depends=["eimzo_agent/crypto/ozdst_ec_core.h"], optional=True),
    ],
    cmdclass={"build_py": BuildWithServedFiles, "build_ext": BuildExtOptimised},
)
