"""Who is asking: access tokens verified against a real identity provider's JWKS served over HTTP on
loopback (signature, issuer, audience, expiry, not-before), claims mapped to a principal, key
rotation without restart, and refusals with a reason code that never carries personal data."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from infra.identity_provider import AUDIENCE, GUARDIAN_ISSUER, STAFF_ISSUER, JwksServer, LocalIssuer
from infra.natsserver import free_port
from shared.identity import Unauthenticated, verifier_from_settings
from shared.settings import Settings
from tests.support.identity import GUARDIAN_HETU, TestIdentity

pytestmark = [pytest.mark.integration]


async def reason(verifier, authorization):  # type: ignore[no-untyped-def]
    with pytest.raises(Unauthenticated) as refused:
        await verifier.verify(authorization)
    return refused.value.reason


async def test_a_workers_token_becomes_a_staff_principal_with_the_roles_teams_and_municipality_it_claims(identity):
    verifier = identity.verifier()
    token = identity.staff("pv-sw-1", ("worker", "social_worker"), ("porvoo-family-centre",), "Porvoo")

    principal = await verifier.verify(f"Bearer {token}")

    assert principal.kind == "staff"
    assert principal.person_id == "pv-sw-1"
    assert principal.roles == {"worker", "social_worker"}
    assert principal.teams == {"porvoo-family-centre"}
    assert principal.municipality == "Porvoo"
    assert principal.token_id == jwt.decode(token, options={"verify_signature": False})["jti"]


async def test_a_guardians_token_from_the_second_issuer_becomes_a_guardian_whose_person_id_is_the_henkilotunnus(identity):
    principal = await identity.verifier().verify(f"Bearer {identity.guardian(GUARDIAN_HETU)}")

    assert principal.kind == "guardian"
    assert principal.person_id == GUARDIAN_HETU
    assert principal.roles == {"guardian"}
    assert principal.teams == frozenset() and principal.municipality is None


async def test_a_guardian_issuer_token_never_carries_staff_roles_even_when_it_claims_them(identity):
    token = identity.issuer.mint(GUARDIAN_HETU, {"roles": ["team_lead"], "groups": ["x"]}, issuer=GUARDIAN_ISSUER)

    principal = await identity.verifier().verify(f"Bearer {token}")

    assert principal.kind == "guardian" and principal.roles == {"guardian"} and principal.teams == frozenset()


async def test_a_staff_issuer_token_is_never_a_guardian_even_when_it_claims_the_role(identity):
    principal = await identity.verifier().verify(f"Bearer {identity.staff('x-1', ('guardian',))}")

    assert principal.kind == "staff"


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda idp: None, "missing"),
        (lambda idp: "", "missing"),
        (lambda idp: "Bearer ", "invalid"),
        (lambda idp: f"Basic {base64.b64encode(b'user:pw').decode()}", "invalid"),
        (lambda idp: "Bearer not-a-jwt", "invalid"),
        (lambda idp: f"Bearer {idp.expired()}", "expired"),
        (lambda idp: f"Bearer {idp.not_yet_valid()}", "not_yet_valid"),
        (lambda idp: f"Bearer {idp.wrong_audience()}", "wrong_audience"),
        (lambda idp: f"Bearer {idp.wrong_issuer()}", "wrong_issuer"),
        (lambda idp: f"Bearer {idp.untrusted()}", "invalid"),
        (lambda idp: f"Bearer {idp.untrusted(claim_trusted_kid=False)}", "unknown_key"),
        (lambda idp: f"Bearer {idp.guardian(audience='some-other-system')}", "wrong_audience"),
        (lambda idp: f"Bearer {'x' * 20000}", "invalid"),
    ],
    ids=[
        "no header",
        "empty header",
        "bearer without token",
        "basic auth",
        "not a jwt",
        "expired",
        "not yet valid",
        "wrong audience",
        "wrong issuer",
        "forged with the trusted key id",
        "signed by an unpublished key",
        "guardian token for another audience",
        "oversized",
    ],
)
async def test_a_token_that_is_missing_expired_forged_or_meant_for_others_is_refused_with_its_reason(identity, make, expected):
    assert await reason(identity.verifier(), make(identity)) == expected


async def test_a_token_signed_with_alg_none_is_refused(identity):
    claims = {"iss": STAFF_ISSUER, "aud": AUDIENCE, "sub": "pv-sw-1", "exp": int(time.time()) + 600, "roles": ["ops"]}
    unsigned = jwt.encode(claims, None, algorithm="none")

    assert await reason(identity.verifier(), f"Bearer {unsigned}") == "invalid"


async def test_a_token_signed_with_hmac_using_the_published_public_key_as_the_secret_is_refused(identity):
    # The classic algorithm confusion: the attacker knows the public key and uses it as an HS256 secret.
    public_pem = identity.issuer.signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = {"iss": STAFF_ISSUER, "aud": AUDIENCE, "sub": "pv-sw-1", "exp": int(time.time()) + 600, "roles": ["ops"]}
    # PyJWT itself refuses a PEM key as an HMAC secret, so the forgery is put together by hand.
    segments = [
        base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=")
        for part in ({"alg": "HS256", "typ": "JWT", "kid": identity.issuer.kid}, claims)
    ]
    signing_input = b".".join(segments)
    signature = base64.urlsafe_b64encode(hmac.new(public_pem, signing_input, hashlib.sha256).digest()).rstrip(b"=")
    forged = (signing_input + b"." + signature).decode()

    assert await reason(identity.verifier(), f"Bearer {forged}") == "invalid"


async def test_a_token_whose_algorithm_differs_from_its_published_key_is_refused(identity):
    token = identity.staff("pv-sw-1")
    header, payload, signature = token.split(".")
    relabelled = base64.urlsafe_b64encode(json.dumps({"alg": "ES256", "kid": identity.issuer.kid}).encode()).rstrip(b"=")

    assert await reason(identity.verifier(), f"Bearer {relabelled.decode()}.{payload}.{signature}") == "invalid"


async def test_a_token_that_never_expires_is_refused(identity):
    token = jwt.encode(
        {"iss": STAFF_ISSUER, "aud": AUDIENCE, "sub": "pv-sw-1", "roles": ["worker"]},
        identity.issuer.signing_key,
        algorithm="RS256",
        headers={"kid": identity.issuer.kid},
    )
    assert await reason(identity.verifier(), f"Bearer {token}") == "invalid"


async def test_a_token_without_the_person_id_claim_or_with_roles_that_are_not_names_is_refused(identity):
    no_person = identity.issuer.mint("", {"roles": ["worker"]})
    odd_roles = identity.issuer.mint("pv-sw-1", {"roles": {"worker": True}})

    assert await reason(identity.verifier(), f"Bearer {no_person}") == "invalid"
    assert await reason(identity.verifier(), f"Bearer {odd_roles}") == "invalid"


async def test_a_clock_skew_within_the_leeway_is_tolerated_and_beyond_it_refused(identity):
    just_expired = identity.staff("pv-sw-1", issued_at=time.time() - 610, ttl_seconds=600)

    assert (await identity.verifier(oidc_leeway_seconds=30).verify(f"Bearer {just_expired}")).person_id == "pv-sw-1"
    assert await reason(identity.verifier(oidc_leeway_seconds=0), f"Bearer {just_expired}") == "expired"


async def test_an_es256_identity_provider_is_verified_the_same_way():
    idp = TestIdentity("ES256")
    try:
        verifier = idp.verifier()
        assert (await verifier.verify(f"Bearer {idp.worker('pv-fw-1', 'porvoo-family-centre')}")).roles == {"worker"}
        assert await reason(verifier, f"Bearer {idp.untrusted()}") == "invalid"
        assert await reason(verifier, f"Bearer {idp.expired()}") == "expired"
    finally:
        idp.stop()


async def test_a_rotated_key_is_fetched_on_its_first_token_without_a_restart(rotating_identity):
    idp = rotating_identity
    verifier = idp.verifier()
    before = idp.staff("pv-sw-1")
    await verifier.verify(f"Bearer {before}")
    fetches = idp.jwks_requests

    idp.rotate(keep_old=True)
    after = idp.staff("pv-sw-1")

    assert (await verifier.verify(f"Bearer {after}")).person_id == "pv-sw-1"
    assert idp.jwks_requests == fetches + 1
    assert (await verifier.verify(f"Bearer {before}")).person_id == "pv-sw-1"  # tokens in flight survive


async def test_a_key_the_provider_withdrew_stops_verifying_once_the_new_keys_are_fetched(rotating_identity):
    idp = rotating_identity
    verifier = idp.verifier()
    old = idp.staff("pv-sw-1")
    await verifier.verify(f"Bearer {old}")  # remembered as verified

    idp.rotate(keep_old=False)
    await verifier.verify(f"Bearer {idp.staff('pv-sw-1')}")  # the new key's first token refetches the JWKS

    assert await reason(verifier, f"Bearer {old}") == "unknown_key"


async def test_unknown_key_ids_refetch_the_jwks_at_most_once_per_interval(rotating_identity):
    idp = rotating_identity
    verifier = idp.verifier(oidc_jwks_refetch_seconds=60)
    await verifier.verify(f"Bearer {idp.staff('pv-sw-1')}")
    fetches = idp.jwks_requests

    for _ in range(20):  # a flood of tokens naming keys nobody published
        assert await reason(verifier, f"Bearer {idp.untrusted(claim_trusted_kid=False)}") == "unknown_key"
        idp.untrusted_key = __import__("infra.identity_provider", fromlist=["new_key"]).new_key("ES256")

    assert idp.jwks_requests - fetches <= 1


async def test_concurrent_first_requests_share_one_jwks_fetch(identity):
    verifier = identity.verifier(guardian_oidc_issuer="")  # the staff issuer only
    before = identity.jwks_requests
    tokens = [identity.staff(f"pv-sw-{i}") for i in range(20)]

    principals = await asyncio.gather(*(verifier.verify(f"Bearer {t}") for t in tokens))

    assert [p.person_id for p in principals] == [f"pv-sw-{i}" for i in range(20)]
    assert identity.jwks_requests - before == 1


async def test_an_unreachable_identity_provider_makes_tokens_unverifiable_not_accepted(identity):
    verifier = verifier_from_settings(
        identity.settings(Settings(), oidc_jwks_url=f"http://127.0.0.1:{free_port()}/jwks.json", oidc_jwks_timeout_seconds=1.0)
    )
    assert verifier is not None

    assert await reason(verifier, f"Bearer {identity.staff('pv-sw-1')}") == "unavailable"


class _SlowJwks(BaseHTTPRequestHandler):
    jwks: bytes = b""

    def do_GET(self) -> None:  # noqa: N802
        time.sleep(0.4)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.jwks)))
        self.end_headers()
        self.wfile.write(self.jwks)

    def log_message(self, format, *args):  # type: ignore[no-untyped-def]
        pass


async def test_fetching_the_jwks_does_not_block_the_event_loop(identity):
    _SlowJwks.jwks = json.dumps(identity.issuer.jwks()).encode()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _SlowJwks)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        verifier = identity.verifier(oidc_jwks_url=f"http://127.0.0.1:{httpd.server_address[1]}/jwks.json")
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticker = asyncio.create_task(tick())
        principal = await verifier.verify(f"Bearer {identity.staff('pv-sw-1')}")
        ticker.cancel()

        assert principal.person_id == "pv-sw-1"
        assert ticks >= 20  # the loop kept running through the 0.4 s fetch
    finally:
        httpd.shutdown()
        httpd.server_close()


async def test_a_remembered_token_is_still_refused_once_it_expires(identity):
    verifier = identity.verifier()
    token = identity.staff("pv-sw-1", ttl_seconds=300)
    await verifier.verify(f"Bearer {token}")

    verifier.wall_clock = lambda: time.time() + 3600

    assert await reason(verifier, f"Bearer {token}") == "expired"


def keycloak_claims() -> dict[str, object]:
    return {
        "preferred_username": "pv-sw-1",
        "realm_access": {"roles": ["koolle-worker", "offline_access", "uma_authorization"]},
        "groups": ["/perhekeskus/porvoo-family-centre"],
        "municipality": "Porvoo",
        "typ": "Bearer",
    }


async def test_keycloak_claims_map_through_dotted_paths_and_full_group_paths(identity):
    verifier = identity.verifier(
        oidc_claim_person_id="preferred_username",
        oidc_claim_roles="realm_access.roles",
        oidc_role_map={"koolle-worker": "worker"},
    )
    token = identity.issuer.mint("f3a9c1d2-0000-4000-8000-000000000001", keycloak_claims())

    principal = await verifier.verify(f"Bearer {token}")

    assert principal.person_id == "pv-sw-1"
    assert "worker" in principal.roles
    assert principal.teams == {"porvoo-family-centre"}


async def test_entra_id_claims_map_app_roles_and_group_object_ids_to_teams(identity):
    group = "5b1f2c3d-1111-4222-8333-944455556666"
    verifier = identity.verifier(
        oidc_claim_person_id="oid",
        oidc_claim_municipality="ctry_municipality",
        oidc_role_map={"Koolle.TeamLead": "team_lead"},
        oidc_team_map={group: "porvoo-family-centre"},
    )
    claims = {
        "oid": "00000000-aaaa-4bbb-8ccc-000000000042",
        "roles": ["Koolle.TeamLead"],
        "groups": [group],
        "ctry_municipality": "Porvoo",
    }
    token = identity.issuer.mint("AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ", claims)

    principal = await verifier.verify(f"Bearer {token}")

    assert principal.person_id == "00000000-aaaa-4bbb-8ccc-000000000042"
    assert principal.roles == {"team_lead"}
    assert principal.teams == {"porvoo-family-centre"}
    assert principal.municipality == "Porvoo"


async def test_a_suomi_fi_style_claim_name_with_dots_is_read_as_one_claim(identity):
    verifier = identity.verifier(guardian_oidc_claim_person_id="urn:oid:1.2.246.21")
    token = identity.issuer.mint("pairwise-subject-1", {"urn:oid:1.2.246.21": GUARDIAN_HETU}, issuer=GUARDIAN_ISSUER)

    principal = await verifier.verify(f"Bearer {token}")

    assert principal.kind == "guardian" and principal.person_id == GUARDIAN_HETU


async def test_refusals_and_principals_carry_no_personal_data_in_messages_reprs_or_logs(identity, caplog):
    caplog.set_level(logging.DEBUG)
    verifier = identity.verifier()
    guardian = await verifier.verify(f"Bearer {identity.guardian(GUARDIAN_HETU)}")
    with pytest.raises(Unauthenticated) as refused:
        await verifier.verify(f"Bearer {identity.guardian(GUARDIAN_HETU, audience='elsewhere')}")

    assert GUARDIAN_HETU not in repr(guardian) and GUARDIAN_HETU not in str(guardian)
    assert str(refused.value) == "wrong_audience"
    assert GUARDIAN_HETU not in caplog.text


def test_settings_that_would_weaken_verification_are_refused_at_start(identity):
    with pytest.raises(ValueError, match="asymmetric"):
        verifier_from_settings(identity.settings(Settings(), oidc_algorithms=("RS256", "HS256")))
    with pytest.raises(ValueError, match="asymmetric"):
        verifier_from_settings(identity.settings(Settings(), oidc_algorithms=("none",)))
    with pytest.raises(ValueError, match="https"):
        verifier_from_settings(identity.settings(Settings(), oidc_jwks_url="http://idp.example/keys"))
    with pytest.raises(ValueError, match="audience"):
        verifier_from_settings(identity.settings(Settings(), oidc_audience=""))
    assert verifier_from_settings(Settings()) is None


async def test_issuers_and_claims_come_from_koolle_environment_variables(identity, monkeypatch):
    for name, value in {
        "KOOLLE_OIDC_ISSUER": STAFF_ISSUER,
        "KOOLLE_OIDC_AUDIENCE": AUDIENCE,
        "KOOLLE_OIDC_JWKS_URL": identity.jwks_url,
        "KOOLLE_OIDC_CLAIM_ROLES": "realm_access.roles",
        "KOOLLE_OIDC_ROLE_MAP": '{"koolle-worker": "worker"}',
        "KOOLLE_OIDC_ALGORITHMS": '["RS256"]',
    }.items():
        monkeypatch.setenv(name, value)
    verifier = verifier_from_settings(Settings())
    assert verifier is not None

    principal = await verifier.verify(f"Bearer {identity.issuer.mint('pv-sw-1', keycloak_claims())}")

    assert "worker" in principal.roles
    assert await reason(verifier, f"Bearer {identity.guardian()}") == "wrong_issuer"  # no guardian issuer configured


async def test_a_service_built_with_an_identity_provider_in_its_settings_has_a_verifier(identity, settings):
    from services.plans.bootstrap import bootstrap

    service = bootstrap(identity.settings(settings))
    try:
        assert service.verifier is not None
        assert (await service.verifier.verify(f"Bearer {identity.worker('pv-sw-1', 't-1')}")).teams == {"t-1"}
    finally:
        await service.db.dispose()


def test_the_jwks_server_publishes_public_keys_only():
    issuer = LocalIssuer.generate()
    server = JwksServer(issuer).start()
    try:
        import urllib.request

        with urllib.request.urlopen(server.url, timeout=5) as response:
            jwks = json.loads(response.read())
    finally:
        server.stop()

    (key,) = jwks["keys"]
    assert key["kid"] == issuer.kid and key["use"] == "sig" and key["alg"] == "RS256"
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)


async def test_an_old_jwks_is_refreshed_in_the_background_while_the_cached_keys_keep_serving(rotating_identity):
    idp = rotating_identity
    verifier = idp.verifier(oidc_jwks_max_age_seconds=0.0, guardian_oidc_issuer="")
    await verifier.verify(f"Bearer {idp.staff('pv-sw-1')}")
    fetches = idp.jwks_requests

    principal = await verifier.verify(f"Bearer {idp.staff('pv-sw-2')}")  # answered from the cache at once

    assert principal.person_id == "pv-sw-2"
    await asyncio.wait_for(_until(lambda: idp.jwks_requests > fetches), 5)
    await verifier.aclose()


async def _until(predicate) -> None:  # type: ignore[no-untyped-def]
    while not predicate():
        await asyncio.sleep(0.01)
