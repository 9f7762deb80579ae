"""O'zDSt 1106 / GOST R 34.11-94 (CryptoPro S-box): known answers, streaming, every implementation.

Every property is checked for the C extension, for the same C core built as a plain shared library and loaded
through ctypes (what the Windows installer ships as gost94.dll; here gcc builds it for Linux, so the loader is
the one Windows runs), and for the pure-Python fallback; random inputs are compared with librhash, an independent
C implementation (Debian librhash0, loaded with ctypes). CI builds the accelerator (bootstrap installs gcc and the
Python headers), so a missing `_gost94`, gcc or librhash is a failure, not a skip.
"""

from __future__ import annotations

import array
import ctypes
import ctypes.util
import itertools
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from accelerator_copy import LOADER_CASES, run_in_copy
from hypothesis import given, settings
from hypothesis import strategies as st

from eimzo_agent.crypto import _gost94, gost94, gost94_clib
from eimzo_agent.crypto.gost94 import Gost94, PurePythonGost94, gost94_digest
from eimzo_agent.crypto.gost94_clib import CLibrary

KAT = json.loads((Path(__file__).resolve().parent / "data" / "eimzo-kat.json").read_text())
ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "eimzo_agent" / "crypto" / "gost94_core.c"

RHASH_GOST94_CRYPTOPRO = 0x1000  # rhash.h (librhash 1.4): checked against the "abc" vector below


def kat_vectors() -> list[tuple[bytes, str]]:
    out = []
    for vector in KAT["gost94_cryptopro_hash"]["vectors"]:
        message = vector["text"] if "text" in vector else vector["repeat"] * vector["times"]
        out.append((message.encode("ascii"), vector["digest"]))
    return out


def hashlib_surface(backend: ModuleType | CLibrary) -> type:
    """A C backend's state object (extension or ctypes library) in the hashlib surface the tests use (the C
    objects themselves are minimal)."""

    class CState:
        def __init__(self, data: bytes = b"") -> None:
            self._state = backend.State()
            if data:
                self._state.update(data)

        def update(self, data) -> None:
            self._state.update(data)

        def digest(self) -> bytes:
            return self._state.digest()

        def hexdigest(self) -> str:
            return self.digest().hex()

        def copy(self) -> CState:
            clone = CState()
            clone._state = self._state.copy()
            return clone

    return CState


def build_clib(folder: Path) -> Path:
    """gost94_core.c as a plain shared library, named and placed as gost94_clib.library_path expects."""
    out = gost94_clib.library_path(folder)
    subprocess.run(["gcc", "-O2", "-Wall", "-Werror", "-shared", "-fPIC", "-o", str(out), str(CORE)], check=True)
    return out


#: "clib" is filled in by the `clib` fixture (it is compiled first).
IMPLEMENTATIONS: dict[str, Callable[..., object]] = {"c": hashlib_surface(_gost94), "pure": PurePythonGost94}
ONE_SHOT: dict[str, Callable[[bytes], bytes]] = {"c": _gost94.digest, "pure": lambda m: PurePythonGost94(m).digest()}


@pytest.fixture(scope="module")
def clib(tmp_path_factory: pytest.TempPathFactory) -> CLibrary:
    library = gost94_clib.load(build_clib(tmp_path_factory.mktemp("clib")))
    assert library is not None
    IMPLEMENTATIONS["clib"] = hashlib_surface(library)
    ONE_SHOT["clib"] = library.digest
    return library


@pytest.fixture(params=["c", "clib", "pure"])
def impl(request: pytest.FixtureRequest, clib: CLibrary) -> str:
    return request.param


@pytest.fixture(scope="module")
def rhash() -> Callable[[bytes], bytes]:
    """librhash's GOST R 34.11-94 CryptoPro digest; raises (test error, not skip) when librhash0 is missing."""
    name = ctypes.util.find_library("rhash") or "librhash.so.0"
    lib = ctypes.CDLL(name)
    lib.rhash_library_init()
    lib.rhash_msg.argtypes = [ctypes.c_uint, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p]
    lib.rhash_msg.restype = ctypes.c_int

    def digest(data: bytes) -> bytes:
        out = ctypes.create_string_buffer(64)
        assert lib.rhash_msg(RHASH_GOST94_CRYPTOPRO, data, len(data), out) == 0
        return out.raw[:32]

    assert digest(b"abc").hex() == "b285056dbf18d7392d7677369524dd14747459ed8143997e163b2986f92fd42c"
    return digest


@pytest.mark.parametrize(("message", "expected"), kat_vectors(), ids=lambda v: repr(v)[:24])
def test_kat_vectors(impl: str, message: bytes, expected: str) -> None:
    assert IMPLEMENTATIONS[impl](message).hexdigest() == expected
    assert ONE_SHOT[impl](message).hex() == expected


