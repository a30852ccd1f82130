"""docker-compose.yml cannot run here (no Docker engine); its structure is checked instead."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import yaml

from streams.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def settings_env_names() -> set[str]:
    return {f.metadata["env"] for f in fields(Settings)}


def test_it_runs_kafka_redis_and_the_worker():
    services = compose()["services"]

    assert {"kafka", "redis", "worker"} <= set(services)
    assert services["worker"]["command"] == ["votescore", "worker"]
    assert set(services["worker"]["depends_on"]) == {"kafka", "redis"}


def test_kafka_is_a_single_kraft_node_of_the_release_the_local_path_fetches():
    kafka = compose()["services"]["kafka"]
    pom = (ROOT / "scripts/kafka/pom.xml").read_text()
    local_version = re.search(r"<kafka.version>(.+?)</kafka.version>", pom).group(1)

    assert kafka["image"] == f"apache/kafka:{local_version}"
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert kafka["environment"]["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"


def test_services_use_votescores_own_environment_variables():
    services = compose()["services"]
    known = settings_env_names()

    for name in ("worker", "dashboard"):
        env = services[name]["environment"]
        assert set(env) <= known, set(env) - known
        internal = env["KAFKA_BOOTSTRAP"].split(":")[0]
        assert internal == "kafka"
        assert env["REDIS_URL"].startswith("redis://redis:")


def test_partitions_match_the_local_default():
    worker_env = compose()["services"]["worker"]["environment"]
    kafka_env = compose()["services"]["kafka"]["environment"]

    assert int(worker_env["VOTESCORE_PARTITIONS"]) == Settings().partitions
    assert int(kafka_env["KAFKA_NUM_PARTITIONS"]) == Settings().partitions


def test_published_ports_are_bound_to_loopback():
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_the_broker_has_the_settings_of_the_local_script():
    script = (ROOT / "scripts/kafka.sh").read_text()
    local = dict(re.findall(r"^([a-z][a-z.]+)=(\S+)$", script, re.M))
    compose_env = compose()["services"]["kafka"]["environment"]

    for key in ("auto.create.topics.enable", "offsets.topic.num.partitions"):
        env_name = "KAFKA_" + key.upper().replace(".", "_")
        assert compose_env[env_name] == local[key], key
    assert local["auto.create.topics.enable"] == "false"
