from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared" / "testdata" / "eimzo-kat.json"


def test_kat_copy_matches_the_shared_original() -> None:
    copy = (HERE / "data" / "eimzo-kat.json").read_bytes()
    assert b"PRIVATE KEY" not in copy
    if SHARED.exists():  # CI has shared/ beside the checkout; a plain clone elsewhere may not
        assert copy == SHARED.read_bytes()
