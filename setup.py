"""Build hook for the optional C accelerator of the O'zDSt 1106 hash; all metadata lives in pyproject.toml.

`optional=True` makes setuptools warn and carry on when the extension cannot be compiled (no compiler or no
Python headers): eimzo_agent.crypto.gost94 then uses its pure-Python implementation.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("eimzo_agent.crypto._gost94", ["eimzo_agent/crypto/_gost94.c"], optional=True),
    ],
)