@pytest.mark.parametrize(("message", "expected"), kat_vectors(), ids=lambda v: repr(v)[:24])
def test_public_api_kat(message: bytes, expected: str) -> None:
    assert Gost94(message).hexdigest() == expected
    assert gost94.gost94(message).digest().hex() == expected
    assert gost94_digest(message).hex() == expected


def test_cms_kat_hashes(impl: str) -> None:
    cms = KAT["cms_signature_kat"]
    assert ONE_SHOT[impl](bytes.fromhex(cms["signed_attrs_der_hex"])).hex() == cms["signed_attrs_hash_hex"]
    # what a TSA stamps: the hash of the 64 signature bytes
    assert ONE_SHOT[impl](bytes.fromhex(cms["signature_hex"])).hex() == cms["timestamp_message_imprint_hex"]


def test_hashlib_attributes() -> None:
    for cls in (Gost94, PurePythonGost94):
        h = cls()
        assert (h.name, h.digest_size, h.block_size) == ("gost94-cryptopro", 32, 32)


def test_accelerator_in_use_by_default() -> None:
    # the test run may itself force pure Python; only then is the default allowed to be the fallback
    forced = os.environ.get("EIMZO_AGENT_PURE_PYTHON", "") not in ("", "0")
    assert gost94.ACCELERATED is not forced


@pytest.mark.parametrize(("value", "accelerated"), [("1", False), ("0", True), ("", True)])
def test_env_forces_pure_python(value: str, accelerated: bool) -> None:
    env = dict(os.environ, EIMZO_AGENT_PURE_PYTHON=value)
    code = ("from eimzo_agent.crypto import gost94 as g; "
            "print(g.ACCELERATED, g.gost94_digest(b'abc').hex(), g.Gost94(b'abc').hexdigest())")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.split()
    abc = "b285056dbf18d7392d7677369524dd14747459ed8143997e163b2986f92fd42c"
    assert out == [str(accelerated), abc, abc]


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=700), cuts=st.lists(st.integers(min_value=0, max_value=700), max_size=12))
def test_streaming_equals_one_shot(clib: CLibrary, data: bytes, cuts: list[int]) -> None:
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    expected = _gost94.digest(data)
    for factory in IMPLEMENTATIONS.values():
        h = factory()
        for start, end in itertools.pairwise(bounds):
            h.update(data[start:end])
        assert h.digest() == expected
    assert PurePythonGost94(data).digest() == expected


def test_buffer_types(impl: str) -> None:
    data = bytes(range(256)) * 3
    expected = ONE_SHOT[impl](data)
    for buffer in (bytearray(data), memoryview(data), array.array("I", data)):
        h = IMPLEMENTATIONS[impl]()
        h.update(buffer)
        assert h.digest() == expected
    h = IMPLEMENTATIONS[impl]()
    h.update(memoryview(data)[100:300])  # a slice that does not start at a block boundary
    assert h.digest() == ONE_SHOT[impl](data[100:300])


def test_digest_does_not_finalise(impl: str) -> None:
    h = IMPLEMENTATIONS[impl](b"The quick brown fox ")
    first = h.digest()
    assert h.digest() == first
    h.update(b"jumps over the lazy dog")
    assert h.hexdigest() == "9004294a361a508c586fe53d1f1b02746765e71b765472786e4770d565830a76"


def test_copy_is_independent(impl: str) -> None:
    h = IMPLEMENTATIONS[impl](b"x" * 45)  # 13 bytes pending in the buffer
    clone = h.copy()
    h.update(b"left")
    clone.update(b"right")
    assert h.digest() == ONE_SHOT[impl](b"x" * 45 + b"left")
    assert clone.digest() == ONE_SHOT[impl](b"x" * 45 + b"right")


def test_public_copy_is_independent() -> None:
    h = Gost94(b"abc")
    clone = h.copy()
    clone.update(b"d")
    assert h.digest() == gost94_digest(b"abc")
    assert clone.digest() == gost94_digest(b"abcd")


