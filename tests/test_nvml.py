"""The NVML probe over recordings derived from real machines, the replay and recording backends, and scenarios."""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import json
import re
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from envcheck.codec import decode, encode
from envcheck.facts.common import Unavailable
from envcheck.facts.gpu import Gpu, GpuFacts, GpuProcess, MigDevice
from envcheck.facts.gpu_health import LINK_NVLINK, LINK_PCIE_SWITCH, RemappedRows, RetiredPages
from envcheck.probes.context import HostRoots, ProbeContext
from envcheck.probes.nvidia_smi import load_nvidia_smi_xml
from envcheck.probes.nvml import probe_gpu, record_nvml
from envcheck.probes.nvml.backend import NvmlError
from envcheck.probes.nvml.device import LOST
from envcheck.probes.nvml.replay import Recording, RecordingFormatError, UnrecordedCall, load_recording

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "nvml"
RECORDINGS = sorted(FIXTURES.glob("*.json"))
GIB = 1024**3
MIB = 1024**2
NOT_SUPPORTED = Unavailable("not supported")
H100 = "h100-sxm5-80gb-x8-driver550.54.15-foreign-processes"


@functools.cache
def converter() -> ModuleType:
    """The fixture converter, a script beside the fixtures (not a package module)."""
    spec = importlib.util.spec_from_file_location("convert_nvidia_smi", FIXTURES / "convert_nvidia_smi.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


def recording(name: str) -> Recording:
    return load_recording(FIXTURES / f"{name}.json")


def probe(source: str | Recording) -> GpuFacts:
    replay = recording(source) if isinstance(source, str) else source
    return probe_gpu(ProbeContext(), replay.backend())


def unavailables(value: Any, path: str = "$") -> list[tuple[str, Unavailable]]:
    """Every Unavailable in a fact tree, with its path."""
    if isinstance(value, Unavailable):
        return [(path, value)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [
            item for f in dataclasses.fields(value) for item in unavailables(getattr(value, f.name), f"{path}.{f.name}")
        ]
    if isinstance(value, tuple):
        return [item for i, element in enumerate(value) for item in unavailables(element, f"{path}[{i}]")]
    return []


def test_there_is_a_recording_per_machine() -> None:
    assert len(RECORDINGS) == 10


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda path: path.stem)
def test_every_recording_probes_round_trips_and_explains_every_gap(path: Path) -> None:
    facts = probe_gpu(ProbeContext(), load_recording(path).backend())
    assert facts.source == "nvml" and facts.gpus and facts.no_gpu_reason is None
    assert facts.gpu_count == len(facts.gpus)
    assert decode(GpuFacts, encode(facts)) == facts
    for where, value in unavailables(facts):
        assert value.reason, where


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda path: path.stem)
def test_every_recording_is_what_the_converter_derives(path: Path) -> None:
    assert path.read_text(encoding="utf-8") == converter().convert(path.stem, source_xml(path.stem))


def source_xml(machine: str) -> Path:
    """The nvidia-smi XML a recording was converted from; skips the test where it is absent (a plain clone)."""
    source = Path(converter().SOURCES[machine])
    if not source.exists():
        pytest.skip(f"needs {source.name}, which the recording was converted from: not in a plain clone")
    return source


def key_facts(gpu: Gpu) -> tuple[object, ...]:
    """The fields the issue names as the ones both sources must agree on; any Unavailable compares equal."""
    values = (gpu.name, gpu.uuid, gpu.pci_bus_id, gpu.memory_total_bytes, gpu.memory_used_bytes, gpu.pcie_generation,
              gpu.pcie_generation_max, gpu.pcie_width, gpu.pcie_width_max, gpu.ecc, gpu.retired_pages,
              gpu.remapped_rows, gpu.clock_event_reasons, gpu.power_limit_watts, gpu.temperature_c,
              gpu.processes)  # fmt: skip
    values = (
        *values[:-1],
        tuple(sorted(gpu.processes, key=lambda p: p.pid)) if isinstance(gpu.processes, tuple) else gpu.processes,
    )
    return tuple("unavailable" if isinstance(value, Unavailable) else value for value in values)


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda path: path.stem)
def test_nvml_and_nvidia_smi_agree_on_the_same_machine(path: Path) -> None:
    xml = load_nvidia_smi_xml(source_xml(path.stem))
    nvml = probe_gpu(ProbeContext(), load_recording(path).backend())
    assert (nvml.driver_version, nvml.gpu_count) == (xml.driver_version, xml.gpu_count)
    for from_nvml, from_xml in zip(nvml.gpus, xml.gpus, strict=True):
        ecc_x, ecc_n = encode(from_xml.ecc), encode(from_nvml.ecc)
        assert json.dumps(ecc_n).count("unavailable") == json.dumps(ecc_x).count("unavailable")
        assert key_facts(from_nvml)[:9] == key_facts(from_xml)[:9]
        assert key_facts(from_nvml)[10:] == key_facts(from_xml)[10:]


