"""Build hooks; all metadata lives in pyproject.toml.

- The optional C accelerator of the O'zDSt 1106 hash. `optional=True` makes setuptools warn and carry on when the
  extension cannot be compiled (no compiler or no Python headers): eimzo_agent.crypto.gost94 then uses its
  pure-Python implementation. (Windows installs get the same C core as a plain DLL loaded with ctypes instead.)
- The files the agent serves over HTTP (browser client, demo portal) live once, in browser_js/ and
  examples/demo-portal/. A checkout serves them from there; a wheel gets them copied under
  eimzo_agent/server/static/ here, as listed by ROUTES in eimzo_agent/server/static_files.py.
"""

import ast
import shutil
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def served_sources() -> list[str]:
    """The repository paths in static_files.ROUTES, read without importing the package (its deps may be absent)."""
    tree = ast.parse((HERE / "eimzo_agent" / "server" / "static_files.py").read_text(encoding="utf-8"))
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else (node.targets[0] if isinstance(node, ast.Assign)
                                                                        else None)
        if isinstance(target, ast.Name) and target.id == "ROUTES":
            return sorted(set(ast.literal_eval(node.value).values()))
    raise RuntimeError("ROUTES not found in eimzo_agent/server/static_files.py")


class BuildWithServedFiles(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install serves the files straight from the checkout
        for source in served_sources():
            target = Path(self.build_lib) / "eimzo_agent" / "server" / "static" / source
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(HERE / source, target)


setup(
    ext_modules=[
        # The hash core is plain C shared with the Windows ctypes library (service_installers/windows/).
        Extension("eimzo_agent.crypto._gost94", ["eimzo_agent/crypto/_gost94.c", "eimzo_agent/crypto/gost94_core.c"],
                  depends=["eimzo_agent/crypto/gost94_core.h"], optional=True),
    ],
    cmdclass={"build_py": BuildWithServedFiles},
)
