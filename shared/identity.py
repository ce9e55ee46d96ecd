"""Who is asking: the OpenID Connect access token of a request, verified, as a :class:`Principal`.

A staff app sends the signed-in person's access token (a JWT) in the NATS header
``Authorization: Bearer <token>``. :class:`TokenVerifier` checks it with PyJWT (signature, issuer,
audience, expiry, not-before) against the keys the identity provider publishes (its JWKS, fetched
over HTTP(S) without blocking the event loop, cached, and fetched again when a token names a key id
not yet seen, so the provider can rotate keys without a restart).

Two issuers may be trusted: the county's staff identity provider (Entra ID, Keycloak, ...), whose
claims give the person id, roles, teams and municipality (claim names in :class:`Settings`), and a
strong-identification provider for guardians (Suomi.fi-style) whose person-id claim is the
henkilötunnus. docs/identity.md documents the settings for both.

Nothing here logs a token, a claim value or a person id: failures are logged with a reason code.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ipaddress
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlparse

import httpx
import jwt
from jwt.exceptions import (
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAudienceError,
    InvalidIssuerError,
    PyJWKError,
    PyJWTError,
)

from shared.settings import Settings

log = logging.getLogger("koolle.identity")

Reason = Literal["missing", "expired", "invalid", "unknown_key", "not_yet_valid", "wrong_issuer", "wrong_audience", "unavailable"]

# Asymmetric algorithms only: "none" and the HMAC family (a public key used as a shared secret) are
# never accepted, whatever the settings say.
SUPPORTED_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"})
# Each time-based claim must be present: a token that never expires is refused.
REQUIRED_CLAIMS = ("exp", "iss", "aud")


@dataclass(frozen=True)
class Principal:
    """The verified caller of a request.

    ``person_id`` of staff is the configured person-id claim (the roster's professional id);
    of a guardian, the henkilötunnus: personal data, never logged, never put in a subject.
    """

    person_id: str
    kind: Literal["staff", "guardian"]
    roles: frozenset[str]
    teams: frozenset[str]
    municipality: str | None
    token_id: str | None = None  # the token's jti, for audit correlation

    def __repr__(self) -> str:  # a guardian's person id is a henkilötunnus: kept out of reprs and tracebacks
        return f"Principal(kind={self.kind!r}, roles={sorted(self.roles)!r}, teams={sorted(self.teams)!r}, token_id={self.token_id!r})"

    __str__ = __repr__


class Unauthenticated(Exception):
    """The request's token is missing or not acceptable. ``reason`` is a machine code:

    missing, expired, invalid (malformed, bad signature, wrong algorithm, claims unusable),
    unknown_key (signed by a key the issuer does not publish), not_yet_valid, wrong_issuer,
    wrong_audience, or unavailable (the issuer's keys could not be fetched: retry later).
    The message never contains the token or any claim value.
    """

    def __init__(self, reason: Reason) -> None:
        super().__init__(reason)
        self.reason: Reason = reason


def _is_loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _require_secure_url(url: str, what: str) -> None:
    scheme = urlparse(url).scheme
    if scheme == "https" or (scheme == "http" and _is_loopback(url)):
        return
    raise ValueError(f"{what} must be https (http only on loopback)")


def claim(claims: Mapping[str, Any], path: str) -> Any:
    """The claim ``path``: the key itself if present (Suomi.fi's ``urn:oid:1.2.246.21`` has dots),
    else a dotted path into nested objects (Keycloak's ``realm_access.roles``)."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _names(value: Any) -> list[str]:
    """A list claim (or a space-separated string, as ``scope`` is) as names."""
    if value is None:
        return []
    if isinstance(value, str):
        items: list[Any] = value.split()
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise Unauthenticated("invalid")
    if not all(isinstance(item, str) and item for item in items):
        raise Unauthenticated("invalid")
    return items


@dataclass
class JwksCache:
    """One issuer's published keys: fetched over HTTP(S) with httpx (async), cached by key id.

    An unknown key id triggers a refetch at most once per ``refetch_seconds`` (a flood of tokens
    with invented key ids cannot turn into a flood of requests to the provider); a JWKS older than
    ``max_age_seconds`` is refreshed in the background while the cached keys keep serving.
    """

    jwks_url: str
    issuer: str
    timeout_seconds: float = 5.0
    refetch_seconds: float = 10.0
    max_age_seconds: float = 3600.0
    on_change: Callable[[], None] | None = None
    monotonic: Callable[[], float] = time.monotonic
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)  # kid -> the JWK as published
    fetched_at: float | None = None
    fetches: int = 0
    _attempted_at: float | None = None
    _generation: int = 0  # completed fetch attempts
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _background: asyncio.Task[None] | None = None
    _prepared: dict[tuple[str, str], jwt.PyJWK] = field(default_factory=dict)

    async def key(self, kid: str | None, alg: str) -> jwt.PyJWK:
        if self.fetched_at is None:
            await self._refresh(force=True)
        elif self.monotonic() - self.fetched_at > self.max_age_seconds and self._background is None:
            self._background = asyncio.get_running_loop().create_task(self._refresh_in_background())
        jwk = self._find(kid)
        if jwk is None:
            await self._refresh(force=False)  # rotation: the provider may publish a key we have not seen
            jwk = self._find(kid)
        if jwk is None:
            raise Unauthenticated("unavailable" if self.fetched_at is None else "unknown_key")
        published_alg = jwk.get("alg")
        if published_alg is not None and published_alg != alg:
            raise Unauthenticated("invalid")
        cache_key = (str(jwk.get("kid", "")), alg)
        prepared = self._prepared.get(cache_key)
        if prepared is None:
            try:
                prepared = jwt.PyJWK(jwk, algorithm=alg)
            except (PyJWKError, PyJWTError, ValueError, TypeError):
                raise Unauthenticated("invalid") from None
            self._prepared[cache_key] = prepared
        return prepared

    def _find(self, kid: str | None) -> dict[str, Any] | None:
        if kid is not None:
            return self.keys.get(kid)
        # A token without a key id is accepted only from an issuer that publishes a single key.
        return next(iter(self.keys.values())) if len(self.keys) == 1 else None

    async def _refresh_in_background(self) -> None:
        try:
            await self._refresh(force=True)
        finally:
            self._background = None

    async def _refresh(self, force: bool) -> None:
        generation = self._generation
        async with self._lock:
            if self._generation != generation:
                return  # another request fetched the keys while this one waited: one fetch serves all
            now = self.monotonic()
            if not force and self._attempted_at is not None and now - self._attempted_at < self.refetch_seconds:
                return
            self._attempted_at = now
            try:
                keys = await self._fetch()
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("jwks fetch failed for an issuer (%s)", type(exc).__name__)
                return
            finally:
                self._generation += 1
            if keys.keys() != self.keys.keys() or any(keys[k] != self.keys[k] for k in keys):
                self.keys = keys
                self._prepared.clear()
                if self.on_change is not None:
                    self.on_change()
            self.fetched_at = now

    async def _fetch(self) -> dict[str, dict[str, Any]]:
        self.fetches += 1
        async with httpx.AsyncClient(timeout=self.timeout_seconds, follow_redirects=False) as client:
            url = self.jwks_url
            if not url:  # OpenID Connect discovery: the issuer says where its keys are
                discovery = await client.get(self.issuer.rstrip("/") + "/.well-known/openid-configuration")
                discovery.raise_for_status()
                url = str(discovery.json().get("jwks_uri", ""))
                _require_secure_url(url, "jwks_uri")
            response = await client.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            document = response.json()
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError("not a JWKS document")
        keys: dict[str, dict[str, Any]] = {}
        for jwk in document["keys"]:
            if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig" or jwk.get("kty") not in ("RSA", "EC"):
                continue  # encryption keys and symmetric keys never verify a token
            kid = jwk.get("kid")
            keys[str(kid) if kid is not None else _thumbprint(jwk)] = jwk
        return keys


def _thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 thumbprint: a stable name for a published key that has no key id."""
    members = ("e", "kty", "n") if jwk.get("kty") == "RSA" else ("crv", "kty", "x", "y")
    canonical = json.dumps({m: jwk.get(m) for m in members}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


@dataclass(frozen=True)
class Issuer:
    """One trusted issuer and how its claims become a principal."""

    issuer: str
    audience: tuple[str, ...]
    jwks_url: str
    kind: Literal["staff", "guardian"]
    claim_person_id: str = "sub"
    claim_roles: str = "roles"
    claim_teams: str = "groups"
    claim_municipality: str = "municipality"
    role_map: Mapping[str, str] = field(default_factory=dict)
    team_map: Mapping[str, str] = field(default_factory=dict)

    def principal(self, claims: Mapping[str, Any]) -> Principal:
        person_id = claim(claims, self.claim_person_id)
        if not isinstance(person_id, str) or not person_id.strip():
            raise Unauthenticated("invalid")
        jti = claims.get("jti")
        token_id = str(jti) if isinstance(jti, str | int) else None
        if self.kind == "guardian":
            # Strong identification proves who the person is, not their custody: the services match
            # the henkilötunnus to the guardians they hold themselves.
            return Principal(person_id.strip().upper(), "guardian", frozenset({"guardian"}), frozenset(), None, token_id)
        municipality = claim(claims, self.claim_municipality)
        if municipality is not None and not isinstance(municipality, str):
            raise Unauthenticated("invalid")
        # Keycloak's group mapper gives full paths ("/perhekeskus-porvoo") unless told not to: the
        # last part names the team.
        return Principal(
            person_id=person_id.strip(),
            kind="staff",
            roles=frozenset(self.role_map.get(r, r) for r in _names(claim(claims, self.claim_roles))),
            teams=frozenset(self._team(g) for g in _names(claim(claims, self.claim_teams))),
            municipality=municipality or None,
            token_id=token_id,
        )

    def _team(self, group: str) -> str:
        if group in self.team_map:
            return self.team_map[group]
        last = group.rsplit("/", 1)[-1] or group
        return self.team_map.get(last, last)


class TokenVerifier:
    """Verifies ``Authorization: Bearer <token>`` header values into principals.

    A verified token is remembered (bounded, by its exact text) until it expires, so a staff app
    that sends the same token with every request costs one signature check; the memory is cleared
    whenever an issuer's published keys change (a withdrawn key stops working at once).
    """

    def __init__(
        self,
        issuers: list[Issuer],
        algorithms: tuple[str, ...] = ("RS256", "ES256"),
        leeway_seconds: float = 30.0,
        refetch_seconds: float = 10.0,
        max_age_seconds: float = 3600.0,
        timeout_seconds: float = 5.0,
        cache_size: int = 4096,
        wall_clock: Callable[[], float] = time.time,  # the remembered tokens' clock (PyJWT reads time.time)
    ) -> None:
        if not issuers:
            raise ValueError("at least one trusted issuer is needed")
        unsupported = [a for a in algorithms if a not in SUPPORTED_ALGORITHMS]
        if unsupported or not algorithms:
            raise ValueError(f"unsupported token algorithms {unsupported}: only asymmetric ones are accepted")
        for i in issuers:
            if not i.issuer or not i.audience:
                raise ValueError(f"the {i.kind} issuer needs both an issuer and an audience")
            _require_secure_url(i.jwks_url or i.issuer, f"the {i.kind} JWKS URL")
        self.issuers = {i.issuer: i for i in issuers}
        if len(self.issuers) != len(issuers):
            raise ValueError("the staff and guardian issuers must differ")
        self.algorithms = tuple(algorithms)
        self.leeway = leeway_seconds
        self.wall_clock = wall_clock
        self._cache_size = cache_size
        self._verified: OrderedDict[str, tuple[Principal, float, float]] = OrderedDict()
        self.jwks = {
            i.issuer: JwksCache(
                i.jwks_url,
                i.issuer,
                timeout_seconds=timeout_seconds,
                refetch_seconds=refetch_seconds,
                max_age_seconds=max_age_seconds,
                on_change=self._verified.clear,
            )
            for i in issuers
        }

    async def verify(self, authorization: str | None) -> Principal:
        """The principal of an ``Authorization`` header value; raises :class:`Unauthenticated`."""
        token = _bearer(authorization)
        remembered = self._verified.get(token)
        if remembered is not None:
            principal, not_before, expires = remembered
            now = self.wall_clock()
            if now > expires + self.leeway:
                del self._verified[token]
                raise Unauthenticated("expired")
            if now < not_before - self.leeway:
                raise Unauthenticated("not_yet_valid")
            self._verified.move_to_end(token)
            return principal
        principal, not_before, expires = await self._verify(token)
        self._verified[token] = (principal, not_before, expires)
        if len(self._verified) > self._cache_size:
            self._verified.popitem(last=False)
        return principal

    async def _verify(self, token: str) -> tuple[Principal, float, float]:
        header, unverified = _peek(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise Unauthenticated("invalid")
        iss = unverified.get("iss")
        issuer = self.issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise Unauthenticated("wrong_issuer")
        kid = header.get("kid")
        key = await self.jwks[issuer.issuer].key(kid if isinstance(kid, str) else None, alg)
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=list(issuer.audience),
                issuer=issuer.issuer,
                leeway=self.leeway,
                options={"require": list(REQUIRED_CLAIMS), "enforce_minimum_key_length": True},
            )
        except ExpiredSignatureError:
            raise Unauthenticated("expired") from None
        except ImmatureSignatureError:
            raise Unauthenticated("not_yet_valid") from None
        except InvalidAudienceError:
            raise Unauthenticated("wrong_audience") from None
        except InvalidIssuerError:
            raise Unauthenticated("wrong_issuer") from None
        except PyJWTError:
            raise Unauthenticated("invalid") from None
        principal = issuer.principal(claims)
        not_before = claims.get("nbf", 0)
        return principal, float(not_before) if isinstance(not_before, int | float) else 0.0, float(claims["exp"])

    async def prefetch(self) -> None:
        """Fetch every issuer's keys now (at start), so the first request does not wait for them."""
        await asyncio.gather(*(cache._refresh(force=True) for cache in self.jwks.values()))

    async def aclose(self) -> None:
        """Stop background key refreshes (at service stop)."""
        tasks = [c._background for c in self.jwks.values() if c._background is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# Far above any real access token (Entra ID's with many groups stay under 8 KiB): larger is refused unparsed.
MAX_TOKEN_LENGTH = 16384


def _peek(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a token, unverified: only to choose the issuer and the key; PyJWT
    then verifies everything (parsing it once with PyJWT's strict, slower decoder instead of three times)."""
    try:
        segments = token.split(".")
        if len(segments) != 3:
            raise ValueError
        header, claims = (json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))) for s in segments[:2])
    except (ValueError, TypeError, UnicodeDecodeError):
        raise Unauthenticated("invalid") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise Unauthenticated("invalid")
    return header, claims


def _bearer(authorization: str | None) -> str:
    if authorization is None or not authorization.strip():
        raise Unauthenticated("missing")
    if len(authorization) > MAX_TOKEN_LENGTH:
        raise Unauthenticated("invalid")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Unauthenticated("invalid")
    return token


def _audiences(value: str) -> tuple[str, ...]:
    return tuple(a.strip() for a in value.split(",") if a.strip())


def verifier_from_settings(settings: Settings) -> TokenVerifier | None:
    """The verifier for the issuers configured in ``settings``, or None when none is configured."""
    issuers = []
    if settings.oidc_issuer:
        issuers.append(
            Issuer(
                issuer=settings.oidc_issuer,
                audience=_audiences(settings.oidc_audience),
                jwks_url=settings.oidc_jwks_url,
                kind="staff",
                claim_person_id=settings.oidc_claim_person_id,
                claim_roles=settings.oidc_claim_roles,
                claim_teams=settings.oidc_claim_teams,
                claim_municipality=settings.oidc_claim_municipality,
                role_map=dict(settings.oidc_role_map),
                team_map=dict(settings.oidc_team_map),
            )
        )
    if settings.guardian_oidc_issuer:
        issuers.append(
            Issuer(
                issuer=settings.guardian_oidc_issuer,
                audience=_audiences(settings.guardian_oidc_audience),
                jwks_url=settings.guardian_oidc_jwks_url,
                kind="guardian",
                claim_person_id=settings.guardian_oidc_claim_person_id,
            )
        )
    if not issuers:
        return None
    return TokenVerifier(
        issuers,
        algorithms=tuple(settings.oidc_algorithms),
        leeway_seconds=settings.oidc_leeway_seconds,
        refetch_seconds=settings.oidc_jwks_refetch_seconds,
        max_age_seconds=settings.oidc_jwks_max_age_seconds,
        timeout_seconds=settings.oidc_jwks_timeout_seconds,
    )


def authorization_header(headers: Mapping[str, str] | None) -> str | None:
    """The ``Authorization`` value of a NATS message's headers (header names are case-insensitive)."""
    if not headers:
        return None
    for name, value in headers.items():
        if name.lower() == "authorization":
            return value
    return None
