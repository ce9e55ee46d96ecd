"""Joint-meeting statistics as CSV on stdout, asked from the running meetings service.

python -m services.meetings.statistics_csv [--municipality Porvoo] [--from 2026-01] [--to 2026-12] > stats.csv
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from shared.client import call, connect
from shared.settings import Settings


async def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--municipality")
    ap.add_argument("--from", dest="from_month")
    ap.add_argument("--to", dest="to_month")
    ap.add_argument("--requested-by", default="statistics-cli")
    a = ap.parse_args(argv)
    nc = await connect(Settings())
    try:
        q = {
            "requested_by": a.requested_by,
            "format": "csv",
            "municipality": a.municipality,
            "from_month": a.from_month,
            "to_month": a.to_month,
        }
        reply = await call(nc, "query.meetings.statistics.v1", {k: v for k, v in q.items() if v is not None})
    finally:
        await nc.drain()
    if not reply.ok:
        print(", ".join(f"{e.field}:{e.code}" for e in reply.errors), file=sys.stderr)
        return 1
    sys.stdout.write(reply.data["csv"] if reply.data else "")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(sys.argv[1:])))
