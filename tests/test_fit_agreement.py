"""`doctor --profile` and `recommend --here` share one judgement of "fits" (envcheck/advise/fit.py): on every
fixture machine and every shipped profile they agree, and both count memory other processes hold."""

from __future__ import annotations

import json
from dataclasses import replace
from functools import cache
from pathlib import Path

import pytest

from envcheck.advise.here import recommend_here
from envcheck.advise.workload_spec import spec_from_profile
from envcheck.checks.registry import CheckInput, run_checks
from envcheck.facts.common import Unavailable
from envcheck.finding import Severity
from envcheck.knowledge import Knowledge, load_knowledge, load_workload
from envcheck.probes.nvidia_smi import load_nvidia_smi_xml
from envcheck.snapshot import Snapshot
from tests import factories
from tests.shared_fixtures import shared_fixture, shared_glob
from tests.test_checks_workload import envcheck as envcheck_cli

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PROFILES = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "profiles" / "workloads").glob("*.toml"))
GPU_CHECKS = ("workload.gpu_memory", "workload.total_gpu_memory", "workload.dtypes", "workload.compute_capability")
MACHINES = [
    *[pytest.param(p, id=p.stem) for p in sorted((FIXTURES / "nvidia-smi").glob("*.xml"))],
    *[pytest.param(p, id=p.stem) for p in sorted((FIXTURES / "nvml").glob("*.json"))],
    *shared_glob("nvidia-smi", "*.xml"),
]


@cache
def knowledge() -> Knowledge:
    return load_knowledge()


def machine(path: Path) -> Snapshot:
    facts = load_nvidia_smi_xml(path) if path.suffix == ".xml" else factories.nvml_gpu(path.stem)
    return factories.snapshot(gpu=facts)


@pytest.mark.parametrize("path", MACHINES)
def test_doctor_and_here_agree_on_every_fixture_machine(path: Path) -> None:
    snapshot = machine(path)
    for name in PROFILES:
        profile = load_workload(name)
        findings = run_checks(CheckInput(snapshot, knowledge=knowledge(), workload=profile))
        severities = {f.id: f.severity for f in findings if f.id in GPU_CHECKS}
        here = recommend_here(spec_from_profile(profile), snapshot, knowledge())
        if here.as_given is None:  # no GPU whose memory is known: neither command judges the memory
            assert severities["workload.gpu_memory"] in (Severity.SKIP, Severity.FAIL), f"{path.stem} / {name}"
            continue
        doctor_fails = Severity.FAIL in severities.values()
        fits = here.as_given.fits
        assert doctor_fails is not fits, f"{path.stem} / {name}: doctor fails={doctor_fails}, here fits={fits}"


def test_k80_box_gives_one_answer_from_both_commands() -> None:
    """The issue's case: 4 x K80 (cc 3.7, 576 MiB held by a python process on each) and llama-7b-lora (bf16)."""
    xml = shared_fixture("nvidia-smi/k80x4-driver430.26-ecc-dbe-retired.xml")
    doctor = envcheck_cli("doctor", "--from", str(xml), "--profile", "llama-7b-lora", "--only", "workload")
    assert doctor.returncode == 1 and "bf16 needs compute capability 8.0+" in doctor.stdout
    here = envcheck_cli("recommend", "--workload", "llama-7b-lora", "--from", str(xml), "--top", "1", "--json")
    verdict = json.loads(here.stdout)["here"]
    assert verdict["fits"] is False and verdict["fits_as_given"] is False
    assert "compute capability 8.0" in verdict["reason"]
    assert verdict["used_by_other_processes_bytes"] == 576 * 2**20


def test_memory_other_processes_hold_is_not_free() -> None:
    # each 48 GB L40S of this box has 40 GB held by another process: LoRA of a 7B model (16.3 GB) no longer fits
    snapshot = machine(FIXTURES / "nvidia-smi" / "l40s-x2-driver550.90.07-pcie-gen3x8-throttling.xml")
    spec = spec_from_profile(load_workload("llama-7b-lora"))
    busy = recommend_here(spec, snapshot, knowledge())
    assert busy.as_given is not None and not busy.as_given.fits and busy.used_bytes == 39_950_745_600
    gpu = snapshot.gpu
    assert not isinstance(gpu, Unavailable)
    idle = replace(gpu, gpus=tuple(replace(g, processes=()) for g in gpu.gpus))
    free = recommend_here(spec, replace(snapshot, gpu=idle), knowledge())
    assert free.as_given is not None and free.as_given.fits and free.settings == "as given"


@pytest.mark.parametrize(
    ("precision", "need"), [("bf16", (8, 0)), ("fp16", (7, 0)), ("fp32", (7, 0)), ("int4", (7, 5))]
)
def test_an_adhoc_job_needs_the_capability_its_precision_needs(precision: str, need: tuple[int, int]) -> None:
    from envcheck.advise.fit import Seat, judge_fit, required_compute_capability
    from envcheck.advise.workload_spec import resolve_spec, with_options

    task = "infer" if precision == "int4" else None
    spec = with_options(resolve_spec(None, "1B", None, None), precision=precision, task=task)
    assert required_compute_capability(spec) == need
    # an idle 32 GB V100 (7.0): a 1B model fits its memory, so only the capability decides
    verdict = judge_fit(spec, (Seat(0, "Tesla V100-SXM2-32GB", 32 * 10**9, 0, (7, 0)),))
    assert verdict.need_compute_capability == need
    assert verdict.fits is (need <= (7, 0)), verdict.reason
    if need > (7, 0):
        assert f"needs compute capability {need[0]}.{need[1]}+" in (verdict.reason or "")


def test_catalog_and_purchases_leave_out_gpus_without_bf16_for_an_adhoc_bf16_job() -> None:
    from tests.test_recommend_cli import recommend_json

    bf16 = recommend_json("--params", "1B", "--top", "500", "--buy")
    fp16 = recommend_json("--params", "1B", "--precision", "fp16", "--top", "500", "--buy")
    old = {"V100", "T4"}
    assert not old & {o["gpu"] for o in bf16["options"]}
    assert old & {o["gpu"] for o in fp16["options"]}
