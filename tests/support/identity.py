"""Identity for tests: a real identity provider on loopback (JWKS over HTTP) and tokens of every kind.

Fixtures (registered in tests/conftest.py):

- ``identity``: one provider for the test session (RS256 key; never rotated, so tests may share it);
- ``rotating_identity``: a provider of the test's own, whose keys the test may rotate.

Both give a :class:`TestIdentity`: ``identity.settings(settings)`` makes a Settings that trusts it for
staff and guardians; ``identity.staff(...)``, ``identity.guardian(...)`` and the faulty tokens
(``expired``, ``not_yet_valid``, ``wrong_audience``, ``wrong_issuer``, ``untrusted``) mint tokens;
``identity.header(token)`` is the NATS header a request carries.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from infra.identity_provider import AUDIENCE, GUARDIAN_ISSUER, STAFF_ISSUER, JwksServer, LocalIssuer, PrivateKey, new_key
from shared.identity import TokenVerifier, verifier_from_settings
from shared.settings import Settings

# Invented test person: individual number 900-999 and a correct check character.
GUARDIAN_HETU = "010190-900P"
OTHER_GUARDIAN_HETU = "020285-915B"


class TestIdentity:
    """A trusted issuer serving its JWKS over real HTTP, and an untrusted key nobody publishes."""

    __test__ = False  # not a test class

    def __init__(self, key_kind: str = "RS256") -> None:
        self.issuer = LocalIssuer.generate(key_kind)
        self.server = JwksServer(self.issuer).start()
        self.untrusted_key: PrivateKey = new_key(key_kind)

    @property
    def jwks_url(self) -> str:
        return self.server.url

    @property
    def jwks_requests(self) -> int:
        """How many times the JWKS has been fetched from this provider."""
        return self.server.requests

    def settings(self, base: Settings, **overrides: Any) -> Settings:
        """``base`` trusting this provider for staff and guardians."""
        update: dict[str, Any] = {
            "oidc_issuer": STAFF_ISSUER,
            "oidc_audience": AUDIENCE,
            "oidc_jwks_url": self.jwks_url,
            "guardian_oidc_issuer": GUARDIAN_ISSUER,
            "guardian_oidc_audience": AUDIENCE,
            "guardian_oidc_jwks_url": self.jwks_url,
            "oidc_jwks_refetch_seconds": 0.0,  # tests rotate keys without waiting
            **overrides,
        }
        return base.model_copy(update=update)

    def verifier(self, **overrides: Any) -> TokenVerifier:
        verifier = verifier_from_settings(self.settings(Settings(), **overrides))
        assert verifier is not None
        return verifier

    @staticmethod
    def header(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    # -- tokens that verify ------------------------------------------------------------------------
    def staff(
        self,
        person_id: str = "pv-sw-1",
        roles: Iterable[str] = ("worker",),
        teams: Iterable[str] = (),
        municipality: str | None = None,
        **kwargs: Any,
    ) -> str:
        return self.issuer.mint_staff(person_id, roles, teams, municipality, **kwargs)

    def worker(self, person_id: str, team: str, municipality: str | None = "Porvoo") -> str:
        return self.staff(person_id, ("worker",), (team,), municipality)

    def social_worker(self, person_id: str, team: str, municipality: str | None = "Porvoo") -> str:
        return self.staff(person_id, ("worker", "social_worker"), (team,), municipality)

    def team_lead(self, person_id: str, team: str, municipality: str | None = "Porvoo") -> str:
        return self.staff(person_id, ("team_lead",), (team,), municipality)

    def statistician(self, person_id: str = "stats-1", municipality: str | None = "Porvoo") -> str:
        return self.staff(person_id, ("statistician",), (), municipality)

    def ops(self, person_id: str = "ops-1") -> str:
        return self.staff(person_id, ("ops",), (), None)

    def guardian(self, henkilotunnus: str = GUARDIAN_HETU, **kwargs: Any) -> str:
        return self.issuer.mint_guardian(henkilotunnus, **kwargs)

    # -- tokens that must be refused ---------------------------------------------------------------
    def expired(self, person_id: str = "pv-sw-1") -> str:
        """Expired ten minutes ago (well past the leeway)."""
        return self.staff(person_id, issued_at=time.time() - 4200, ttl_seconds=3600)

    def not_yet_valid(self, person_id: str = "pv-sw-1") -> str:
        """Valid only from ten minutes from now."""
        return self.staff(person_id, not_before=time.time() + 600)

    def wrong_audience(self, person_id: str = "pv-sw-1") -> str:
        return self.staff(person_id, audience="some-other-system")

    def wrong_issuer(self, person_id: str = "pv-sw-1") -> str:
        return self.staff(person_id, issuer="urn:example:another-idp")

    def untrusted(self, person_id: str = "pv-sw-1", claim_trusted_kid: bool = True) -> str:
        """Signed by a key the services do not trust; by default its header names the trusted key's
        id (a forgery), else the key's own id (a key the provider never published)."""
        kid = self.issuer.kid if claim_trusted_kid else None
        return self.staff(person_id, key=self.untrusted_key, kid=kid)

    def rotate(self, keep_old: bool = True) -> None:
        """The provider signs with a new key from now on (and stops publishing the old one unless ``keep_old``)."""
        self.issuer.rotate(keep_old=keep_old)

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture(scope="session")
def identity() -> Iterator[TestIdentity]:
    provider = TestIdentity()
    yield provider
    provider.stop()


@pytest.fixture
def rotating_identity() -> Iterator[TestIdentity]:
    provider = TestIdentity()
    yield provider
    provider.stop()
