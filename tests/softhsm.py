"""SoftHSM2 tokens minted at test time: keys and certificates from our dev CA, imported as test-stack.md §3 shows.

Everything lives under one folder (its own softhsm2.conf and token directory); point SOFTHSM2_CONF at `conf`.
`PinCounter` puts tests/pkcs11_shim/pin_counter.c (compiled at test time) in front of SoftHSM, so its tokens
count wrong PINs, report their last try and lock, as hardware tokens do.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from eimzo_agent.dev.mint import SubjectFields, ensure_dev_ca, mint_key

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
SO_PIN = "12345678"
PIN = "1234"
PIN_SHIM_SOURCE = Path(__file__).parent / "pkcs11_shim" / "pin_counter.c"
#: pkcs11.h of libp11-kit-dev (scripts/bootstrap.sh --test).
P11_KIT_INCLUDE = Path("/usr/include/p11-kit-1")


@dataclass
class SoftHsm:
    directory: Path
    tokens: dict[str, Path] = field(default_factory=dict)  # label -> its token folder

    @property
    def conf(self) -> Path:
        return self.directory / "softhsm2.conf"

    def env(self) -> dict[str, str]:
        return {**os.environ, "SOFTHSM2_CONF": str(self.conf)}

    def run(self, *cmd: str) -> str:
        result = subprocess.run(cmd, capture_output=True, text=True, env=self.env(), timeout=60, check=False)
        assert result.returncode == 0, f"{cmd}: {result.stdout}{result.stderr}"
        return result.stdout

    def add_token(self, label: str, pin: str = PIN) -> None:
        before = set((self.directory / "tokens").iterdir())
        self.run("softhsm2-util", "--init-token", "--free", "--label", label, "--so-pin", SO_PIN, "--pin", pin)
        (self.tokens[label],) = set((self.directory / "tokens").iterdir()) - before

    def import_key(self, token: str, pfx: Path, password: str, cka_id: str, label: str, pin: str = PIN,
                   with_ca: bool = False) -> None:
        """The key and certificate of a minted .pfx onto `token` under CKA_ID `cka_id` (hex)."""
        key, cert, extra = pkcs12.load_key_and_certificates(pfx.read_bytes(), password.encode())
        assert key is not None and cert is not None
        work = self.directory / f"import-{token}-{cka_id}"
        work.mkdir()
        (work / "key.p8.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                            serialization.PrivateFormat.PKCS8,
                                                            serialization.NoEncryption()))
        (work / "cert.der").write_bytes(cert.public_bytes(serialization.Encoding.DER))
        self.run("softhsm2-util", "--import", str(work / "key.p8.pem"), "--token", token, "--label", label,
                 "--id", cka_id, "--pin", pin)
        self.write_cert(token, work / "cert.der", cka_id, label, pin)
        if with_ca and extra:
            (work / "ca.der").write_bytes(extra[0].public_bytes(serialization.Encoding.DER))
            self.write_cert(token, work / "ca.der", "cafe", "dev CA", pin)

    def write_cert(self, token: str, der: Path, cka_id: str, label: str, pin: str = PIN) -> None:
        self.run("pkcs11-tool", "--module", MODULE, "--token-label", token, "--login", "--pin", pin,
                 "--write-object", str(der), "--type", "cert", "--id", cka_id, "--label", label)


def make_softhsm(directory: Path) -> SoftHsm:
    (directory / "tokens").mkdir(parents=True)
    (directory / "softhsm2.conf").write_text(
        f"directories.tokendir = {directory}/tokens\nobjectstore.backend = file\nlog.level = ERROR\n")
    return SoftHsm(directory)


def mint_pfx(ca_dir: Path, out: Path, alg: str, cn: str, pinfl: str, password: str = "Token-Passw0rd") -> Path:
    subject = SubjectFields(cn=cn, pinfl=pinfl)
    return mint_key(ensure_dev_ca(ca_dir), out, password=password, subject=subject, alg=alg)  # type: ignore[arg-type]


def build_pin_shim(out: Path) -> Path:
    """Compile the PIN-counting PKCS#11 module into `out`; its path."""
    assert (P11_KIT_INCLUDE / "p11-kit" / "pkcs11.h").is_file(), \
        "libp11-kit-dev is not installed (scripts/bootstrap.sh --test installs it)"
    out.mkdir(parents=True, exist_ok=True)
    library = out / "pin_counter.so"
    result = subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-Wall", "-Wextra", "-Werror", f"-I{P11_KIT_INCLUDE}",
                             "-o", str(library), str(PIN_SHIM_SOURCE), "-ldl"],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return library


@dataclass
class PinCounter:
    """SoftHSM tokens seen through the pin_counter module: every process with `env()` shares the tokens' counts."""

    hsm: SoftHsm
    module: Path
    state: Path
    max_tries: int = 3

    def env(self, **extra: str) -> dict[str, str]:
        return {**self.hsm.env(), "PIN_SHIM_MODULE": MODULE, "PIN_SHIM_STATE_DIR": str(self.state),
                "PIN_SHIM_MAX_TRIES": str(self.max_tries), **extra}

    def wrong_login_command(self, token: str) -> list[str]:
        """pkcs11-tool logging in to `token` with a wrong PIN: another program spending one of its tries."""
        return ["pkcs11-tool", "--module", str(self.module), "--token-label", token, "--login", "--pin", "0000",
                "--list-objects"]

    def spend_wrong_pin(self, token: str, times: int = 1) -> None:
        for _ in range(times):
            result = subprocess.run(self.wrong_login_command(token), capture_output=True, text=True,
                                    env=self.env(), timeout=60, check=False)
            assert "CKR_PIN_INCORRECT" in result.stdout + result.stderr, result.stdout + result.stderr

    def flags(self, token: str) -> str:
        """The token's flags as pkcs11-tool prints them (e.g. "final user PIN try", "user PIN locked")."""
        listing = subprocess.run(["pkcs11-tool", "--module", str(self.module), "--list-token-slots"],
                                 capture_output=True, text=True, env=self.env(), timeout=60, check=True).stdout
        label = flags = None
        for line in listing.splitlines():
            name, _, value = line.partition(":")
            if name.strip() == "token label":
                label = value.strip()
            elif name.strip() == "token flags" and label == token:
                flags = value.strip()
        assert flags is not None, listing
        return flags


def make_pin_counter(directory: Path, hsm: SoftHsm, max_tries: int = 3) -> PinCounter:
    (directory / "state").mkdir(parents=True)
    return PinCounter(hsm, build_pin_shim(directory), directory / "state", max_tries)
