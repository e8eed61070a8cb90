"""A throwaway PostgreSQL server for tests: initdb + pg_ctl in a temporary folder, 127.0.0.1 only.

Debian's postgresql package keeps initdb and pg_ctl off PATH (/usr/lib/postgresql/N/bin); initdb
refuses to run as root, so as root the server runs as the `postgres` user (runuser). `start()`
returns None with the reason when a server cannot be had here, so tests skip and say why.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass
class PgServer:
    root: Path
    port: int
    bindir: Path
    as_user: list[str]  # the runuser prefix when running as root, else []

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        subprocess.run([*self.as_user, str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-m",
                        "immediate", "-w", "stop"], capture_output=True, timeout=60, check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def find_bindir() -> Path | None:
    """The folder with initdb and pg_ctl: PATH first, then Debian's versioned folders (newest)."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start() -> tuple[PgServer | None, str]:
    """(server, "") or (None, why not)."""
    bindir = find_bindir()
    if bindir is None:
        return None, "PostgreSQL server binaries (initdb, pg_ctl) are not installed; apt-get install postgresql"
    as_user: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return None, "running as root without runuser; initdb refuses root"
        try:
            import pwd

            pw = pwd.getpwnam("postgres")
        except KeyError:
            return None, "running as root and there is no 'postgres' user to run the server as"
        as_user = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="spikeforge-pg-"))
    if as_user:
        os.chown(root, pw.pw_uid, pw.pw_gid)
    data = root / "data"
    init = subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                           "--no-sync", "-E", "UTF8"], capture_output=True, text=True, timeout=120, check=False)
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        return None, f"initdb failed: {init.stderr.strip()[-300:]}"
    for _attempt in range(3):  # the free port can be taken between the probe and the bind
        port = _free_port()
        opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off -c max_connections=300"
        run = subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l",
                              str(root / "server.log"), "-w", "-t", "60", "start"],
                             capture_output=True, text=True, timeout=120, check=False)
        if run.returncode == 0:
            return PgServer(root, port, bindir, as_user), ""
    log = (root / "server.log").read_text(errors="replace")[-300:] if (root / "server.log").exists() else ""
    shutil.rmtree(root, ignore_errors=True)
    return None, f"pg_ctl start failed: {run.stderr.strip()[-200:]} {log}"
