"""JSON output: the snapshot alone (`info --json`) or wrapped with findings (`doctor --json`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from envcheck.codec import encode
from envcheck.finding import Finding
from envcheck.render.summary import count_line
from envcheck.snapshot import Snapshot, snapshot_to_dict, to_json

DOCTOR_SCHEMA = "envcheck.doctor/1"


def render_info_json(snapshot: Snapshot) -> str:
    return to_json(snapshot)


def doctor_to_dict(snapshot: Snapshot, findings: Sequence[Finding], exit_code: int) -> dict[str, Any]:
    return {
        "schema": DOCTOR_SCHEMA,
        "exit_code": exit_code,
        "summary": count_line(findings),
        "findings": [encode(finding) | {"severity": finding.severity.value} for finding in findings],
        "snapshot": snapshot_to_dict(snapshot),
    }


def render_doctor_json(snapshot: Snapshot, findings: Sequence[Finding], exit_code: int) -> str:
    return json.dumps(doctor_to_dict(snapshot, findings, exit_code), indent=2, allow_nan=False)
