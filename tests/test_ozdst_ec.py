"""The C accelerator of an O'zDSt signature's fixed-base point additions (`crypto/ozdst_ec_core.c`).

Both builds of the core are checked: the CPython extension `_ozdst_ec`, and the plain shared library loaded with
ctypes (`ozdst_ec_clib`; what the Windows installer ships as ozdst_ec.dll, here built by gcc for Linux, so the loader
is the one Windows runs). Checked against ozdst.py's own additions (the pure-Python path) and, through `_mul_base`,
against the naive double-and-add of tests/test_ozdst.py and gostcrypto there (those tests run on whichever path is in
use: the extension). The CI machine builds the extension (bootstrap installs the package with a compiler), so a
missing `_ozdst_ec` or gcc is a failure here, not a skip.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from accelerator_copy import LOADER_CASES, run_in_copy

from eimzo_agent.crypto import _ozdst_ec, ozdst, ozdst_ec_clib
from eimzo_agent.crypto.ozdst import CURVES, Curve
from eimzo_agent.crypto.ozdst_ec_clib import CLibrary

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "eimzo_agent" / "crypto" / "ozdst_ec_core.c"


def build_clib(folder: Path) -> Path:
    """ozdst_ec_core.c as a plain shared library, named and placed as ozdst_ec_clib.library_path expects."""
    out = ozdst_ec_clib.library_path(folder)
    subprocess.run(["gcc", "-O3", "-Wall", "-Werror", "-shared", "-fPIC", "-o", str(out), str(CORE)], check=True)
    return out


@pytest.fixture(scope="module")
def clib(tmp_path_factory: pytest.TempPathFactory) -> CLibrary:
    library = ozdst_ec_clib.load(build_clib(tmp_path_factory.mktemp("clib")))
    assert library is not None
    return library


@pytest.fixture(params=["extension", "clib"])
def accelerator(request: pytest.FixtureRequest, clib: CLibrary) -> ModuleType | CLibrary:
    return _ozdst_ec if request.param == "extension" else clib


def python_sum(curve: Curve, k: int, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int] | None:
    with monkeypatch.context() as patch:
        patch.setattr(ozdst, "_ec", None)
        return ozdst._to_affine(ozdst._mul_base(curve, k), curve.p)


def test_the_accelerator_is_built_and_used() -> None:
    assert ozdst._ec is _ozdst_ec


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_agrees_with_the_python_additions(curve: Curve, accelerator: ModuleType | CLibrary,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ozdst, "_ec", accelerator)
    scalars = [secrets.randbelow(curve.q) + secrets.randbits(64) * curve.q for _ in range(200)]  # blinded, as signed
    scalars += [1, 2, 31, 32, 33, 63, 64, 65, curve.q - 1, curve.q + 1, 2**255, 2**319 + 12345]
    for k in scalars:
        assert ozdst._to_affine(ozdst._mul_base(curve, k), curve.p) == python_sum(curve, k, monkeypatch), k


def test_signatures_through_the_library_verify(clib: CLibrary, monkeypatch: pytest.MonkeyPatch) -> None:
    """A whole signature with the library's additions; the public key and the check without them."""
    for curve in CURVES:
        monkeypatch.setattr(ozdst, "_ec", None)
        d = ozdst.generate_private_key(curve)
        public = ozdst.public_point(curve, d)
        digest = secrets.token_bytes(32)
        monkeypatch.setattr(ozdst, "_ec", clib)
        signature = ozdst.sign_digest(curve, d, digest)
        monkeypatch.setattr(ozdst, "_ec", None)
        assert ozdst.verify_digest(curve, public, digest, signature)
        assert not ozdst.verify_digest(curve, public, bytes(31) + b"x", signature)


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_multiples_of_the_order_are_infinity(curve: Curve, accelerator: ModuleType | CLibrary,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ozdst, "_ec", accelerator)
    for k in (0, curve.q, 2 * curve.q, secrets.randbits(64) * curve.q):
        assert ozdst._mul_base(curve, k)[2] == 0


