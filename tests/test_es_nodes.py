"""Several Elasticsearch nodes: the default hosts and the services manager's node settings.

Unit tests: nothing is started; the manager's node objects are only asked for their
ports, folders and elasticsearch.yml lines.
"""

from __future__ import annotations

import pytest

import config.services.__main__ as cli
from config import env, services


@pytest.fixture
def clean_env(monkeypatch):
    for name in (
        "ELASTICSEARCH_HOSTS",
        "ELASTICSEARCH_NODES",
        "ELASTICSEARCH_PORT",
        "ELASTICSEARCH_TRANSPORT_PORT",
    ):
        # Set first so that the original state is restored even when a test (or the code
        # under test) sets the variable directly.
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    return monkeypatch


def test_default_hosts_follow_the_number_of_local_nodes(clean_env):
    assert env.connections().elasticsearch_hosts == ["http://127.0.0.1:29200"]
    clean_env.setenv("ELASTICSEARCH_NODES", "2")
    assert env.connections().elasticsearch_hosts == [
        "http://127.0.0.1:29200",
        "http://127.0.0.1:29201",
    ]
    clean_env.setenv("ELASTICSEARCH_PORT", "59220")
    assert env.connections().elasticsearch_hosts == [
        "http://127.0.0.1:59220",
        "http://127.0.0.1:59221",
    ]


def test_explicit_hosts_win_and_are_split_on_commas(clean_env):
    clean_env.setenv("ELASTICSEARCH_NODES", "2")
    clean_env.setenv("ELASTICSEARCH_HOSTS", "http://127.0.0.1:9200, http://127.0.0.1:9201,")
    assert env.connections().elasticsearch_hosts == [
        "http://127.0.0.1:9200",
        "http://127.0.0.1:9201",
    ]
    # With the hosts given, the node count is not even looked at.
    clean_env.setenv("ELASTICSEARCH_NODES", "9")
    assert len(env.connections().elasticsearch_hosts) == 2


@pytest.mark.parametrize("value", ["0", "3"])
def test_node_count_out_of_range_is_refused(clean_env, value):
    clean_env.setenv("ELASTICSEARCH_NODES", value)
    with pytest.raises(SystemExit, match="ELASTICSEARCH_NODES"):
        env.connections()


def test_one_node_uses_single_node_discovery(clean_env, tmp_path):
    node = services.Elasticsearch(1)
    assert (node.name, node.port, node.transport_port) == ("elasticsearch", 29200, 29300)
    assert node.discovery_settings() == "discovery.type: single-node\n"
    assert [s.name for s in services.select(["elasticsearch"])] == ["elasticsearch"]


def test_two_nodes_one_master_eligible_and_one_data_only(clean_env, tmp_path):
    clean_env.setenv("ELASTICSEARCH_NODES", "2")
    first, second = services.select(["elasticsearch"])
    assert (first.name, first.port, first.transport_port) == ("elasticsearch", 29200, 29300)
    assert (second.name, second.port, second.transport_port) == ("elasticsearch-2", 29201, 29301)
    # Own config, data, logs and pid file; one shared distribution.
    assert second.dist == first.dist
    for attribute in ("conf", "data", "logs", "pidfile", "logfile"):
        assert getattr(first, attribute) != getattr(second, attribute), attribute
    assert services.VAR / "elasticsearch-2" in second.data.parents

    seeds = 'discovery.seed_hosts: ["127.0.0.1:29300", "127.0.0.1:29301"]\n'
    first.data = tmp_path / "data-1"  # fresh: node 1 bootstraps the cluster by itself
    assert first.discovery_settings() == (
        seeds + "cluster.initial_master_nodes: [portal-local-1]\n"
    )
    (first.data / "_state").mkdir(parents=True)  # formed: the setting must go
    assert first.discovery_settings() == seeds
    assert second.discovery_settings() == seeds + "node.roles: [data, ingest]\n"
    assert "node.roles" not in first.discovery_settings()


def test_select_names_a_single_node_and_rejects_unknown_ones(clean_env):
    clean_env.setenv("ELASTICSEARCH_NODES", "2")
    assert [s.name for s in services.select(["elasticsearch-2"])] == ["elasticsearch-2"]
    with pytest.raises(services.ServiceError, match="elasticsearch-3"):
        services.select(["elasticsearch-3"])


def test_a_second_node_needs_two_configured(clean_env):
    with pytest.raises(services.ServiceError, match="ELASTICSEARCH_NODES=2"):
        services.Elasticsearch(2).prepare()


def test_es_nodes_option_sets_the_environment(clean_env, capsys):
    clean_env.setattr(cli, "status", lambda names: [])
    assert cli.main(["--es-nodes", "2", "status"]) == 0
    assert env.elasticsearch_nodes() == 2
    with pytest.raises(SystemExit):
        cli.main(["--es-nodes", "3", "status"])
