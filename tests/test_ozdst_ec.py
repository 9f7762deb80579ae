"""The C accelerator of an O'zDSt signature's fixed-base point additions (`crypto/_ozdst_ec.c`).

Checked against ozdst.py's own additions (the pure-Python path) and, through `_mul_base`, against the naive
double-and-add of tests/test_ozdst.py and gostcrypto there (those tests run on whichever path is in use: this one).
The CI machine builds the extension (bootstrap installs the package with a compiler), so a missing `_ozdst_ec` is a
failure here, not a skip.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest

from eimzo_agent.crypto import _ozdst_ec, ozdst
from eimzo_agent.crypto.ozdst import CURVES, Curve


def python_sum(curve: Curve, k: int, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int] | None:
    with monkeypatch.context() as patch:
        patch.setattr(ozdst, "_ec", None)
        return ozdst._to_affine(ozdst._mul_base(curve, k), curve.p)


def test_the_accelerator_is_built_and_used() -> None:
    assert ozdst._ec is _ozdst_ec


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_agrees_with_the_python_additions(curve: Curve, monkeypatch: pytest.MonkeyPatch) -> None:
    scalars = [secrets.randbelow(curve.q) + secrets.randbits(64) * curve.q for _ in range(200)]  # blinded, as signed
    scalars += [1, 2, 31, 32, 33, 63, 64, 65, curve.q - 1, curve.q + 1, 2**255, 2**319 + 12345]
    for k in scalars:
        assert ozdst._to_affine(ozdst._mul_base(curve, k), curve.p) == python_sum(curve, k, monkeypatch), k


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_multiples_of_the_order_are_infinity(curve: Curve) -> None:
    for k in (0, curve.q, 2 * curve.q, secrets.randbits(64) * curve.q):
        assert ozdst._mul_base(curve, k)[2] == 0


def _crafted(curve: Curve) -> tuple[bytes, bytes]:
    """The C layout of a table whose two rows are both 1G..32G: digits can then make P + P and P + (-P)."""
    header, body = ozdst._packed_table(curve)
    row = body[:2048]  # row 0 of the real table: j * G
    return header, row + row


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: c.name)
def test_exceptional_additions(curve: Curve) -> None:
    header, table = _crafted(curve)

    def affine(digits: list[int]) -> tuple[int, int] | None:
        out = _ozdst_ec.fixed_base_sum(header, table, bytes(d & 0xFF for d in digits))
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


def test_bad_inputs_are_refused() -> None:
    header, body = ozdst._packed_table(ozdst.CRYPTOPRO_A)
    rows = len(body) // 2048
    with pytest.raises(ValueError, match="96 bytes"):
        _ozdst_ec.fixed_base_sum(header[:95], body, b"\x01")
    with pytest.raises(ValueError, match="whole rows"):
        _ozdst_ec.fixed_base_sum(header, body[:-1], b"\x01")
    with pytest.raises(ValueError, match="whole rows"):
        _ozdst_ec.fixed_base_sum(header, b"", b"")
    with pytest.raises(ValueError, match="more digits"):
        _ozdst_ec.fixed_base_sum(header, body, b"\x01" * (rows + 1))
    for digit in (33, -33, 127, -128):
        with pytest.raises(ValueError, match="outside"):
            _ozdst_ec.fixed_base_sum(header, body, bytes([digit & 0xFF]))
    even = (ozdst.CRYPTOPRO_A.p + 1).to_bytes(32, "little") + header[32:]
    with pytest.raises(ValueError, match="odd"):
        _ozdst_ec.fixed_base_sum(even, body, b"\x01")
    with pytest.raises(TypeError):
        _ozdst_ec.fixed_base_sum("text", body, b"\x01")  # type: ignore[arg-type]


def test_pure_python_switch_turns_it_off() -> None:
    code = "from eimzo_agent.crypto import ozdst; print(ozdst._ec is None)"
    for value, off in (("1", "True"), ("0", "False")):
        env = dict(os.environ, EIMZO_AGENT_PURE_PYTHON=value)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == off
