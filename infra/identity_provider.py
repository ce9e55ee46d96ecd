"""The embedded identity provider of the local default (``make run``): a signing key kept in the data
dir, its JWKS served over HTTP on loopback, and tokens minted for roster people and guardians.

It stands in for the county's staff identity provider (issuer :data:`STAFF_ISSUER`) and for
strong identification of guardians (issuer :data:`GUARDIAN_ISSUER`, Suomi.fi-style: the subject is
the henkilötunnus). In production both are real providers and this module is not used
(docs/identity.md).

    key = LocalIssuer.load_or_create(Path("var"))
    token = key.mint_staff("staff-close-1", roles={"worker"}, teams={"porvoo-family-centre"}, municipality="Porvoo")
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

STAFF_ISSUER = "urn:koolle:local-idp:staff"
GUARDIAN_ISSUER = "urn:koolle:local-idp:guardian"
AUDIENCE = "koolle"
KEY_FILE = Path("identity") / "signing-key.pem"
JWKS_PATH = "/jwks.json"
# Claim names the local provider writes: the defaults of Settings (sub, roles, groups, municipality).
DEFAULT_TTL_SECONDS = 3600

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(key: PrivateKey) -> dict[str, Any]:
    """The public half of ``key`` as a JWK, with its RFC 7638 thumbprint as the key id."""
    if isinstance(key, rsa.RSAPrivateKey):
        jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
        members, alg = ("e", "kty", "n"), "RS256"
    else:
        jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
        members, alg = ("crv", "kty", "x", "y"), "ES256"
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    jwk.update(kid=_b64(hashlib.sha256(canonical.encode()).digest()), use="sig", alg=alg)
    return jwk


def new_key(kind: str = "RS256") -> PrivateKey:
    if kind == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_private(path: Path, key: PrivateKey) -> None:
    """The private key, readable by the owner only, in a directory only the owner can enter."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    os.replace(tmp, path)  # atomic: a concurrent reader sees no half-written key


@dataclass
class LocalIssuer:
    """Signing keys (the newest signs; all are published, so tokens in flight survive a rotation)."""

    keys: list[PrivateKey]
    staff_issuer: str = STAFF_ISSUER
    guardian_issuer: str = GUARDIAN_ISSUER
    audience: str = AUDIENCE
    path: Path | None = field(default=None)

    @classmethod
    def generate(cls, kind: str = "RS256", **kwargs: Any) -> LocalIssuer:
        """A fresh issuer held in memory only (tests)."""
        return cls([new_key(kind)], **kwargs)

    @classmethod
    def load_or_create(cls, data_dir: Path) -> LocalIssuer:
        """The data dir's signing key, created on first use (file 0600 in a 0700 directory)."""
        path = Path(data_dir) / KEY_FILE
        if not path.exists():
            _write_private(path, new_key())
        else:
            path.parent.chmod(0o700)
            path.chmod(0o600)
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise ValueError(f"{path}: not an RSA or EC private key")
        return cls([loaded], path=path)

    @property
    def signing_key(self) -> PrivateKey:
        return self.keys[-1]

    @property
    def kid(self) -> str:
        return str(public_jwk(self.signing_key)["kid"])

    def rotate(self, kind: str = "RS256", keep_old: bool = True) -> None:
        """Sign with a new key from now on; the old ones stay published unless ``keep_old`` is false."""
        self.keys = [*self.keys, new_key(kind)] if keep_old else [new_key(kind)]
        if self.path is not None:
            _write_private(self.path, self.signing_key)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(k) for k in self.keys]}

    def settings_env(self, jwks_url: str) -> dict[str, str]:
        """The KOOLLE_* variables that make a service trust this issuer for staff and guardians."""
        return {
            "KOOLLE_OIDC_ISSUER": self.staff_issuer,
            "KOOLLE_OIDC_AUDIENCE": self.audience,
            "KOOLLE_OIDC_JWKS_URL": jwks_url,
            "KOOLLE_GUARDIAN_OIDC_ISSUER": self.guardian_issuer,
            "KOOLLE_GUARDIAN_OIDC_AUDIENCE": self.audience,
            "KOOLLE_GUARDIAN_OIDC_JWKS_URL": jwks_url,
        }

    def mint(
        self,
        subject: str,
        claims: Mapping[str, Any] | None = None,
        *,
        issuer: str | None = None,
        audience: str | None = None,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        not_before: float | None = None,
        issued_at: float | None = None,
        key: PrivateKey | None = None,
        kid: str | None = None,
    ) -> str:
        """A signed JWT. Defaults: the staff issuer and the audience, valid from now for ``ttl_seconds``.
        ``key`` signs with another key (e.g. one nobody trusts), ``kid`` overrides the header's key id."""
        signing = key or self.signing_key
        now = time.time() if issued_at is None else issued_at
        payload: dict[str, Any] = {
            "iss": issuer or self.staff_issuer,
            "aud": audience or self.audience,
            "sub": subject,
            "iat": int(now),
            "nbf": int(now if not_before is None else not_before),
            "exp": int(now + ttl_seconds),
            "jti": str(uuid.uuid4()),
            **(claims or {}),
        }
        alg = "RS256" if isinstance(signing, rsa.RSAPrivateKey) else "ES256"
        header = {"kid": kid if kid is not None else str(public_jwk(signing)["kid"]), "typ": "JWT"}
        return jwt.encode(payload, signing, algorithm=alg, headers=header)

    def mint_staff(
        self,
        person_id: str,
        roles: Iterable[str],
        teams: Iterable[str] = (),
        municipality: str | None = None,
        **kwargs: Any,
    ) -> str:
        """A staff access token with the claim names of the default settings."""
        claims: dict[str, Any] = {"roles": sorted(roles), "groups": sorted(teams)}
        if municipality:
            claims["municipality"] = municipality
        return self.mint(person_id, claims, issuer=kwargs.pop("issuer", self.staff_issuer), **kwargs)

    def mint_guardian(self, henkilotunnus: str, **kwargs: Any) -> str:
        """A guardian's token after strong identification: the subject is the henkilötunnus."""
        return self.mint(henkilotunnus, {"acr": "http://ftn.ficora.fi/2017/loa3"}, issuer=self.guardian_issuer, **kwargs)


class JwksServer:
    """Serves a LocalIssuer's JWKS at ``GET /jwks.json`` over HTTP on loopback, from a daemon thread
    (the standard library's server: nothing of it runs on the services' event loops)."""

    def __init__(self, issuer: LocalIssuer, host: str = "127.0.0.1", port: int = 0) -> None:
        self.issuer = issuer
        self.requests = 0  # JWKS fetches served (tests check that rotation refetches are rate-limited)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                if self.path.split("?", 1)[0] != JWKS_PATH:
                    self.send_error(404)
                    return
                server.requests += 1
                body = json.dumps(server.issuer.jwks()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "max-age=300")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # quiet: the runner's output is for events
                pass

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}{JWKS_PATH}"

    def start(self) -> JwksServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="koolle-jwks", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)
