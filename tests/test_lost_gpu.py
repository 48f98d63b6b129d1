"""A GPU fallen off the bus, as nvidia-smi prints it in a paste ("Unable to determine the device handle for GPU
0000:3B:00.0: Unknown Error", in -q text or beside a collect_env report) and as the live NVML probe sees it
(GPU_IS_LOST): one fact, and one failure naming the bus id."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from envcheck.checks.registry import CheckInput, run_checks
from envcheck.facts.gpu import LOST_GPU, LostGpu
from envcheck.finding import Finding, Severity
from envcheck.importers.collect_env import snapshot_from_collect_env
from envcheck.importers.nvidia_smi_text import parse_nvidia_smi_text, read_lost_gpus
from envcheck.probes.context import ProbeContext
from envcheck.probes.nvml import probe_gpu
from envcheck.probes.nvml.replay import load_recording
from tests import factories

FIXTURES = Path(__file__).resolve().parent / "fixtures"
# The spellings of public reports: older drivers put a space before the bus id, later ones none, recent ones the
# index first; Windows wraps "GPU is lost.  Reboot the system to recover this GPU" at 80 columns.
OLD = "Unable to determine the device handle for GPU 0000:3B:00.0: Unknown Error"
NO_SPACE = "Unable to determine the device handle for GPU0000:07:00.0: Unknown Error"
INDEXED = "Unable to determine the device handle for GPU1: 0000:34:00.0: Unknown Error"
WRAPPED = (
    "Unable to determine the device handle for GPU 0000:03:00.0: GPU is lost.  Reboot\n the system to recover this GPU"
)
Q_LOG = """\
{before}
==============NVSMI LOG==============

Timestamp                                 : Mon Mar  4 10:12:44 2024
Driver Version                            : 535.154.05
CUDA Version                              : 12.2

Attached GPUs                             : 2
GPU 00000000:1A:00.0
    Product Name                          : NVIDIA GeForce RTX 3090
    Product Brand                         : GeForce
    PCI
        Bus                               : 0x1A
        Bus Id                            : 00000000:1A:00.0
{inside}
    Temperature
        GPU Current Temp                  : 41 C
        GPU Shutdown Temp                 : 98 C
        GPU Slowdown Temp                 : 95 C
        GPU Max Operating Temp            : 93 C
"""


def doctor(snapshot: object) -> list[Finding]:
    return [finding for finding in run_checks(CheckInput(snapshot)) if finding.id == "gpu.lost"]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (OLD, LostGpu("0000:3B:00.0", None, "Unknown Error", OLD)),
        (NO_SPACE, LostGpu("0000:07:00.0", None, "Unknown Error", NO_SPACE)),
        (INDEXED, LostGpu("0000:34:00.0", 1, "Unknown Error", INDEXED)),
        (WRAPPED, LostGpu("0000:03:00.0", None, "GPU is lost", " ".join(WRAPPED.splitlines()[0].split()))),
    ],
)
def test_every_spelling_gives_the_bus_id_and_the_error(line: str, expected: LostGpu) -> None:
    assert read_lost_gpus(f"$ nvidia-smi\n{line}\n") == (expected,)


def test_a_line_printed_twice_is_one_gpu_and_plain_text_is_none() -> None:
    assert len(read_lost_gpus(f"{OLD}\n{OLD}\n{INDEXED}\n")) == 2
    assert read_lost_gpus("Unable to determine the device handle for this thing\nGPU 0000:3B:00.0 is fine") == ()


@pytest.mark.parametrize(("before", "inside"), [(OLD, ""), ("", "    " + OLD)])
def test_q_text_with_a_lost_gpu_reads_the_others_and_fails_naming_the_bus_id(before: str, inside: str) -> None:
    facts = parse_nvidia_smi_text(Q_LOG.format(before=before, inside=inside), "nvidia-smi-q:x")
    assert [gpu.name for gpu in facts.gpus] == ["NVIDIA GeForce RTX 3090"]
    assert facts.gpus[0].temperature_c == 41  # the error line did not break the block around it
    assert [lost.pci_bus_id for lost in facts.lost_gpus] == ["0000:3B:00.0"]
    (finding,) = doctor(factories.snapshot(gpu=facts))
    assert finding.severity is Severity.FAIL and "0000:3B:00.0" in finding.title and "Unknown Error" in finding.title
    assert OLD in (finding.detail or "") and "nvidia-smi -r -i 0000:3B:00.0" in (finding.fix or "")


def test_q_text_where_every_gpu_is_lost_says_why_there_are_none() -> None:
    text = Q_LOG.format(before=INDEXED, inside="").split("GPU 00000000:1A:00.0")[0]
    facts = parse_nvidia_smi_text(text, "nvidia-smi-q:x")
    assert facts.gpus == () and facts.no_gpu_reason is not None and "cannot open" in facts.no_gpu_reason
    (finding,) = doctor(factories.snapshot(gpu=facts))
    assert finding.severity is Severity.FAIL and finding.title.startswith("GPU 1 at 0000:34:00.0")


def test_collect_env_whose_gpu_list_failed_beside_nvidia_smi_saying_why() -> None:
    report = (FIXTURES / "collect_env" / "linux-torch2.1-cu121-driver470-too-old.txt").read_text()
    head, _, tail = report.partition("GPU models and configuration: \n")
    tail = tail.split("\n\n", 1)[1]
    pasted = f"$ nvidia-smi\n{NO_SPACE}\n\n{head}GPU models and configuration: Could not collect\n\n{tail}"
    snapshot = snapshot_from_collect_env(pasted.encode(), "report.txt")
    (finding,) = doctor(snapshot)
    assert finding.severity is Severity.FAIL and "0000:07:00.0" in finding.title


def test_a_healthy_paste_has_no_lost_gpu() -> None:
    text = Q_LOG.format(before="", inside="")
    (finding,) = doctor(factories.snapshot(gpu=parse_nvidia_smi_text(text, "x")))
    assert finding.severity is Severity.OK


def test_the_live_probe_lost_gpu_is_the_same_failure() -> None:
    recording = load_recording(FIXTURES / "nvml" / "h100-sxm5-80gb-x8-driver550.54.15-foreign-processes.json")
    facts = probe_gpu(ProbeContext(), recording.with_error("device[3].*", "GPU_IS_LOST").backend())
    assert facts.gpus[3].is_lost and facts.gpus[3].name == LOST_GPU and not facts.gpus[2].is_lost
    (finding,) = doctor(factories.snapshot(gpu=facts))
    assert finding.severity is Severity.FAIL and finding.title.startswith("GPU 3")
    assert "nvidia-smi -r -i 3" in (finding.fix or "")


def test_doctor_from_a_q_paste_with_a_lost_gpu_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "smi.txt"
    path.write_text(Q_LOG.format(before=WRAPPED, inside=""))
    command = [sys.executable, "-m", "envcheck", "doctor", "--from", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "0000:03:00.0 has fallen off the bus" in " ".join(result.stdout.split())
