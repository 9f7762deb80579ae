"""Private redis-server and nginx processes for the portal tests: in a temporary folder, on free ports.

Debian's redis-server and nginx binaries are used, never their system services or config files: each process
gets its own config, data folder, pid file and logs under the folder the test gives, and is stopped by the test.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}: {log.read_text(errors='replace')[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open: {log.read_text(errors='replace')[-2000:]}")


def _stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@dataclass
class RedisServer:
    process: subprocess.Popen[bytes]
    port: int
    folder: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def kill(self) -> None:
        """Die at once, as a crashed Redis does (no shutdown handshake with clients)."""
        _stop(self.process, signal.SIGKILL)

    def stop(self) -> None:
        _stop(self.process)


def start_redis(folder: Path, port: int | None = None) -> RedisServer:
    """A memory-only redis-server (no RDB, no AOF) bound to 127.0.0.1, its files in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = folder / "redis.log"
    process = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", "",
         "--appendonly", "no", "--daemonize", "no", "--logfile", str(log), "--pidfile", str(folder / "redis.pid")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    log.touch()
    try:
        wait_for_port(port, process, log)
    except BaseException:
        _stop(process)
        raise
    return RedisServer(process, port, folder)


@dataclass
class NginxServer:
    process: subprocess.Popen[bytes]
    port: int
    folder: Path

    def error_log(self) -> str:
        return (self.folder / "error.log").read_text(errors="replace")

    def stop(self) -> None:
        _stop(self.process, signal.SIGQUIT)  # graceful: workers finish their requests


def start_nginx(folder: Path, http_config: str, port: int) -> NginxServer:
    """nginx in the foreground with `http_config` (upstreams and server blocks, as docs/portal.md shows) inside
    an http block of our own: pid, logs and temporary files in `folder`, nothing of /etc/nginx."""
    folder.mkdir(parents=True, exist_ok=True)
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (folder / "temp" / sub).mkdir(parents=True, exist_ok=True)
    # As root (CI) nginx would switch its workers to "nobody", who cannot enter the test's private folders.
    user = "user root root;\n" if os.geteuid() == 0 else ""
    (folder / "nginx.conf").write_text(
        f"{user}worker_processes 1;\npid {folder}/nginx.pid;\nerror_log {folder}/error.log info;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        f"  access_log {folder}/access.log;\n"
        f"  client_body_temp_path {folder}/temp/body;\n  proxy_temp_path {folder}/temp/proxy;\n"
        f"  fastcgi_temp_path {folder}/temp/fastcgi;\n  uwsgi_temp_path {folder}/temp/uwsgi;\n"
        f"  scgi_temp_path {folder}/temp/scgi;\n"
        f"{http_config}\n}}\n"
    )
    log = folder / "error.log"
    log.touch()
    process = subprocess.Popen(
        [NGINX, "-p", str(folder), "-e", str(log), "-c", str(folder / "nginx.conf"), "-g", "daemon off;"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process, log)
    except BaseException:
        _stop(process)
        raise
    return NginxServer(process, port, folder)
