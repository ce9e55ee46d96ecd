"""The embedded identity provider of ``make run``: its signing key kept owner-only in the data dir,
tokens for roster people and guardians printed by ``python -m infra.token``, and the runner serving
the JWKS to the services."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import urllib.request
from pathlib import Path

import jwt
import pytest

from infra.identity_provider import AUDIENCE, GUARDIAN_ISSUER, KEY_FILE, STAFF_ISSUER, LocalIssuer
from infra.run import start_identity_provider
from infra.token import authorization_headers, roster_claims
from shared.identity import verifier_from_settings
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_the_signing_key_is_created_once_readable_by_the_owner_only(tmp_path):
    issuer = LocalIssuer.load_or_create(tmp_path)
    key_file = tmp_path / KEY_FILE

    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert LocalIssuer.load_or_create(tmp_path).kid == issuer.kid  # the same key after a restart


def test_loading_the_key_tightens_permissions_someone_loosened(tmp_path):
    LocalIssuer.load_or_create(tmp_path)
    key_file = tmp_path / KEY_FILE
    key_file.chmod(0o644)
    key_file.parent.chmod(0o755)

    LocalIssuer.load_or_create(tmp_path)

    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700


def test_a_roster_professional_is_a_worker_of_their_team_and_municipality():
    close = roster_claims("staff-close-1")
    social = roster_claims("pv-sw-1")

    assert close is not None and close.roles == {"worker"}
    assert close.teams == {"porvoo-family-centre"} and close.municipality == "Porvoo"
    assert social is not None and social.roles == {"worker", "social_worker"}


def test_the_notification_rosters_team_lead_leads_their_team():
    lead = roster_claims("lead-testila")
    duty = roster_claims("duty-testila")

    assert lead is not None and lead.roles == {"team_lead"} and lead.teams == {"testila-family-centre"}
    assert duty is not None and duty.municipality == "Testilä"
    assert roster_claims("nobody-such") is None


def token_command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infra.token", *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def test_the_token_command_prints_a_staff_token_with_the_roster_claims_signed_by_the_data_dirs_key(tmp_path):
    issuer = LocalIssuer.load_or_create(tmp_path)

    done = token_command("staff", "staff-close-1", "--data-dir", str(tmp_path))

    assert done.returncode == 0, done.stderr
    claims = jwt.decode(
        done.stdout.strip(),
        jwt.PyJWK(issuer.jwks()["keys"][0]),
        algorithms=["RS256"],
        audience=AUDIENCE,
        issuer=STAFF_ISSUER,
    )
    assert claims["sub"] == "staff-close-1"
    assert claims["roles"] == ["worker"] and claims["groups"] == ["porvoo-family-centre"] and claims["municipality"] == "Porvoo"
    assert claims["exp"] - claims["iat"] == 3600


def test_the_token_command_overrides_the_roster_and_names_people_in_no_roster(tmp_path):
    done = token_command(
        "staff", "stats-1", "--role", "statistician", "--municipality", "Porvoo", "--ttl", "60", "--data-dir", str(tmp_path)
    )
    refused = token_command("staff", "stats-1", "--data-dir", str(tmp_path))

    claims = jwt.decode(done.stdout.strip(), options={"verify_signature": False})
    assert claims["roles"] == ["statistician"] and claims["groups"] == [] and claims["exp"] - claims["iat"] == 60
    assert refused.returncode == 2 and "--role" in refused.stderr and not refused.stdout


def test_the_token_command_prints_a_guardian_token_only_for_a_valid_henkilotunnus(tmp_path):
    done = token_command("guardian", "010190-900p", "--data-dir", str(tmp_path))
    refused = token_command("guardian", "010190-900A", "--data-dir", str(tmp_path))

    claims = jwt.decode(done.stdout.strip(), options={"verify_signature": False})
    assert claims["iss"] == GUARDIAN_ISSUER and claims["sub"] == "010190-900P"
    assert refused.returncode == 2 and "invalid_checksum" in refused.stderr and "010190" not in refused.stderr


async def test_the_runner_serves_the_data_dirs_keys_and_tells_the_services_to_trust_them(tmp_path):
    env: dict[str, str] = {}
    server = start_identity_provider(Settings(data_dir=tmp_path, http_port_base=0), env)
    assert server is not None
    try:
        with urllib.request.urlopen(env["KOOLLE_OIDC_JWKS_URL"], timeout=5) as response:
            assert json.loads(response.read()) == LocalIssuer.load_or_create(tmp_path).jwks()
        service_settings = Settings(**{k.removeprefix("KOOLLE_").lower(): v for k, v in env.items()})
        verifier = verifier_from_settings(service_settings)
        assert verifier is not None
        staff = authorization_headers("pv-sw-1", tmp_path)
        guardian = authorization_headers("010190-900P", tmp_path, kind="guardian")

        assert (await verifier.verify(staff["Authorization"])).teams == {"porvoo-family-centre"}
        assert (await verifier.verify(guardian["Authorization"])).kind == "guardian"
    finally:
        server.stop()


def test_the_runner_leaves_a_configured_identity_provider_alone(tmp_path):
    env: dict[str, str] = {}

    assert start_identity_provider(Settings(data_dir=tmp_path, oidc_issuer="https://idp.example/realms/x"), env) is None
    assert env == {} and not (tmp_path / KEY_FILE).exists()


@pytest.mark.parametrize("kind", ["RS256", "ES256"])
def test_a_rotated_issuer_publishes_old_and_new_keys_and_signs_with_the_new(kind):
    issuer = LocalIssuer.generate(kind)
    old_kid = issuer.kid

    issuer.rotate(kind)

    assert [k["kid"] for k in issuer.jwks()["keys"]] == [old_kid, issuer.kid]
    assert jwt.get_unverified_header(issuer.mint_staff("pv-sw-1", ["worker"]))["kid"] == issuer.kid != old_kid
