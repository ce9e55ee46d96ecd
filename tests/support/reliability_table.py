"""Print the figures of the last fault-test run (var/reliability/*.json) as a Markdown table for
docs/reliability.md:  python -m tests.support.reliability_table"""

from __future__ import annotations

import json

from tests.support.processes import ROOT


def table() -> str:
    rows = ["| test | when | figures |", "|---|---|---|"]
    for path in sorted((ROOT / "var" / "reliability").glob("*.json")):
        data = json.loads(path.read_text())
        name, at = data.pop("test"), data.pop("at")
        rows.append(f"| `{name}` | {at} | " + ", ".join(f"{k.replace('_', ' ')} **{v}**" for k, v in data.items()) + " |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
