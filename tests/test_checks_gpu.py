"""GPU setup and health checks on real nvidia-smi XML and NVML recordings, and scenarios derived from them.

The table pins every non-ok finding each fixture gives, so a new false alarm on a healthy machine
(T4, RTX 4090, RTX A5000, H100 idle GPUs) fails here, and so does a missed fault on a broken one.
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import cache
from pathlib import Path

import pytest

from envcheck.checks.registry import CheckInput, all_checks, run_checks
from envcheck.facts.common import Unavailable
from envcheck.facts.gpu import NO_MAX_OPERATING_TEMP as NOT_READ
from envcheck.facts.gpu import GpuFacts, GpuProcess
from envcheck.finding import Finding, Severity
from envcheck.importers.nvidia_smi_text import parse_nvidia_smi_text
from envcheck.knowledge import load_knowledge
from envcheck.probes.context import ProbeContext
from envcheck.probes.nvidia_smi import load_nvidia_smi_xml
from envcheck.probes.nvml import probe_gpu
from envcheck.probes.nvml.replay import Recording, load_recording
from tests import factories
from tests.shared_fixtures import shared_fixture

OWN = Path(__file__).resolve().parent / "fixtures"
GPU_CHECKS = {registered.id for registered in all_checks() if registered.area == "gpu"} - {"gpu.present"}

# Every non-ok (id, severity, GPU index) per fixture; None for machine-wide findings and skips.
EXPECTED: dict[str, set[tuple[str, str, int | None]]] = {
    "t4-driver515.105.01": {
        ("gpu.persistence_mode", "info", 0),
        ("gpu.other_processes", "warn", 0),  # a python process holds 1005 MiB (Xorg's 22 MiB is graphics)
        ("gpu.pcie_link", "warn", 0),  # x8 of x16: width does not drop for power saving
    },
    "rtx4090-driver535.86.05": {("gpu.temperature", "skip", None)},  # gen 1 of 3 at idle: not a finding
    "rtx-a5000x2-driver590.44.01": {("gpu.other_processes", "warn", 0), ("gpu.other_processes", "warn", 1)},
    "a100-sxm4-40gb-mig-driver510.47.03": {
        ("gpu.persistence_mode", "info", 0),
        ("gpu.mig", "info", 0),
        ("gpu.memory_repair", "skip", None),
    },
    "k80x4-driver430.26-ecc-dbe-retired": {
        *{("gpu.persistence_mode", "info", index) for index in range(4)},
        ("gpu.other_processes", "warn", 0),
        ("gpu.other_processes", "warn", 1),
        ("gpu.ecc_uncorrected", "warn", 0),  # lifetime only: volatile counts are 0
        ("gpu.ecc_uncorrected", "warn", 1),
    },
    "gt730-driver384.111-unsupported": {
        (check_id, "skip", None)
        # the driver lists the GT 730 (Kepler, no first branch recorded): gpu.driver_too_old passes
        for check_id in GPU_CHECKS
        - {"gpu.persistence_mode", "gpu.mig", "gpu.mixed_models", "gpu.driver_too_old", "gpu.lost"}
    },
    "a100-sxm4-80gb-driver535.129.03-ecc-remap-failure": {
        ("gpu.ecc_uncorrected", "fail", 0),
        ("gpu.memory_repair", "fail", 0),
    },
    "h100-sxm5-80gb-x8-driver550.54.15-foreign-processes": {
        ("gpu.other_processes", "warn", 3),
        ("gpu.other_processes", "warn", 5),
    },
    "l40s-x2-driver550.90.07-pcie-gen3x8-throttling": {
        ("gpu.other_processes", "warn", 0),
        ("gpu.other_processes", "warn", 1),
        ("gpu.pcie_link", "warn", 0),
        ("gpu.clock_throttle", "warn", 1),
        ("gpu.temperature", "warn", 1),
    },
    "v100-sxm2-16gb-x2-driver418.87.01-dbe-pending-retirement": {
        ("gpu.other_processes", "warn", 0),
        ("gpu.other_processes", "warn", 1),
        ("gpu.ecc_uncorrected", "fail", 1),
        ("gpu.memory_repair", "fail", 1),
        ("gpu.clock_throttle", "warn", 1),
    },
}
HEALTHY = ("t4-driver515.105.01", "rtx4090-driver535.86.05", "rtx-a5000x2-driver590.44.01")


@cache
def xml(name: str) -> GpuFacts:
    own = OWN / "nvidia-smi" / f"{name}.xml"
    return load_nvidia_smi_xml(own if own.exists() else shared_fixture(f"nvidia-smi/{name}.xml"))


def recording(name: str) -> Recording:
    return load_recording(OWN / "nvml" / f"{name}.json")


def nvml(replay: Recording) -> GpuFacts:
    return probe_gpu(ProbeContext(), backend=replay.backend())


def gpu_findings(facts: GpuFacts | Unavailable) -> list[Finding]:
    # with the knowledge base, as doctor runs them: gpu.driver_too_old judges each GPU's first driver branch
    given = CheckInput(factories.snapshot(gpu=facts, framework=Unavailable("not probed")), knowledge=load_knowledge())
    return [f for f in run_checks(given, only_areas=("gpu",)) if f.id != "gpu.present"]


def summary(findings: list[Finding]) -> set[tuple[str, str, int | None]]:
    rows = set()
    for finding in findings:
        if finding.severity is Severity.OK:
            continue
        named = re.match(r"GPUs? (\d+(?:, \d+)*)", finding.title)  # "GPU 0 (...)" or "GPUs 0, 1, 2 (...)"
        indices = [int(index) for index in named.group(1).split(", ")] if named else [None]
        rows.update((finding.id, finding.severity.value, index) for index in indices)
    return rows


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_fixture_gives_exactly_the_expected_findings_from_xml_and_nvml(name: str) -> None:
    assert summary(gpu_findings(xml(name))) == EXPECTED[name]
    assert summary(gpu_findings(nvml(recording(name)))) == EXPECTED[name]


@pytest.mark.parametrize("name", HEALTHY)
def test_healthy_machines_raise_no_failure(name: str) -> None:
    snapshot = factories.snapshot(gpu=xml(name))
    assert [f for f in run_checks(CheckInput(snapshot)) if f.severity is Severity.FAIL] == []


def test_findings_name_the_gpu_and_carry_the_numbers() -> None:
    findings = {
        (f.id, f.title.split(":")[0]): f for f in gpu_findings(xml("l40s-x2-driver550.90.07-pcie-gen3x8-throttling"))
    }
    link = findings["gpu.pcie_link", "GPU 0 (NVIDIA L40S)"]
    assert "gen 3 x8" in link.title and "gen 4 x16" in link.title and "100% busy" in link.title
    throttle = findings["gpu.clock_throttle", "GPU 1 (NVIDIA L40S)"]
    assert "hw_thermal_slowdown" in throttle.title and "sw_power_cap" not in throttle.title
    assert "96 °C" in findings["gpu.temperature", "GPU 1 (NVIDIA L40S)"].title
    (remap,) = [
        f for f in gpu_findings(xml("a100-sxm4-80gb-driver535.129.03-ecc-remap-failure")) if f.id == "gpu.memory_repair"
    ]
    assert "8 rows" in remap.title and remap.fix is not None and "RMA" in remap.fix
    (pending,) = [
        f
        for f in gpu_findings(xml("v100-sxm2-16gb-x2-driver418.87.01-dbe-pending-retirement"))
        if f.id == "gpu.memory_repair"
    ]
    assert pending.fix is not None and "nvidia-smi -r -i 1" in pending.fix


def test_other_processes_lists_names_pids_and_memory() -> None:
    (busy,) = [
        f
        for f in gpu_findings(xml("h100-sxm5-80gb-x8-driver550.54.15-foreign-processes"))
        if f.id == "gpu.other_processes" and f.title.startswith("GPU 5")
    ]
    assert "2 process(es)" in busy.title
    assert "pid 2871544" in busy.detail and "pid 3302117" in busy.detail and "/usr/bin/python3" in busy.detail


def test_pcie_generation_below_max_is_a_finding_only_under_load() -> None:
    idle = recording("rtx4090-driver535.86.05")
    assert "gpu.pcie_link" not in {row[0] for row in summary(gpu_findings(nvml(idle)))}
    busy = idle.with_value("device[0].utilization_rates", [45, 10])
    facts = nvml(busy)
    assert facts.gpus[0].utilization_gpu_percent == 45
    assert ("gpu.pcie_link", "warn", 0) in summary(gpu_findings(facts))
    narrowed = replace(
        xml("rtx4090-driver535.86.05"), gpus=(replace(xml("rtx4090-driver535.86.05").gpus[0], pcie_width=8),)
    )
    assert ("gpu.pcie_link", "warn", 0) in summary(gpu_findings(narrowed))


def test_ecc_volatile_fails_and_aggregate_only_warns() -> None:
    healthy = xml("h100-sxm5-80gb-x8-driver550.54.15-foreign-processes")
    gpu = healthy.gpus[2]
    volatile = replace(
        gpu.ecc, volatile=replace(gpu.ecc.volatile, uncorrected=3), aggregate=replace(gpu.ecc.aggregate, uncorrected=3)
    )
    past = replace(gpu.ecc, aggregate=replace(gpu.ecc.aggregate, uncorrected=5))
    assert ("gpu.ecc_uncorrected", "fail", 2) in summary(gpu_findings(with_gpu(healthy, replace(gpu, ecc=volatile))))
    assert ("gpu.ecc_uncorrected", "warn", 2) in summary(gpu_findings(with_gpu(healthy, replace(gpu, ecc=past))))


def test_power_limit_below_default_warns_with_the_restore_command() -> None:
    base = xml("t4-driver515.105.01")
    lowered = with_gpu(base, replace(base.gpus[0], power_limit_watts=50.0))
    (finding,) = [f for f in gpu_findings(lowered) if f.id == "gpu.power_limit"]
    assert finding.severity is Severity.WARN and "50 W" in finding.title and "70 W" in finding.title
    assert finding.fix == "sudo nvidia-smi -i 0 -pl 70"
    assert {f.severity for f in gpu_findings(base) if f.id == "gpu.power_limit"} == {Severity.OK}


def test_power_cap_and_idle_reasons_are_not_throttling() -> None:
    base = xml("h100-sxm5-80gb-x8-driver550.54.15-foreign-processes")
    capped = with_gpu(base, replace(base.gpus[0], clock_event_reasons=("gpu_idle", "sw_power_cap")))
    assert {f.severity for f in gpu_findings(capped) if f.id == "gpu.clock_throttle"} == {Severity.OK}
    braked = with_gpu(base, replace(base.gpus[0], clock_event_reasons=("hw_power_brake_slowdown",)))
    assert ("gpu.clock_throttle", "warn", 0) in summary(gpu_findings(braked))


def test_temperature_margin() -> None:
    base = xml("l40s-x2-driver550.90.07-pcie-gen3x8-throttling")  # slowdown at 95 °C, max operating at 90 °C
    assert (base.gpus[0].temperature_slowdown_c, base.gpus[0].temperature_max_operating_c) == (95, 90)
    assert ("gpu.temperature", "warn", 0) in summary(
        gpu_findings(with_gpu(base, replace(base.gpus[0], temperature_c=90)))
    )
    assert ("gpu.temperature", "warn", 0) not in summary(  # GPU 1 of this machine is at 96 °C
        gpu_findings(with_gpu(base, replace(base.gpus[0], temperature_c=89)))
    )


def test_the_maximum_operating_temperature_is_a_limit_of_its_own() -> None:
    path = OWN / "nvidia-smi-q" / "t4-driver515.105.01.txt"
    base = parse_nvidia_smi_text(path.read_text(), "nvidia-smi-q:t4")  # slowdown at 93 °C, max operating at 85 °C
    assert (base.gpus[0].temperature_slowdown_c, base.gpus[0].temperature_max_operating_c) == (93, 85)
    (finding,) = [
        f for f in gpu_findings(with_gpu(base, replace(base.gpus[0], temperature_c=85))) if f.id == "gpu.temperature"
    ]
    assert finding.severity is Severity.WARN and "maximum operating temperature of 85 °C" in finding.title
    assert finding.evidence[-1] == "gpu.gpus[0].temperature_max_operating_c" and "93 °C" in (finding.detail or "")
    assert "gpu.temperature" not in {
        r[0] for r in summary(gpu_findings(with_gpu(base, replace(base.gpus[0], temperature_c=84))))
    }
    # a source without the reading (NVML today, collect_env) is judged on the slowdown threshold alone
    unread = replace(base.gpus[0], temperature_c=85, temperature_max_operating_c=NOT_READ)
    assert "gpu.temperature" not in {r[0] for r in summary(gpu_findings(with_gpu(base, unread)))}


def test_compute_modes_and_mig_without_instances() -> None:
    base = xml("t4-driver515.105.01")
    for mode in ("Prohibited", "Exclusive_Process"):
        (finding,) = [
            f
            for f in gpu_findings(with_gpu(base, replace(base.gpus[0], compute_mode=mode)))
            if f.id == "gpu.compute_mode"
        ]
        assert (
            finding.severity is Severity.WARN
            and mode in finding.title
            and finding.fix == "sudo nvidia-smi -i 0 -c DEFAULT"
        )
    mig = xml("a100-sxm4-40gb-mig-driver510.47.03")
    (info,) = [f for f in gpu_findings(mig) if f.id == "gpu.mig"]
    assert "CUDA_VISIBLE_DEVICES=MIG-" in info.detail and "2 MIG device(s)" in info.title
    empty = with_gpu(mig, replace(mig.gpus[0], mig_devices=()))
    assert ("gpu.mig", "warn", 0) in summary(gpu_findings(empty))


def test_mixed_models_warn() -> None:
    h100 = xml("h100-sxm5-80gb-x8-driver550.54.15-foreign-processes")
    mixed = with_gpu(h100, replace(h100.gpus[7], name="NVIDIA A100-SXM4-80GB"))
    (finding,) = [f for f in gpu_findings(mixed) if f.id == "gpu.mixed_models"]
    assert finding.severity is Severity.WARN and "GPU 7" in finding.title
    assert finding.fix == "Train on one model only, e.g. CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6"
    assert {f.severity for f in gpu_findings(h100) if f.id == "gpu.mixed_models"} == {Severity.OK}


def test_graphics_only_processes_are_not_flagged() -> None:
    base = xml("t4-driver515.105.01")
    xorg = GpuProcess(pid=675, name="/usr/lib/xorg/Xorg", used_memory_bytes=23068672, type="G", gpu_instance_id=None)
    desktop = with_gpu(base, replace(base.gpus[0], processes=(xorg,)))
    assert {f.severity for f in gpu_findings(desktop) if f.id == "gpu.other_processes"} == {Severity.OK}


def test_a_lost_gpu_and_missing_fields_skip_with_reasons_never_alarm() -> None:
    base = recording("h100-sxm5-80gb-x8-driver550.54.15-foreign-processes")
    unsupported = nvml(base.with_error("device[*].*", "NOT_SUPPORTED"))
    for finding in gpu_findings(unsupported):
        assert finding.severity in (Severity.OK, Severity.SKIP), finding
    for finding in gpu_findings(Unavailable("the GPU probe crashed")):
        assert finding.severity is Severity.SKIP and finding.detail == "the GPU probe crashed"
    for finding in gpu_findings(factories.gpu()):
        assert finding.severity is Severity.SKIP and "no NVIDIA GPU" in finding.detail


def with_gpu(facts: GpuFacts, gpu: object) -> GpuFacts:
    return replace(facts, gpus=tuple(gpu if g.index == gpu.index else g for g in facts.gpus))  # type: ignore[attr-defined]


def test_persistence_mode_off_is_one_note_for_all_the_gpus_it_is_off_on() -> None:
    k80 = xml("k80x4-driver430.26-ecc-dbe-retired")
    (every,) = [f for f in gpu_findings(k80) if f.id == "gpu.persistence_mode"]
    assert every.title == "GPUs 0, 1, 2, 3 (Tesla K80): persistence mode is off"
    assert every.fix is not None and every.fix.startswith("sudo nvidia-smi -pm 1 ")  # no -i: all GPUs
    some = replace(k80, gpus=tuple(replace(g, is_persistence_mode=g.index in (1, 3)) for g in k80.gpus))  # type: ignore[attr-defined]
    (two,) = [f for f in gpu_findings(some) if f.id == "gpu.persistence_mode"]
    assert two.title.startswith("GPUs 0, 2 (Tesla K80)")
    assert two.fix is not None and two.fix.startswith("for i in 0 2; do sudo nvidia-smi -i $i -pm 1; done")