def test_t4_healthy_datacenter_gpu() -> None:
    facts = probe("t4-driver515.105.01")
    assert (facts.driver_version, facts.cuda_driver_version, facts.nvml_version) == (
        "515.105.01",
        "11.7",
        "11.515.105.01",
    )
    (gpu,) = facts.gpus
    assert (gpu.name, gpu.brand, gpu.architecture, gpu.compute_capability) == ("Tesla T4", "NVIDIA", "Turing", "7.5")
    assert gpu.memory_total_bytes == 15360 * MIB
    assert gpu.remapped_rows == NOT_SUPPORTED and gpu.nvlinks == NOT_SUPPORTED
    assert facts.topology == ()


def test_h100_x8_nvlink_node_topology_and_foreign_processes() -> None:
    facts = probe(H100)
    assert facts.gpu_count == 8 and facts.driver_version == "550.54.15" and facts.cuda_driver_version == "12.4"
    assert {gpu.name for gpu in facts.gpus} == {"NVIDIA H100 80GB HBM3"}
    assert all(gpu.architecture == "Hopper" and gpu.compute_capability == "9.0" for gpu in facts.gpus)
    first = facts.gpus[0]
    assert isinstance(first.nvlinks, tuple) and len(first.nvlinks) == 18
    assert all(link.is_active and link.version == 4 for link in first.nvlinks)
    assert isinstance(facts.topology, tuple) and len(facts.topology) == 28  # every pair, through the NVSwitches
    assert {(link.link, link.nvlink_count) for link in facts.topology} == {(LINK_NVLINK, 18)}
    busy = [(gpu.index, process) for gpu in facts.gpus if isinstance(gpu.processes, tuple) for process in gpu.processes]
    assert busy and all(isinstance(process, GpuProcess) for _, process in busy)
    assert all(isinstance(process.used_memory_bytes, int) for _, process in busy)


def test_rtx4090_consumer_card() -> None:
    (gpu,) = probe("rtx4090-driver535.86.05").gpus
    assert (gpu.name, gpu.brand, gpu.architecture) == ("NVIDIA GeForce RTX 4090", "GeForce", "Ada Lovelace")
    assert gpu.ecc.is_enabled == NOT_SUPPORTED or gpu.ecc.is_enabled is False
    assert gpu.is_mig_enabled == NOT_SUPPORTED and gpu.mig_devices == NOT_SUPPORTED


def test_a100_mig_devices() -> None:
    (gpu,) = probe("a100-sxm4-40gb-mig-driver510.47.03").gpus
    assert gpu.is_mig_enabled is True
    assert isinstance(gpu.mig_devices, tuple) and len(gpu.mig_devices) == 2
    assert all(isinstance(device, MigDevice) and device.multiprocessor_count == 42 for device in gpu.mig_devices)
    assert {device.slice_count for device in gpu.mig_devices} == {3}


def test_ecc_pending_retirement_and_row_remap_failure() -> None:
    k80 = probe("k80x4-driver430.26-ecc-dbe-retired").gpus[0]
    assert k80.retired_pages == RetiredPages(1, 1, False)
    assert (k80.ecc.aggregate.corrected, k80.ecc.aggregate.uncorrected) == (7, 7)
    v100 = probe("v100-sxm2-16gb-x2-driver418.87.01-dbe-pending-retirement").gpus
    assert any(isinstance(gpu.retired_pages, RetiredPages) and gpu.retired_pages.is_pending is True for gpu in v100)
    (a100,) = probe("a100-sxm4-80gb-driver535.129.03-ecc-remap-failure").gpus
    assert isinstance(a100.remapped_rows, RemappedRows) and a100.remapped_rows.has_failure is True
    assert a100.retired_pages == NOT_SUPPORTED


def test_l40s_pcie_below_max_and_throttling() -> None:
    facts = probe("l40s-x2-driver550.90.07-pcie-gen3x8-throttling")
    slow = [
        gpu
        for gpu in facts.gpus
        if gpu.pcie_generation != gpu.pcie_generation_max or gpu.pcie_width != gpu.pcie_width_max
    ]
    assert slow
    reasons = {
        name for gpu in facts.gpus if isinstance(gpu.clock_event_reasons, tuple) for name in gpu.clock_event_reasons
    }
    assert {"sw_power_cap", "sw_thermal_slowdown"} & reasons
    assert isinstance(facts.topology, tuple) and facts.topology[0].link == LINK_PCIE_SWITCH


