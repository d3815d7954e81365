"""Which services there are, and ``up``/``down``/``status`` over a selection of them.

Services start in the order of ``SERVICES`` and stop in reverse; the Elasticsearch nodes of
a cluster start together.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from config.services.base import Service, Status
from config.services.celery import Beat, Worker
from config.services.elasticsearch import NODE_NAMES, Elasticsearch, elasticsearch_nodes
from config.services.postgres import Postgres
from config.services.process import ServiceError
from config.services.redis import Redis, RedisCache
from config.services.web import Balancer, WebInstance, instance_count

SERVICES: dict[str, Callable[[], Service]] = {
    "postgres": Postgres,
    "redis": Redis,
    "redis-cache": RedisCache,
    "elasticsearch": Elasticsearch,
    "worker": Worker,
    "beat": Beat,
}


def web_services() -> dict[str, Callable[[], Service]]:
    """The web instances and the balancer, when ``WEB_INSTANCES`` asks for them."""
    count = instance_count()
    if count < 1:
        return {}
    made: dict[str, Callable[[], Service]] = {
        f"web{n}": (lambda n=n: WebInstance(n)) for n in range(1, count + 1)
    }
    made["balancer"] = Balancer
    return made


def select(names: Iterable[str]) -> list[Service]:
    services = {**SERVICES, **web_services()}
    chosen = list(names) or list(services)
    unknown = [n for n in chosen if n not in services and n not in NODE_NAMES]
    if unknown:
        raise ServiceError(
            f"unknown service(s): {', '.join(unknown)}; "
            f"known: {', '.join([*services, *NODE_NAMES])} (web instances and the balancer "
            "with WEB_INSTANCES=n)"
        )
    selected: list[Service] = []
    for name, factory in services.items():
        if name == "elasticsearch" and name in chosen:
            selected.extend(elasticsearch_nodes())
        elif name == "elasticsearch":
            selected.extend(Elasticsearch(n) for key, n in NODE_NAMES.items() if key in chosen)
        elif name in chosen:
            selected.append(factory())
    return selected


def up(names: Iterable[str] = ()) -> None:
    """Start the named services (all by default), installing what is missing."""
    services = select(names)
    nodes = [s for s in services if isinstance(s, Elasticsearch)]
    for service in services:
        if service not in nodes:
            service.up()
        elif service is nodes[0]:
            up_together(nodes)


def up_together(services: list[Service]) -> None:
    """Bring several services up at once (the Elasticsearch nodes: each JVM takes tens of
    seconds to start, and a data node keeps retrying until the master is there)."""
    if len(services) == 1:
        services[0].up()
        return
    errors: list[ServiceError] = []

    def bring_up(service: Service) -> None:
        try:
            service.up()
        except ServiceError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=bring_up, args=(s,), name=s.name) for s in services]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise ServiceError("\n".join(str(e) for e in errors))


def down(names: Iterable[str] = ()) -> None:
    """Stop the named services (all by default), in reverse start order."""
    for service in reversed(select(names)):
        service.down()


def status(names: Iterable[str] = ()) -> list[Status]:
    """Report what runs, where, and the log file of each service."""
    return [service.status() for service in select(names)]
