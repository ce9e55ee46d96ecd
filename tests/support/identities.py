"""A nats-server with the per-service users of infra/auth.py, and connections as each identity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nats

from infra.auth import IDENTITIES, SERVICES, authorization_block, inbox_prefix
from infra.natsserver import EmbeddedNats, free_port
from shared.settings import Settings

PASSWORDS = {i: f"pw-{i}-test" for i in IDENTITIES}


def secured_server(data_dir: Path) -> EmbeddedNats:
    return EmbeddedNats(data_dir, free_port(), extra_config=authorization_block(PASSWORDS)).start()


async def connect_as(server: EmbeddedNats, identity: str, **options: Any) -> nats.NATS:
    return await nats.connect(
        server.url,
        user=identity,
        password=PASSWORDS[identity],
        inbox_prefix=inbox_prefix(identity),
        max_reconnect_attempts=options.pop("max_reconnect_attempts", 0),
        **options,
    )


def service_settings(settings: Settings, server: EmbeddedNats, service: str) -> Settings:
    """``settings`` for ``service`` running under its own NATS user (streams are ops's job)."""
    assert service in SERVICES
    return settings.model_copy(
        update={
            "nats_url": server.url,
            "nats_user": service,
            "nats_password": PASSWORDS[service],
            "nats_inbox_prefix": inbox_prefix(service),
            "manage_streams": False,
        }
    )


def service_env(service: str) -> dict[str, str]:
    """The environment a service process gets from infra.run under the per-service users."""
    return {
        "KOOLLE_NATS_USER": service,
        "KOOLLE_NATS_PASSWORD": PASSWORDS[service],
        "KOOLLE_NATS_INBOX_PREFIX": inbox_prefix(service),
        "KOOLLE_MANAGE_STREAMS": "false",
    }