def test_rejects_non_buffers(impl: str) -> None:
    with pytest.raises(TypeError):
        IMPLEMENTATIONS[impl]().update("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ONE_SHOT[impl]("text")  # type: ignore[arg-type]


def test_c_state_takes_no_arguments() -> None:
    with pytest.raises(TypeError):
        _gost94.State(b"abc")


@settings(max_examples=80, deadline=None)
@given(data=st.binary(max_size=300))
def test_matches_librhash_random(rhash: Callable[[bytes], bytes], clib: CLibrary, data: bytes) -> None:
    assert _gost94.digest(data) == rhash(data)
    assert clib.digest(data) == rhash(data)
    assert PurePythonGost94(data).digest() == rhash(data)


@pytest.mark.parametrize("size", [31, 32, 33, 63, 64, 65, 2047, 2048, 2049, 4096 + 17])
def test_matches_librhash_lengths(rhash: Callable[[bytes], bytes], impl: str, size: int) -> None:
    data = os.urandom(size)
    assert ONE_SHOT[impl](data) == rhash(data)


def test_matches_librhash_large(rhash: Callable[[bytes], bytes], clib: CLibrary) -> None:
    # C paths only at this size; chunks straddle block boundaries and the GIL-release threshold
    data = os.urandom(3 * 1024 * 1024 + 5)
    for h in (Gost94(), clib.State()):
        for start in range(0, len(data), 100_003):
            h.update(data[start:start + 100_003])
        assert h.digest() == rhash(data) == _gost94.digest(data) == clib.digest(data)


@pytest.mark.parametrize("backend", ["extension", "library"])
def test_concurrent_updates_on_one_object(clib: CLibrary, backend: str) -> None:
    # identical chunks make the result independent of thread order, so any lost or torn update shows
    chunk = os.urandom(64 * 1024 + 3)
    h = (_gost94 if backend == "extension" else clib).State()
    threads = [threading.Thread(target=lambda: [h.update(chunk) for _ in range(8)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert h.digest() == _gost94.digest(chunk * 32)


def test_concurrent_objects(rhash: Callable[[bytes], bytes]) -> None:
    # separate objects hashing at once, each large enough to run without the GIL
    inputs = [os.urandom(512 * 1024 + i) for i in range(4)]
    results: dict[int, bytes] = {}

    def work(i: int) -> None:
        h = Gost94()
        h.update(inputs[i])
        results[i] = h.digest()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [results[i] for i in range(4)] == [rhash(x) for x in inputs]


def test_library_rejects_what_the_extension_rejects(clib: CLibrary) -> None:
    with pytest.raises(TypeError):
        clib.State(b"abc")  # type: ignore[call-arg]
    with pytest.raises(BufferError):
        clib.digest(memoryview(bytes(64))[::2])  # not contiguous: hashing it would read the wrong bytes


def test_library_missing_or_foreign(tmp_path: Path) -> None:
    assert gost94_clib.load(tmp_path / "absent.so") is None
    (tmp_path / "junk.so").write_bytes(b"not a library")
    assert gost94_clib.load(tmp_path / "junk.so") is None


@pytest.mark.parametrize(("extension", "library", "pure_env", "expected"), LOADER_CASES)
def test_loader_order(tmp_path: Path, extension: bool, library: bool, pure_env: str, expected: str) -> None:
    """extension, then the library beside the module, then pure Python; EIMZO_AGENT_PURE_PYTHON=1 wins (in a copy
    of the package, as in the Windows installer when the library is there)."""
    code = ("from eimzo_agent.crypto import gost94 as g; "
            "print(g.__file__, g.BACKEND, g.ACCELERATED, g.Gost94(b'abc').hexdigest(), g.gost94_digest(b'abc').hex())")
    out = run_in_copy(tmp_path, code, extension=_gost94.__file__ if extension else None,
                      library=build_clib if library else None, pure_env=pure_env)
    package = tmp_path / "eimzo_agent"
    abc = "b285056dbf18d7392d7677369524dd14747459ed8143997e163b2986f92fd42c"
    assert out == [str(package / "crypto" / "gost94.py"), expected, str(expected != "python"), abc, abc]


def test_accelerators_compiled_at_O3_whatever_the_python_says(tmp_path: Path) -> None:
    """setup.py asks for -O3 after the building Python's CFLAGS: Debian's and Ubuntu's python3, which build our
    .deb, say -O2 (emulated here with CFLAGS=-O2), at which gcc 12 hashes at 60-85 % of the speed. The compiler
    is a wrapper that notes its arguments and runs gcc; the build goes to tmp_path, nothing into the checkout."""
    log = tmp_path / "cc.log"
    wrapper = tmp_path / "cc"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> "{log}"\nexec gcc "$@"\n')
    wrapper.chmod(0o755)
    env = {**os.environ, "CC": str(wrapper), "CFLAGS": "-O2"}
    subprocess.run([sys.executable, "setup.py", "build_ext", "--force", "--build-temp", str(tmp_path / "temp"),
                    "--build-lib", str(tmp_path / "lib")], cwd=ROOT, env=env, check=True, capture_output=True)
    compiles = [line.split() for line in log.read_text().splitlines() if " -c " in f" {line} "]
    sources = {Path(arg).name for args in compiles for arg in args if arg.endswith(".c")}
    assert sources == {"_gost94.c", "gost94_core.c", "_ozdst_ec.c", "ozdst_ec_core.c"}
    for args in compiles:
        assert "-O2" in args and [arg for arg in args if arg.startswith("-O")][-1] == "-O3", args
    built = {path.name.split(".")[0] for path in (tmp_path / "lib" / "eimzo_agent" / "crypto").iterdir()}
    assert built == {"_gost94", "_ozdst_ec"}