def test_old_drivers_lack_nvml_calls_and_say_so() -> None:
    facts = probe("gt730-driver384.111-unsupported")
    (gpu,) = facts.gpus
    assert isinstance(facts.cuda_driver_version, Unavailable) and "too old" in facts.cuda_driver_version.reason
    assert isinstance(gpu.architecture, Unavailable) and gpu.architecture.fix == "upgrade the NVIDIA driver"
    assert "nvml:architecture" in facts.missing_fields
    assert probe("k80x4-driver430.26-ecc-dbe-retired").nvml_version == "10.430.26"


def test_scenario_not_supported_and_no_permission_cost_one_field() -> None:
    base = recording("l40s-x2-driver550.90.07-pcie-gen3x8-throttling")
    facts = probe(base.with_error("power_limit[1]", "NOT_SUPPORTED").with_error("device[0].serial", "NO_PERMISSION"))
    assert facts.gpus[1].power_limit_watts == NOT_SUPPORTED
    assert isinstance(facts.gpus[0].power_limit_watts, float)
    serial = facts.gpus[0].serial
    assert isinstance(serial, Unavailable) and serial.reason == "no permission" and serial.fix


def test_scenario_gpu_lost_affects_only_that_gpu() -> None:
    replay = recording(H100).with_error("device[3].*", "GPU_IS_LOST").backend()
    facts = probe_gpu(ProbeContext(), replay)
    lost = facts.gpus[3]
    assert lost.name == LOST and lost.memory_total_bytes == LOST and LOST.fix and "xid" in LOST.fix
    assert sum(key.startswith("device[3].") for key in replay.asked) == 1  # nothing more is asked of a lost GPU
    assert facts.gpus[2].name == "NVIDIA H100 80GB HBM3"
    assert isinstance(facts.topology, tuple) and len(facts.topology) == 21  # the 7 healthy GPUs' pairs
    assert all(3 not in (link.gpu_a, link.gpu_b) for link in facts.topology)


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda path: path.stem)
def test_scenario_not_supported_everywhere_never_raises(path: Path) -> None:
    facts = probe(load_recording(path).with_error("device[*].*", "NOT_SUPPORTED"))
    assert all(gpu.name == NOT_SUPPORTED and gpu.processes == NOT_SUPPORTED for gpu in facts.gpus)
    assert facts.topology == (NOT_SUPPORTED if facts.gpu_count > 1 else ())


def test_scenario_init_failures_are_explained() -> None:
    base = recording("t4-driver515.105.01")
    mismatch = probe(base.with_error("init", "LIB_RM_VERSION_MISMATCH"))
    assert mismatch.gpus == () and mismatch.no_gpu_reason and "different versions" in mismatch.no_gpu_reason
    empty = probe(base.with_value("device_count", 0))
    assert empty.gpus == () and empty.no_gpu_reason == "the NVIDIA driver is loaded but sees no GPU"


def test_replay_refuses_an_unrecorded_call_and_a_bad_file(tmp_path: Path) -> None:
    base = recording("t4-driver515.105.01")
    calls = {key: answer for key, answer in base.calls.items() if key != "device[0].fan_speed"}
    with pytest.raises(UnrecordedCall, match=re.escape("device[0].fan_speed")):
        probe(Recording(calls, base.meta))
    with pytest.raises(KeyError):
        base.with_error("device[7].name", "NOT_SUPPORTED")
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "something-else"}')
    with pytest.raises(RecordingFormatError, match=r"bad\.json"):
        load_recording(bad)


def test_recording_is_anonymised_and_replays_to_the_same_facts(tmp_path: Path) -> None:
    source = recording(H100)
    path = tmp_path / "recorded.json"
    recorded = record_nvml(path, ProbeContext(), backend=source.backend())
    text = path.read_text()
    originals = [
        json.dumps(a["value"]) for k, a in source.calls.items() if k.endswith((".uuid", ".serial", "process_name"))
    ]
    assert originals and not [value for value in originals if value in text]
    assert json.loads(text)["schema"] == "envcheck.nvml-recording/1"
    assert probe_gpu(ProbeContext(), load_recording(path).backend()) == recorded
    assert all(isinstance(gpu.uuid, str) and gpu.uuid.startswith("GPU-") for gpu in recorded.gpus)


