"""The command line of the local services manager: ``python -m config.services ACTION``."""

from __future__ import annotations

import argparse
import os
import sys

from config import env
from config.services.manager import NODE_NAMES, SERVICES, down, status, up
from config.services.process import ServiceError, ensure_system_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m config.services",
        description=(
            "Run the project's own PostgreSQL, Redis, Elasticsearch and Celery processes on "
            "127.0.0.1 (data and logs under .var/). No Docker needed."
        ),
    )
    parser.add_argument("action", choices=["up", "down", "status", "restart"])
    parser.add_argument(
        "services",
        nargs="*",
        help=(
            f"services to act on (default: all): {', '.join(SERVICES)}; 'elasticsearch' "
            f"means every node, {', '.join(NODE_NAMES)} one node alone"
        ),
    )
    parser.add_argument(
        "--es-nodes",
        type=int,
        choices=range(1, env.MAX_ELASTICSEARCH_NODES + 1),
        metavar="N",
        help=(
            "Elasticsearch nodes to run: 1 (single node, the default) or 2 (node 1 "
            "master-eligible, node 2 data only, on the next ports); the same as "
            "ELASTICSEARCH_NODES=N, which the worker and beat started here inherit. "
            "down and status always include every node that runs"
        ),
    )
    # Intermixed: options may come between the action and the services.
    args = parser.parse_intermixed_args(argv)
    ensure_system_path()
    if args.es_nodes is not None:
        os.environ["ELASTICSEARCH_NODES"] = str(args.es_nodes)
    try:
        if args.action in {"down", "restart"}:
            down(args.services)
        if args.action in {"up", "restart"}:
            up(args.services)
        if args.action == "status":
            rows = status(args.services)
            print(f"{'service':<16} {'state':<8} {'pid':>8}  {'address':<16} log")
            for row in rows:
                state = "running" if row.running else "stopped"
                pid = str(row.pid) if row.pid else "-"
                note = f"  ({row.note})" if row.note else ""
                print(f"{row.name:<16} {state:<8} {pid:>8}  {row.address:<16} {row.log}{note}")
            for row in rows:
                if row.detail:
                    print(f"{row.name}: {row.detail}")
            return 0 if all(r.running for r in rows) else 3
    except ServiceError as exc:
        print(f"[services] ERROR: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
