"""The snapshot's JSON form: round trips exactly, and rejects what is not a snapshot with the field's path."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from envcheck.facts.common import Unavailable
from envcheck.facts.framework import ABI_NOT_RECORDED, EXTENSIONS_NOT_RECORDED
from envcheck.facts.toolchain import TOOLCHAIN_NOT_RECORDED
from envcheck.snapshot import SCHEMA, SnapshotFormatError, from_json, to_json
from tests import factories

text = st.text(max_size=30)
maybe_unavailable_int = st.one_of(st.integers(0, 2**62), st.builds(Unavailable, text, st.none() | text))


def test_round_trip_of_a_full_snapshot() -> None:
    snapshot = factories.snapshot()
    assert from_json(to_json(snapshot)) == snapshot


def test_round_trip_keeps_unavailable_sections_and_reasons() -> None:
    snapshot = factories.snapshot(framework=Unavailable("the framework probe timed out after 60 s", "check dmesg"))
    restored = from_json(to_json(snapshot))
    assert restored.framework == Unavailable("the framework probe timed out after 60 s", "check dmesg")


@given(
    free=maybe_unavailable_int,
    shm=maybe_unavailable_int,
    hostname=text,
    limit=st.one_of(st.none(), maybe_unavailable_int),
    flags=st.lists(text, max_size=5).map(tuple),
    quota=st.one_of(st.none(), st.floats(0.1, 512), st.builds(Unavailable, text)),
)
def test_round_trip_of_arbitrary_values(free, shm, hostname, limit, flags, quota) -> None:  # type: ignore[no-untyped-def]
    snapshot = factories.snapshot(
        system=factories.system(hostname=hostname, open_files_limit=limit),
        cpu=factories.cpu(isa_flags=flags, cgroup_quota_cpus=quota),
        storage=factories.storage(shm_total_bytes=shm, locations=(factories.location(free_bytes=free),)),
    )
    assert from_json(to_json(snapshot)) == snapshot


def test_the_json_names_its_schema() -> None:
    assert json.loads(to_json(factories.snapshot()))["schema"] == SCHEMA


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(schema="envcheck.snapshot/99"), "unsupported snapshot schema"),
        (lambda d: d["memory"].update(total_bytes="lots"), "$.memory.total_bytes: expected int, got a string"),
        (lambda d: d["memory"].update(total_bytes=True), "$.memory.total_bytes: expected int, got a boolean"),
        (lambda d: d["cpu"].pop("logical_cores"), "$.cpu.logical_cores: missing"),
        (lambda d: d["storage"].update(locations={}), "$.storage.locations: expected a list"),
        (lambda d: d.update(system=None), "$.system: must not be null"),
    ],
)
def test_a_bad_field_is_named_by_its_path(mutate, message) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(to_json(factories.snapshot()))
    mutate(data)
    with pytest.raises(SnapshotFormatError) as raised:
        from_json(json.dumps(data))
    assert message in str(raised.value)


@pytest.mark.parametrize("text_in", ["", "[]", "{", "null", '"snapshot"', "[" * 100_000])
def test_what_is_not_a_snapshot_is_rejected_cleanly(text_in: str) -> None:
    with pytest.raises(SnapshotFormatError):
        from_json(text_in)


def test_floats_accept_integral_json_numbers() -> None:
    data = json.loads(to_json(factories.snapshot(cpu=factories.cpu(usable_cpus=4.0))))
    data["cpu"]["usable_cpus"] = 4
    assert from_json(json.dumps(data)).cpu == replace(factories.cpu(), usable_cpus=4.0)


def test_snapshots_from_before_the_toolchain_and_extensions_still_load() -> None:
    data = json.loads(to_json(factories.snapshot()))
    del data["toolchain"]
    del data["framework"]["extensions"]
    del data["framework"]["torch"]["cxx11_abi"]
    old = from_json(json.dumps(data))
    assert old.toolchain == TOOLCHAIN_NOT_RECORDED
    assert not isinstance(old.framework, Unavailable)
    assert old.framework.extensions == EXTENSIONS_NOT_RECORDED
    assert old.framework.torch is not None
    assert old.framework.torch.cxx11_abi == ABI_NOT_RECORDED
