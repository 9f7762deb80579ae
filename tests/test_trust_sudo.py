"""`sudo eimzo-agent trust install` trusts the invoking person's CA and makes nothing as root; `trust status`
exits non-zero when the CA is trusted nowhere.

The sudo case runs as root with SUDO_USER set to a second real user (tests/other_user.py) inside a private mount
namespace (`unshare --mount`): tmpfs over /home (the user's passwd home, /home/eimzo-test-other, exists only
there) and over /usr/local/share/ca-certificates, and a copy of /etc/ssl/certs, so `update-ca-certificates` runs
for real while the machine's trust store is never changed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from needs import skip_or_fail_on_ci
from other_user import other_user, scratch_dir

from eimzo_agent.trust import SYSTEM_CA_PATH

SCRIPT = r"""
set -u
out="$1"; user="$2"; uid="$3"; gid="$4"; python="$5"; pythonpath="$6"; roothome="$7"
uhome="$(getent passwd "$user" | cut -d: -f6)"
mount -t tmpfs tmpfs "$(dirname "$uhome")"
mkdir -p "$uhome" && chown "$uid:$gid" "$uhome" && chmod 700 "$uhome"
mount -t tmpfs tmpfs /usr/local/share/ca-certificates
cp -a /etc/ssl/certs "$out/certs" && mount --bind "$out/certs" /etc/ssl/certs
as_user() {
  env -i PATH=/usr/bin:/bin HOME="$uhome" LANG=C.UTF-8 PYTHONPATH="$pythonpath" PYTHONDONTWRITEBYTECODE=1 \
    EIMZO_AGENT_SYSTEM_CONFIG=/nonexistent \
    setpriv --reuid="$uid" --regid="$gid" --init-groups --no-new-privs -- "$python" -m eimzo_agent "$@"
}
as_sudo() {  # what `sudo eimzo-agent ...` leaves: root's HOME, the SUDO_* variables, no XDG folders
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$roothome" LANG=C.UTF-8 SUDO_USER="$user" SUDO_UID="$uid" \
    SUDO_GID="$gid" EIMZO_AGENT_SYSTEM_CONFIG=/dev/null PYTHONDONTWRITEBYTECODE=1 "$PYTHON_ROOT" -m eimzo_agent "$@"
}
as_sudo trust install >"$out/1.out" 2>"$out/1.err"; echo $? >"$out/1.rc"
find "$uhome" "$roothome" /usr/local/share/ca-certificates -mindepth 1 >"$out/1.files"
as_user trust install >"$out/2.out" 2>"$out/2.err"; echo $? >"$out/2.rc"
as_sudo trust install >"$out/3.out" 2>"$out/3.err"; echo $? >"$out/3.rc"
find "$uhome" "$roothome" -mindepth 1 -uid 0 >"$out/3.rootfiles"
find "$roothome" -mindepth 1 >>"$out/3.rootfiles"
cp "$uhome/.local/share/eimzo-agent/tls/ca.crt.pem" "$out/user-ca.pem"
cp /usr/local/share/ca-certificates/*.crt "$out/system-ca.pem"
grep -c "BEGIN CERTIFICATE" /etc/ssl/certs/ca-certificates.crt >"$out/bundle-count"
as_user trust status >"$out/4.out" 2>&1; echo $? >"$out/4.rc"
as_sudo trust status >"$out/5.out" 2>&1; echo $? >"$out/5.rc"
"""


def test_sudo_trust_install_uses_the_invoking_users_ca(tmp_path: Path) -> None:
    user = other_user()
    if shutil.which("unshare") is None or shutil.which("update-ca-certificates") is None:
        missing = "needs unshare (util-linux) and update-ca-certificates (ca-certificates)"
        skip_or_fail_on_ci(missing)
    with scratch_dir() as out, scratch_dir() as root_home:
        result = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", SCRIPT, "sh", str(out), user.name,
             str(user.uid), str(user.gid), user.python, user.pythonpath, str(root_home)],
            env={**os.environ, "PYTHON_ROOT": sys.executable}, capture_output=True, text=True, timeout=240,
            check=False,
        )
        assert result.returncode == 0, result.stderr

        def read(name: str) -> str:
            return (out / name).read_text()

        # 1. The person has no CA yet: say what to run, exit non-zero, create nothing anywhere.
        assert read("1.rc").strip() == "1", read("1.out") + read("1.err")
        assert f"Run, as {user.name} (without sudo):  eimzo-agent trust install" in read("1.err")
        assert "Traceback" not in read("1.err")
        assert read("1.files") == ""
        # 2. The person makes their CA (and trusts it in their own browsers' database).
        assert read("2.rc").strip() == "0", read("2.out") + read("2.err")
        # 3. sudo again: the system store gets exactly the person's CA; nothing root-owned in either home.
        assert read("3.rc").strip() == "0", read("3.out") + read("3.err")
        assert f"the local CA of {user.name}" in read("3.out") and f"ok: system store {SYSTEM_CA_PATH}" in read("3.out")
        assert read("3.rootfiles") == ""
        assert read("system-ca.pem") == read("user-ca.pem")
        assert int(read("bundle-count")) > 1
        # 4./5. status, as the person and under sudo, sees the person's CA trusted in both places.
        for step in ("4", "5"):
            assert read(f"{step}.rc").strip() == "0", read(f"{step}.out")
            assert "trusted in the system store" in read(f"{step}.out")
            assert "not trusted in the system store" not in read(f"{step}.out")
            assert "trusted in NSS database" in read(f"{step}.out")
    assert not SYSTEM_CA_PATH.exists() or SYSTEM_CA_PATH.read_text() != read("user-ca.pem")


def test_trust_status_exits_non_zero_when_trusted_nowhere(tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "eimzo_agent", "trust", *args], capture_output=True, text=True,
                              timeout=60, check=False)

    empty = tmp_path / "empty-nssdb"
    before = cli("status", "--nss-db", str(empty))
    assert before.returncode == 1 and "no local CA yet" in before.stdout
    nssdb = tmp_path / "nssdb"
    assert cli("install", "--no-system", "--nss-db", str(nssdb)).returncode == 0
    nowhere = cli("status", "--nss-db", str(empty))
    assert nowhere.returncode == 1 and "not trusted anywhere" in nowhere.stdout
    somewhere = cli("status", "--nss-db", str(nssdb))
    assert somewhere.returncode == 0 and f"trusted in NSS database {nssdb}" in somewhere.stdout