def _crafted(curve: Curve) -> tuple[bytes, bytes]:
    """The C layout of a table whose two rows are both 1G..32G: digits can then make P + P and P + (-P)."""
    header, body = ozdst._packed_table(curve)
    row = body[:2048]  # row 0 of the real table: j * G
    return header, row + row


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_exceptional_additions(curve: Curve, accelerator: ModuleType | CLibrary) -> None:
    header, table = _crafted(curve)

    def affine(digits: list[int]) -> tuple[int, int] | None:
        out = accelerator.fixed_base_sum(header, table, bytes(d & 0xFF for d in digits))
        jacobian = (int.from_bytes(out[:32], "little"), int.from_bytes(out[32:64], "little"),
                    int.from_bytes(out[64:], "little"))
        return ozdst._to_affine(jacobian, curve.p)

    def multiple(k: int) -> tuple[int, int] | None:
        return ozdst._to_affine(ozdst._mul_point(curve, (curve.gx, curve.gy), k), curve.p)

    assert affine([1, 1]) == multiple(2)  # P + P: the doubling case
    assert affine([32, 32]) == multiple(64)
    assert affine([-5, -5]) == multiple(curve.q - 10)
    assert affine([7, -7]) is None  # P + (-P): infinity
    assert affine([0, 0]) is None and affine([]) is None
    assert affine([0, 3]) == multiple(3)  # the first non-zero digit starts the sum
    assert affine([3, 4]) == multiple(7)


def test_bad_inputs_are_refused(accelerator: ModuleType | CLibrary) -> None:
    header, body = ozdst._packed_table(ozdst.CRYPTOPRO_A)
    rows = len(body) // 2048
    with pytest.raises(ValueError, match="96 bytes"):
        accelerator.fixed_base_sum(header[:95], body, b"\x01")
    with pytest.raises(ValueError, match="whole rows"):
        accelerator.fixed_base_sum(header, body[:-1], b"\x01")
    with pytest.raises(ValueError, match="whole rows"):
        accelerator.fixed_base_sum(header, b"", b"")
    with pytest.raises(ValueError, match="more digits"):
        accelerator.fixed_base_sum(header, body, b"\x01" * (rows + 1))
    for digit in (33, -33, 127, -128):
        with pytest.raises(ValueError, match="outside"):
            accelerator.fixed_base_sum(header, body, bytes([digit & 0xFF]))
    even = (ozdst.CRYPTOPRO_A.p + 1).to_bytes(32, "little") + header[32:]
    with pytest.raises(ValueError, match="odd"):
        accelerator.fixed_base_sum(even, body, b"\x01")
    with pytest.raises(TypeError):
        accelerator.fixed_base_sum("text", body, b"\x01")  # type: ignore[arg-type]


def test_pure_python_switch_turns_it_off() -> None:
    code = "from eimzo_agent.crypto import ozdst; print(ozdst._ec is None)"
    for value, off in (("1", "True"), ("0", "False")):
        env = dict(os.environ, EIMZO_AGENT_PURE_PYTHON=value)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == off


@pytest.mark.parametrize(("extension", "library", "pure_env", "expected"), LOADER_CASES)
def test_loader_order(tmp_path: Path, extension: bool, library: bool, pure_env: str, expected: str) -> None:
    """The extension, then the library beside the module (the Windows installer's layout), then Python;
    EIMZO_AGENT_PURE_PYTHON=1 wins (in a copy of the package). Each way makes a signature that the pure-Python
    verification accepts."""
    code = """
from eimzo_agent.crypto import ozdst
ec = ozdst._ec
kind = "python" if ec is None else "library" if hasattr(ec, "path") else "extension"
curve = ozdst.CRYPTOPRO_B
d = ozdst.generate_private_key(curve)
signature = ozdst.sign_digest(curve, d, bytes(range(32)))
ozdst._ec = None
where = "-" if ec is None else ec.path if kind == "library" else ec.__file__
print(kind, ozdst.verify_digest(curve, ozdst.public_point(curve, d), bytes(range(32)), signature), where)
"""
    out = run_in_copy(tmp_path, code, extension=_ozdst_ec.__file__ if extension else None,
                      library=build_clib if library else None, pure_env=pure_env)
    assert out[:2] == [expected, "True"]
    if expected != "python":
        assert out[2].startswith(str(tmp_path / "eimzo_agent" / "crypto"))
