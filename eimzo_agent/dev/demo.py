"""The demo key set behind `eimzo-agent serve --demo`: a dev CA and a few test keys a newcomer can sign with.

Made once, on first use, in `<user data dir>/demo/` (`ca/` and `DSKEYS/`); later runs reuse it (and add a key of
the set that is missing, so an older demo folder gains the newer keys). The keys cover what a portal has to show:
an individual, an employee of a legal entity (organisation name with a comma, which E-IMZO aliases escape), an
expired key, and the national algorithm Uzbek citizens actually hold: an O'zDSt individual and an O'zDSt officer of
a legal entity (from the dev O'zDSt CA in `ca/ozdst/`); plus an ECDSA P-256 key. They come from development CAs:
never use them for anything real.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from eimzo_agent.config import user_data_path
from eimzo_agent.dev.mint import Algorithm, SubjectFields, ensure_dev_ca, mint_key
from eimzo_agent.dev.ozdst_ca import ensure_ozdst_ca

#: Password of every demo key; printed on the console by `serve --demo`.
DEMO_PASSWORD = "Demo-Passw0rd"  # noqa: S105 - a published demo password, by design

DEMO_KEYS: tuple[tuple[str, SubjectFields, Algorithm, int | None], ...] = (
    # (file name, subject, key algorithm, validity in days from now; None = expired a month ago)
    (
        "DS312345678901230001",
        SubjectFields(cn="ALIYEV VALI ANVAROVICH", name="VALI", surname="ALIYEV", pinfl="31234567890123",
                      tin="512345678", locality="CHILONZOR TUMANI", region="TOSHKENT SHAHRI"),
        "rsa2048",
        730,
    ),
    (
        "DS412345678901240001",
        SubjectFields(cn="KARIMOVA NODIRA BAXTIYOROVNA", name="NODIRA", surname="KARIMOVA", pinfl="41234567890124",
                      tin="498765432", org="Yangi Texnologiyalar, MChJ", org_tin="301234567", title="Direktor",
                      locality="YUNUSOBOD TUMANI", region="TOSHKENT SHAHRI", business_category="MChJ"),
        "rsa2048",
        365,
    ),
    (
        "DS301011990123450001",
        SubjectFields(cn="TOSHMATOV ESHMAT", name="ESHMAT", surname="TOSHMATOV", pinfl="30101199012345",
                      tin="412345679", region="SAMARQAND VILOYATI"),
        "rsa2048",
        None,
    ),
    (
        "DS323456789012350001",
        SubjectFields(cn="QODIROV JASUR BAHODIROVICH", name="JASUR", surname="QODIROV", pinfl="32345678901235",
                      tin="523456789", locality="NUKUS SHAHRI", region="QORAQALPOG'ISTON RESPUBLIKASI"),
        "ozdst",
        730,
    ),
    (
        "DS423456789012360001",
        SubjectFields(cn="RAHIMOVA DILNOZA SHAVKATOVNA", name="DILNOZA", surname="RAHIMOVA", pinfl="42345678901236",
                      tin="487654321", org="Raqamli Hujjatlar MChJ", org_tin="302345678", title="Bosh hisobchi",
                      locality="MIRZO ULUG'BEK TUMANI", region="TOSHKENT SHAHRI", business_category="MChJ"),
        "ozdst",
        365,
    ),
    (
        "DS333456789012370001",
        SubjectFields(cn="SAIDOV BOBUR ALISHEROVICH", name="BOBUR", surname="SAIDOV", pinfl="33345678901237",
                      tin="534567890", region="FARG'ONA VILOYATI"),
        "p256",
        730,
    ),
)


@dataclass(frozen=True)
class DemoKeys:
    root: Path  # the key root to add: its DSKEYS folder holds the keys
    ca_certificate: Path  # trust anchor for checking demo signatures (e.g. `openssl cms -verify -CAfile`)
    keys: tuple[Path, ...]
    created: bool  # some made just now (first use, or keys added to the set since)
    #: Every CA the demo keys come from (RSA/P-256 and O'zDSt): the trust anchors of a verifier, e.g.
    #: `eimzo-agent portal serve --trust-anchor`.
    ca_certificates: tuple[Path, ...] = ()


def demo_path() -> Path:
    return user_data_path() / "demo"


def ensure_demo_keys(root: Path | None = None) -> DemoKeys:
    """The demo key set in `root` (default `<user data dir>/demo`); keys of the set not there yet are made."""
    root = Path(root) if root is not None else demo_path()
    ca = ensure_dev_ca(root / "ca")
    ozdst_ca = ensure_ozdst_ca(ca.directory)
    keys_dir = root / "DSKEYS"
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    made = False
    for file_name, subject, alg, days in DEMO_KEYS:
        if (keys_dir / f"{file_name}.pfx").exists():
            continue
        if days is None:
            valid_from, valid_to = now - datetime.timedelta(days=395), now - datetime.timedelta(days=30)
        else:
            valid_from, valid_to = now - datetime.timedelta(days=1), now + datetime.timedelta(days=days)
        mint_key(ca, keys_dir, password=DEMO_PASSWORD, subject=subject, alg=alg, valid_from=valid_from,
                 valid_to=valid_to, file_name=file_name)
        made = True
    keys = tuple(sorted(keys_dir.glob("*.pfx")))
    return DemoKeys(root, ca.cert_pem_path, keys, created=made,
                    ca_certificates=(ca.cert_pem_path, ozdst_ca.cert_pem_path))
