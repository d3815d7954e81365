"""What every service needs: where things live, running commands, pid files, ports, Debian
packages and the unprivileged service user.

Everything lives under ``.var/`` (``PORTAL_VAR_DIR``), git-ignored: ``run/`` for pid files,
``log/`` for logs, ``cache/`` for downloads, and one folder per service for its data.

Elasticsearch and PostgreSQL refuse to run as root; when run as root the manager creates an
unprivileged system user (``portal``, ``PORTAL_SERVICE_USER``) and starts them with
``runuser``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from config import env

ROOT = Path(__file__).resolve().parent.parent.parent
VAR = Path(env.env_str("PORTAL_VAR_DIR", str(ROOT / ".var")))
RUN = VAR / "run"
LOG = VAR / "log"
CACHE = VAR / "cache"

SERVICE_USER = env.env_str("PORTAL_SERVICE_USER", "portal")

# runuser, useradd and PostgreSQL's tools live in the system directories, which a login
# shell or CI runner does not always put on PATH (seen: root shells without /usr/sbin).
# Everything the manager runs, and the processes it starts, get them appended: run() and the
# command line (python -m config.services) call ensure_system_path(); importing changes nothing.
SYSTEM_BIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def ensure_system_path() -> None:
    parts = os.environ.get("PATH", "").split(os.pathsep)
    missing = [d for d in SYSTEM_BIN_DIRS if d not in parts and os.path.isdir(d)]
    if missing:
        os.environ["PATH"] = os.pathsep.join([p for p in parts if p] + missing)


class ServiceError(RuntimeError):
    """A step failed; the message names the step and what to do."""


def say(message: str) -> None:
    """Print a progress line (flushed, so it shows up in CI logs immediately)."""
    print(f"[services] {message}", flush=True)


def is_root() -> bool:
    return os.geteuid() == 0


def run(
    cmd: list[str],
    *,
    step: str,
    env_extra: dict[str, str] | None = None,
    as_service_user: bool = False,
    timeout: float = 600,
    capture: bool = True,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure raise ServiceError naming ``step`` and showing its output."""
    ensure_system_path()
    full = list(cmd)
    if as_service_user and is_root():
        full = ["runuser", "-u", SERVICE_USER, "--", *full]
    environment = dict(os.environ)
    if env_extra:
        environment.update(env_extra)
    try:
        result = subprocess.run(
            full,
            env=environment,
            timeout=timeout,
            text=True,
            stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
            stderr=subprocess.STDOUT if capture else subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except FileNotFoundError as exc:
        raise ServiceError(f"{step}: command not found: {exc.filename}") from exc
    except subprocess.TimeoutExpired as exc:
        raise ServiceError(f"{step}: timed out after {timeout:.0f}s running {full[0]}") from exc
    if check and result.returncode != 0:
        tail = (result.stdout or "").strip().splitlines()[-25:]
        raise ServiceError(
            f"{step} failed (exit {result.returncode}): {' '.join(full)}\n" + "\n".join(tail)
        )
    return result


# --------------------------------------------------------------------------- ports, pids


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def pid_cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not alive for our purposes.
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[0] != "Z"
    except (OSError, IndexError):
        return True


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def stop_pid(pid: int, name: str, grace: float) -> None:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not wait_until(lambda: not pid_alive(pid), grace, 0.2):
        say(f"{name} (pid {pid}) did not stop within {grace:.0f}s; sending SIGKILL")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not pid_alive(pid), 10, 0.2)


# --------------------------------------------------------------------------- installing


def apt_install(package: str, step: str) -> None:
    """Install a Debian package, or explain how when we are not root."""
    if not is_root():
        raise ServiceError(
            f"{step}: the Debian package '{package}' is missing and this is not root. "
            f"Install it with: sudo apt-get install -y {package}"
        )
    say(f"installing Debian package {package} (apt-get) ...")
    environment = {"DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-qq"], step=f"{step}: apt-get update", env_extra=environment)
    run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
        step=f"{step}: apt-get install {package}",
        env_extra=environment,
        timeout=900,
    )


def debian_binary(command: str, path: str, package: str, step: str) -> str:
    """The program ``command`` (on PATH, or at ``path`` where its Debian package puts it),
    installing ``package`` first when it is missing."""

    def found() -> str | None:
        return shutil.which(command) or (path if Path(path).exists() else None)

    located = found()
    if located is None:
        apt_install(package, step)
        located = found()
    if located is None:
        raise ServiceError(f"{step}: '{command}' is still missing after installing {package}")
    return located


# --------------------------------------------------------------------------- service user


def ensure_service_user() -> None:
    """Create the unprivileged user that runs PostgreSQL and Elasticsearch (root only)."""
    if not is_root():
        return
    try:
        pwd.getpwnam(SERVICE_USER)
        return
    except KeyError:
        pass
    say(f"creating system user '{SERVICE_USER}' to run PostgreSQL and Elasticsearch")
    run(
        [
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            SERVICE_USER,
        ],
        step="create service user",
    )


def give_to_service_user(*paths: Path) -> None:
    """Make paths owned by the service user (recursively) when we run as root."""
    if not is_root():
        return
    user = pwd.getpwnam(SERVICE_USER)
    for top in paths:
        if not top.exists():
            continue
        if not top.is_dir():
            os.chown(top, user.pw_uid, user.pw_gid)
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            os.chown(dirpath, user.pw_uid, user.pw_gid)
            for name in dirnames + filenames:
                with contextlib.suppress(FileNotFoundError):
                    os.lchown(os.path.join(dirpath, name), user.pw_uid, user.pw_gid)


def service_user_can_read(path: Path) -> bool:
    """True when the service user can traverse to and execute/read ``path``."""
    if not is_root():
        return os.access(path, os.R_OK)
    result = run(
        ["test", "-r", str(path)],
        step=f"check that '{SERVICE_USER}' can read {path}",
        as_service_user=True,
        check=False,
    )
    return result.returncode == 0
