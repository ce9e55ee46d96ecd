"""The catalogue's validators are built at first use; a service builds its own contracts (what it
consumes, answers and emits) at start-up, so no request or event waits for one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROBE = """
import sys
from shared.contracts import AgreePlan, ReferralReceived, build
from services.referral.bootstrap import bootstrap

svc = bootstrap()
assert not ReferralReceived.__pydantic_complete__, "built at import"
build(svc.contracts())
own = svc.contracts()
assert ReferralReceived in own and all(m.__pydantic_complete__ for m in own), [m for m in own if not m.__pydantic_complete__]
assert not AgreePlan.__pydantic_complete__, "another service's request was built"
print("ok")
"""


def test_a_service_builds_its_own_contracts_and_no_other_service_s(tmp_path: Path) -> None:
    env = dict(os.environ, KOOLLE_DATA_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, env=env)
    assert out.stdout.strip() == "ok", out.stderr[-2000:]


def test_a_deferred_contract_validates_at_its_first_use() -> None:
    from shared.contracts import FieldError

    assert FieldError(field="$", code="missing").model_dump() == {"field": "$", "code": "missing", "message": {}}
