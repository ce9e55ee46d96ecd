"""Print an access token from the embedded identity provider, for a roster person or a guardian.

    .venv/bin/python -m infra.token staff staff-close-1
    .venv/bin/python -m infra.token staff stats-1 --role statistician --municipality Porvoo
    .venv/bin/python -m infra.token guardian 010190-900P
    .venv/bin/python -m infra.token staff staff-1 --team porvoo-family-centre --ttl 600

A staff person's roles, teams and municipality come from the rosters (services/meetings/roster.json,
services/notifications/staff.json); ``--role``, ``--team`` and ``--municipality`` replace them (and
name people in no roster: statisticians, ops). The key is read from the data dir
(KOOLLE_DATA_DIR, default var/), created there if missing: the running services trust it
(docs/identity.md). The token alone is printed, so ``TOKEN=$(... -m infra.token ...)`` works.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from infra.identity_provider import DEFAULT_TTL_SECONDS, LocalIssuer
from shared.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
MEETINGS_ROSTER = ROOT / "services" / "meetings" / "roster.json"
NOTIFICATIONS_STAFF = ROOT / "services" / "notifications" / "staff.json"


@dataclass(frozen=True)
class StaffClaims:
    roles: frozenset[str]
    teams: frozenset[str]
    municipality: str | None


def _access_roles(professional_roles: list[str]) -> frozenset[str]:
    """A roster's professional roles as access roles: every professional is a worker; a social
    worker also decides on guardians' access; a team lead reaches their team's cases."""
    if "team_lead" in professional_roles:
        return frozenset({"team_lead"})
    roles = {"worker"}
    if "social_worker" in professional_roles:
        roles.add("social_worker")
    return frozenset(roles)


def roster_claims(
    person_id: str, meetings_roster: Path = MEETINGS_ROSTER, staff: Path = NOTIFICATIONS_STAFF
) -> StaffClaims | None:
    """The access claims of a person in the invented rosters, or None when neither lists them."""
    if meetings_roster.exists():
        for p in json.loads(meetings_roster.read_text()).get("professionals", []):
            if p.get("professional_id") == person_id:
                team = p.get("team")
                return StaffClaims(_access_roles(p.get("roles", [])), frozenset({team} if team else ()), p.get("municipality"))
    if staff.exists():
        data = json.loads(staff.read_text())
        person = data.get("staff", {}).get(person_id)
        if person is not None:
            teams = {
                team
                for team, t in data.get("teams", {}).items()
                if person_id == t.get("lead") or person_id in t.get("social_workers", []) or person_id in t.get("members", [])
            }
            # staff.json has no municipality per person: the one whose duty they hold, if any.
            duty = [m for m, d in data.get("on_duty", {}).items() if m != "*" and person_id in d.values()]
            return StaffClaims(_access_roles([person.get("role", "")]), frozenset(teams), duty[0] if len(duty) == 1 else None)
    return None


def staff_token(
    issuer: LocalIssuer,
    person_id: str,
    roles: list[str] | None = None,
    teams: list[str] | None = None,
    municipality: str | None = None,
    ttl_seconds: float = DEFAULT_TTL_SECONDS,
) -> str:
    """A token for ``person_id`` with the roster's claims, each replaced where given."""
    known = roster_claims(person_id)
    if known is None and not roles:
        raise LookupError(f"{person_id!r} is in no roster: give --role (and --team / --municipality)")
    return issuer.mint_staff(
        person_id,
        roles=roles or (known.roles if known else ()),
        teams=teams if teams is not None else (known.teams if known else ()),
        municipality=municipality if municipality is not None else (known.municipality if known else None),
        ttl_seconds=ttl_seconds,
    )


def authorization_headers(
    person_id: str, data_dir: Path | None = None, kind: str = "staff", **overrides: object
) -> dict[str, str]:
    """NATS headers for a request made as ``person_id`` (a roster person, or a guardian's
    henkilötunnus with ``kind="guardian"``), signed with the data dir's local key (demo, tools)."""
    issuer = LocalIssuer.load_or_create(data_dir if data_dir is not None else Settings().data_dir)
    if kind == "guardian":
        token = issuer.mint_guardian(person_id)
    else:
        token = staff_token(issuer, person_id, **overrides)  # type: ignore[arg-type]
    return {"Authorization": f"Bearer {token}"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.token", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="kind", required=True)
    staff = sub.add_parser("staff", help="a staff person's token (roles, teams, municipality from the rosters)")
    staff.add_argument("person_id")
    staff.add_argument("--role", action="append", dest="roles", help="access role (repeatable), replaces the roster's")
    staff.add_argument("--team", action="append", dest="teams", help="team id (repeatable), replaces the roster's")
    staff.add_argument("--municipality", help="replaces the roster's municipality")
    guardian = sub.add_parser("guardian", help="a guardian's token after strong identification")
    guardian.add_argument("henkilotunnus")
    for p in (staff, guardian):
        p.add_argument("--ttl", type=float, default=DEFAULT_TTL_SECONDS, help="seconds the token is valid (default 3600)")
        p.add_argument("--data-dir", type=Path, help="where the signing key is (default KOOLLE_DATA_DIR or var/)")
    args = parser.parse_args(argv)
    issuer = LocalIssuer.load_or_create(args.data_dir or Settings().data_dir)
    if args.kind == "guardian":
        from services.referral.hetu import InvalidHetu, parse_hetu

        try:
            hetu = parse_hetu(args.henkilotunnus).value
        except InvalidHetu as exc:
            print(f"not a valid henkilötunnus ({exc.code})", file=sys.stderr)
            return 2
        print(issuer.mint_guardian(hetu, ttl_seconds=args.ttl))
        return 0
    try:
        print(staff_token(issuer, args.person_id, args.roles, args.teams, args.municipality, args.ttl))
    except LookupError as exc:
        print(exc.args[0], file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
