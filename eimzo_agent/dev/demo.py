"""The demo key set behind `eimzo-agent serve --demo`: a dev CA and a few test keys a newcomer can sign with.

Made once, on first use, in `<user data dir>/demo/` (`ca/` and `DSKEYS/`); later runs reuse it. The keys cover
what a portal has to show: an individual, an employee of a legal entity (organisation name with a comma, which
E-IMZO aliases escape), and an expired key. They come from a development CA: never use them for anything real.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from eimzo_agent.config import user_data_path
from eimzo_agent.dev.mint import SubjectFields, ensure_dev_ca, mint_key

#: Password of every demo key; printed on the console by `serve --demo`.
DEMO_PASSWORD = "Demo-Passw0rd"  # noqa: S105 - a published demo password, by design

DEMO_KEYS: tuple[tuple[str, SubjectFields, int | None], ...] = (
    # (file name, subject, validity in days from now; None = expired a month ago)
    (
        "DS312345678901230001",
        SubjectFields(cn="ALIYEV VALI ANVAROVICH", name="VALI", surname="ALIYEV", pinfl="31234567890123",
                      tin="512345678", locality="CHILONZOR TUMANI", region="TOSHKENT SHAHRI"),
        730,
    ),
    (
        "DS412345678901240001",
        SubjectFields(cn="KARIMOVA NODIRA BAXTIYOROVNA", name="NODIRA", surname="KARIMOVA", pinfl="41234567890124",
                      tin="498765432", org="Yangi Texnologiyalar, MChJ", org_tin="301234567", title="Direktor",
                      locality="YUNUSOBOD TUMANI", region="TOSHKENT SHAHRI", business_category="MChJ"),
        365,
    ),
    (
        "DS301011990123450001",
        SubjectFields(cn="TOSHMATOV ESHMAT", name="ESHMAT", surname="TOSHMATOV", pinfl="30101199012345",
                      tin="412345679", region="SAMARQAND VILOYATI"),
        None,
    ),
)


@dataclass(frozen=True)
class DemoKeys:
    root: Path  # the key root to add: its DSKEYS folder holds the keys
    ca_certificate: Path  # trust anchor for checking demo signatures (e.g. `openssl cms -verify -CAfile`)
    keys: tuple[Path, ...]
    created: bool  # made just now (first use)


def demo_path() -> Path:
    return user_data_path() / "demo"


def ensure_demo_keys(root: Path | None = None) -> DemoKeys:
    """The demo key set in `root` (default `<user data dir>/demo`), created when its DSKEYS folder has no keys."""
    root = Path(root) if root is not None else demo_path()
    ca = ensure_dev_ca(root / "ca")
    keys_dir = root / "DSKEYS"
    existing = sorted(keys_dir.glob("*.pfx")) if keys_dir.is_dir() else []
    if existing:
        return DemoKeys(root, ca.cert_pem_path, tuple(existing), created=False)
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    made = []
    for file_name, subject, days in DEMO_KEYS:
        if days is None:
            valid_from, valid_to = now - datetime.timedelta(days=395), now - datetime.timedelta(days=30)
        else:
            valid_from, valid_to = now - datetime.timedelta(days=1), now + datetime.timedelta(days=days)
        made.append(mint_key(ca, keys_dir, password=DEMO_PASSWORD, subject=subject, alg="rsa2048",
                             valid_from=valid_from, valid_to=valid_to, file_name=file_name))
    return DemoKeys(root, ca.cert_pem_path, tuple(made), created=True)