def test_live_backend_on_a_machine_without_driver_reports_it_fast() -> None:
    from envcheck.probes.nvml.live import LiveNvml

    threads = set(threading.enumerate())
    with pytest.raises(NvmlError) as raised:
        LiveNvml().init()
    assert raised.value.name in ("LIBRARY_NOT_FOUND", "DRIVER_NOT_LOADED")
    facts = probe_gpu(ProbeContext())
    assert facts.gpus == () and facts.no_gpu_reason
    assert "NVIDIA" in facts.no_gpu_reason and isinstance(facts.driver_version, Unavailable)
    assert set(threading.enumerate()) == threads  # nothing left running that could block exit


def test_recording_on_a_machine_without_driver_keeps_the_failed_init(tmp_path: Path) -> None:
    path = tmp_path / "none.json"
    facts = record_nvml(path, ProbeContext())
    assert facts.gpus == () and facts.no_gpu_reason
    assert load_recording(path).calls["init"]["error"] in ("LIBRARY_NOT_FOUND", "DRIVER_NOT_LOADED")


def fake_host(tmp_path: Path, *, pci: bool = False, driver: bool = False, nodes: bool = False,
              library: bool = False) -> HostRoots:  # fmt: skip
    """A /proc, /sys, /etc and / tree with just the NVIDIA traces asked for."""
    (tmp_path / "etc").mkdir()
    (tmp_path / "dev").mkdir()
    device = tmp_path / "sys" / "bus" / "pci" / "devices" / "0000:3b:00.0"
    device.mkdir(parents=True)
    (device / "vendor").write_text("0x10de\n" if pci else "0x8086\n")
    (device / "class").write_text("0x030200\n")
    if driver:
        version = tmp_path / "proc" / "driver" / "nvidia" / "version"
        version.parent.mkdir(parents=True)
        version.write_text("NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024\n")
    if nodes:
        (tmp_path / "dev" / "nvidiactl").write_text("")
        (tmp_path / "dev" / "nvidia0").write_text("")
    if library:
        (tmp_path / "etc" / "ld.so.cache").write_bytes(b"...libnvidia-ml.so.1...")
    return HostRoots(proc=tmp_path / "proc", sys=tmp_path / "sys", etc=tmp_path / "etc", root=tmp_path)


@pytest.mark.parametrize(
    ("traces", "environ", "reason", "fix"),
    [
        ({"pci": True}, {}, "on the PCI bus (0000:3b:00.0) but the NVIDIA kernel driver is not loaded", "modprobe"),
        ({"pci": True, "driver": True}, {}, "no /dev/nvidia* device nodes", "--gpus all"),
        ({"pci": True, "driver": True, "nodes": True}, {}, "its library libnvidia-ml.so.1 is missing", "user-space"),
        ({}, {}, "no NVIDIA GPU on the PCI bus and no NVIDIA driver", "a VM needs"),
        ({}, {"CUDA_VISIBLE_DEVICES": ""}, "CUDA_VISIBLE_DEVICES='' also hides", "unset CUDA_VISIBLE_DEVICES"),
    ],
)
def test_why_there_is_no_gpu(
    tmp_path: Path, traces: dict[str, bool], environ: dict[str, str], reason: str, fix: str
) -> None:
    context = ProbeContext(roots=fake_host(tmp_path, **traces), environ={"PATH": str(tmp_path), **environ})
    facts = probe_gpu(context)  # live NVML is missing here, and so is nvidia-smi on this PATH
    assert facts.gpus == () and facts.no_gpu_reason and reason in facts.no_gpu_reason
    assert isinstance(facts.driver_version, Unavailable) and facts.driver_version.fix
    assert fix in facts.driver_version.fix


def test_without_nvml_the_nvidia_smi_command_is_used(tmp_path: Path) -> None:
    xml = source_xml("t4-driver515.105.01")
    script = tmp_path / "nvidia-smi"
    script.write_text(f"#!/bin/sh\nexec /bin/cat '{xml}'\n")
    script.chmod(0o755)
    facts = probe_gpu(ProbeContext(environ={"PATH": str(tmp_path)}))
    assert facts.source == "nvidia-smi" and [gpu.name for gpu in facts.gpus] == ["Tesla T4"]


def test_envcheck_own_torch_probe_is_not_reported_as_another_job() -> None:
    """The torch probe's smoke test holds GPU memory while the GPU probe lists processes: not a foreign job."""
    from envcheck.probes.bounded import run_bounded

    finished = run_bounded([sys.executable, "-c", "import os; print(os.getpid())"], 30.0, {})
    own = int(finished.stdout)
    busy = (
        recording(H100)
        .with_value("compute_processes[5]", [[2871544, 63847792640, None], [own, 536870912, None]])
        .with_value(f"process_name({own})", sys.executable)
    )
    gpu = probe(busy).gpus[5]
    assert isinstance(gpu.processes, tuple)
    assert [process.pid for process in gpu.processes] == [2871544]
