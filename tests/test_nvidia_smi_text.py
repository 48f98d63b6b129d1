"""The `nvidia-smi -q` text importer: the same facts as the XML of the same machine, across driver layouts,
through `--from`, and one-line errors for text that is not readable `-q` output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envcheck.codec import encode
from envcheck.facts.common import Unavailable
from envcheck.facts.gpu import GpuFacts, MigDevice
from envcheck.facts.gpu_health import RemappedRows, RetiredPages
from envcheck.importers.nvidia_smi_text import NvidiaSmiTextError, looks_like_nvidia_smi_q, parse_nvidia_smi_text
from envcheck.probes.nvidia_smi import MAX_GPUS, load_nvidia_smi_xml
from tests.shared_fixtures import shared_fixture

FIXTURES = Path(__file__).resolve().parent / "fixtures"
OWN = FIXTURES / "nvidia-smi-q"
GPUTIL = FIXTURES / "reports" / "gputil-38-windows-gtx1080ti-healthy-q.txt"
MIB = 1024 * 1024
NOT_SUPPORTED = Unavailable("not supported")


def text_facts(path: Path) -> GpuFacts:
    return parse_nvidia_smi_text(path.read_text(), f"nvidia-smi-q:{path.name}")


def comparable(facts: GpuFacts) -> dict[str, object]:
    """The facts as JSON, without what must differ: the source and the format named in 'not in the ...'."""
    document = json.loads(json.dumps(encode(facts)).replace("nvidia-smi -q text", "nvidia-smi XML"))
    del document["source"]
    return document  # type: ignore[no-any-return]


def test_v100_driver418_text_gives_the_facts_of_the_xml_of_the_same_machine() -> None:
    name = "v100-sxm2-16gb-x2-driver418.87.01-dbe-pending-retirement"
    text = text_facts(OWN / f"{name}.txt")
    assert comparable(text) == comparable(load_nvidia_smi_xml(FIXTURES / "nvidia-smi" / f"{name}.xml"))
    healthy, failing = text.gpus
    assert failing.clock_event_reasons == ("hw_slowdown",) and healthy.clock_event_reasons == ()
    assert (failing.ecc.volatile.corrected, failing.ecc.volatile.uncorrected) == (14, 2)  # old per-location layout
    assert failing.retired_pages == RetiredPages(0, 2, True)  # "Pending : Yes"
    assert [(p.pid, p.name) for p in failing.processes] == [(40713, "/opt/conda/bin/python")]  # type: ignore[union-attr]


def test_t4_driver515_text_gives_the_facts_of_the_real_xml() -> None:
    xml = load_nvidia_smi_xml(shared_fixture("nvidia-smi/t4-driver515.105.01.xml"))
    text = text_facts(OWN / "t4-driver515.105.01.txt")
    expected, got = comparable(xml), comparable(text)
    # The XML prints <mig_devices>None</mig_devices>; the text prints no MIG devices line when there are none.
    for document in (expected, got):
        document["gpus"][0].pop("mig_devices")  # type: ignore[index]
        document.pop("missing_fields")
    assert got == expected
    gpu = text.gpus[0]
    assert (gpu.name, gpu.pcie_width, gpu.pcie_width_max, gpu.memory_total_bytes) == ("Tesla T4", 8, 16, 15360 * MIB)
    assert [(p.pid, p.type, p.used_memory_bytes) for p in gpu.processes] == [  # type: ignore[union-attr]
        (675, "G", 22 * MIB),
        (5762, "C", 1005 * MIB),
    ]


# The layout of drivers 545 and later (this one as 570 prints it): "GPU Power Readings" with average and
# instantaneous draw, "Clocks Event Reasons", SEC-DED SRAM counters, T.Limit-relative temperatures.
DRIVER_570 = (
    """\
==============NVSMI LOG==============

Timestamp                                 : Tue May 13 09:41:02 2025
Driver Version                            : 570.133.20
CUDA Version                              : 12.8

Attached GPUs                             : 1
GPU 00000000:41:00.0
    Product Name                          : NVIDIA GeForce RTX 5090
    Product Brand                         : GeForce
    Product Architecture                  : Blackwell
    Persistence Mode                      : Enabled
    MIG Mode
        Current                           : N/A
        Pending                           : N/A
    Serial Number                         : [N/A]
    GPU UUID                              : GPU-5b0e7c21-9a3d-4f62-8e17-c4d2a6b9f031
    Minor Number                          : 0
    VBIOS Version                         : 98.02.2E.00.D2
    PCI
        Bus Id                            : 00000000:41:00.0
        GPU Link Info
            PCIe Generation
                Max                       : 5
                Current                   : 1
                Device Current            : 1
                Device Max                : 5
                Host Max                  : 5
            Link Width
                Max                       : 16x
                Current                   : 16x
        Replays Since Reset               : 0
    Fan Speed                             : 30 %
    Performance State                     : P8
    Clocks Event Reasons
        Idle                              : Not Active
        Applications Clocks Setting       : Not Active
        SW Power Cap                      : Active
        HW Slowdown                       : Not Active
            HW Thermal Slowdown           : Not Active
            HW Power Brake Slowdown       : Not Active
        Sync Boost                        : Not Active
        SW Thermal Slowdown               : Not Active
        Display Clock Setting             : Not Active
    Clocks Event Reasons Counters
        SW Power Capping                  : 1204 us
    FB Memory Usage
        Total                             : 32607 MiB
        Reserved                          : 487 MiB
        Used                              : 3 MiB
        Free                              : 32118 MiB
    Compute Mode                          : Default
    Utilization
        GPU                               : 0 %
        Memory                            : 0 %
    ECC Mode
        Current                           : N/A
        Pending                           : N/A
    ECC Errors
        Volatile
            SRAM Correctable              : N/A
            SRAM Uncorrectable Parity     : N/A
            SRAM Uncorrectable SEC-DED    : N/A
            DRAM Correctable              : N/A
            DRAM Uncorrectable            : N/A
    Retired Pages
        Single Bit ECC                    : N/A
        Double Bit ECC                    : N/A
        Pending Page Blacklist            : N/A
    Remapped Rows                         : N/A
    Temperature
        GPU Current Temp                  : 27 C
        GPU T.Limit Temp                  : 63 C
        GPU Shutdown T.Limit Temp         : -5 C
        GPU Slowdown T.Limit Temp         : -2 C
    GPU Power Readings
        Average Power Draw                : 21.90 W
        Instantaneous Power Draw          : 22.41 W
        Current Power Limit               : 575.00 W
        Requested Power Limit             : 575.00 W
        Default Power Limit               : 575.00 W
        Min Power Limit                   : 400.00 W
        Max Power Limit                   : 600.00 W
"""
    "    GPU Memory Power Readings \n"  # nvidia-smi prints this header with a trailing space
    """\
        Average Power Draw                : N/A
    Clocks
        Graphics                          : 22 MHz
        SM                                : 22 MHz
        Memory                            : 405 MHz
    Max Clocks
        Graphics                          : 3090 MHz
        SM                                : 3090 MHz
        Memory                            : 14001 MHz
    Processes                             : None
"""
)


def test_driver570_layout_new_section_names_and_not_applicable_values() -> None:
    facts = parse_nvidia_smi_text(DRIVER_570, "nvidia-smi-q:x")
    assert (facts.driver_version, facts.cuda_driver_version, facts.gpu_count) == ("570.133.20", "12.8", 1)
    gpu = facts.gpus[0]
    assert (gpu.name, gpu.architecture, gpu.pci_bus_id) == ("NVIDIA GeForce RTX 5090", "Blackwell", "00000000:41:00.0")
    assert gpu.serial == NOT_SUPPORTED  # "[N/A]"
    assert (gpu.pcie_generation, gpu.pcie_generation_max, gpu.pcie_width, gpu.pcie_width_max) == (1, 5, 16, 16)
    assert gpu.power_draw_watts == 22.41  # the instantaneous reading, as nvidia-smi's table shows
    assert (gpu.power_limit_watts, gpu.power_default_limit_watts, gpu.power_max_limit_watts) == (575.0, 575.0, 600.0)
    assert gpu.clock_event_reasons == ("sw_power_cap",)  # the counters block is not read as reasons
    assert (gpu.memory_total_bytes, gpu.memory_used_bytes) == (32607 * MIB, 3 * MIB)
    assert (gpu.sm_clock_mhz, gpu.sm_clock_max_mhz, gpu.memory_clock_max_mhz) == (22, 3090, 14001)
    assert gpu.ecc.is_enabled == NOT_SUPPORTED and gpu.ecc.volatile.uncorrected == NOT_SUPPORTED
    assert gpu.retired_pages == NOT_SUPPORTED and gpu.remapped_rows == NOT_SUPPORTED
    assert gpu.temperature_c == 27 and "gpu/temperature/gpu_temp_slow_threshold" in facts.missing_fields
    assert (gpu.fan_speed_percent, gpu.utilization_gpu_percent, gpu.is_persistence_mode) == (30, 0, True)
    assert gpu.processes == ()
    assert isinstance(gpu.compute_capability, Unavailable)
    assert gpu.compute_capability.reason == "not in the nvidia-smi -q text of driver 570.133.20"


def test_a_remapped_rows_section_and_not_supported_values() -> None:
    text = DRIVER_570.replace(
        "    Remapped Rows                         : N/A\n",
        "    Remapped Rows\n"
        "        Correctable Error                 : 1\n"
        "        Uncorrectable Error               : 2\n"
        "        Pending                           : Yes\n"
        "        Remapping Failure Occurred        : No\n"
        "        Bank Remap Availability Histogram\n"
        "            Max                           : 639 bank(s)\n",
    ).replace("Fan Speed                             : 30 %", "Fan Speed                             : [Not Supported]")
    gpu = parse_nvidia_smi_text(text, "x").gpus[0]
    assert gpu.remapped_rows == RemappedRows(1, 2, True, False)
    assert gpu.fan_speed_percent == NOT_SUPPORTED


def test_windows_paste_after_the_command_line_one_gpu_of_four() -> None:
    facts = text_facts(GPUTIL)
    assert (facts.driver_version, facts.cuda_driver_version, facts.gpu_count) == ("442.92", "10.2", 4)
    (gpu,) = facts.gpus  # `nvidia-smi -q -i 0` prints one of the four attached GPUs
    assert (gpu.name, gpu.uuid, gpu.pci_bus_id) == (
        "GeForce GTX 1080 Ti",
        "GPU-95ef7c5d-fc11-835b-cd38-2020193cf8e0",
        "00000000:18:00.0",
    )
    assert gpu.is_persistence_mode == NOT_SUPPORTED and gpu.minor_number == NOT_SUPPORTED


MIG_GPU = """\
==============NVSMI LOG==============

Driver Version                            : 460.73.01
CUDA Version                              : 11.2

Attached GPUs                             : 1
GPU 00000000:86:00.0
    Product Name                          : A100-PCIE-40GB
    MIG Mode
        Current                           : Enabled
        Pending                           : Enabled
"""
# Driver 460 prints each MIG device as a section right under the GPU (k8s-device-plugin#257 pasted this layout).
MIG_DEVICE_460 = """\
    MIG Device
        Index                             : {index}
        GPU Instance ID                   : {instance}
        Compute Instance ID               : 0
        Device Attributes
            Shared
                Multiprocessor count      : 14
"""


def test_mig_devices_right_under_the_gpu_are_read_one_per_section() -> None:
    text = MIG_GPU + MIG_DEVICE_460.format(index=0, instance=7) + MIG_DEVICE_460.format(index=1, instance=8)
    gpu = parse_nvidia_smi_text(text, "x").gpus[0]
    assert gpu.is_mig_enabled is True
    assert isinstance(gpu.mig_devices, tuple)
    assert [(d.index, d.gpu_instance_id, d.compute_instance_id, d.multiprocessor_count) for d in gpu.mig_devices] == [
        (0, 7, 0, 14),
        (1, 8, 0, 14),
    ]


def test_mig_devices_nested_in_a_mig_devices_section_are_read_with_their_memory() -> None:
    nested = "".join("    " + line + "\n" for line in MIG_DEVICE_460.format(index=0, instance=1).splitlines())
    memory = "            FB Memory Usage\n                Total : 9984 MiB\n                Used : 13 MiB\n"
    gpu = parse_nvidia_smi_text(MIG_GPU + "    MIG Devices\n" + nested + memory, "x").gpus[0]
    assert isinstance(gpu.mig_devices, tuple)
    (device,) = gpu.mig_devices
    assert isinstance(device, MigDevice)
    assert (device.gpu_instance_id, device.memory_total_bytes, device.memory_used_bytes) == (1, 9984 * MIB, 13 * MIB)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "envcheck", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_from_detects_the_text_saved_by_powershell_as_utf16_with_crlf(tmp_path: Path) -> None:
    path = tmp_path / "nvidia-smi-q.txt"
    text = (OWN / "v100-sxm2-16gb-x2-driver418.87.01-dbe-pending-retirement.txt").read_text()
    path.write_bytes(("nvidia-smi.exe -q\r\n" + text.replace("\n", "\r\n")).encode("utf-16"))
    info = run("info", "--from", str(path), "--json")
    assert info.returncode == 0, info.stderr
    document = json.loads(info.stdout)
    assert document["source"] == "nvidia-smi-q:nvidia-smi-q.txt"
    assert [gpu["name"] for gpu in document["gpu"]["gpus"]] == ["Tesla V100-SXM2-16GB"] * 2
    assert document["system"]["unavailable"] == "not in an nvidia-smi -q text file (nvidia-smi-q.txt)"
    doctor = run("doctor", "--from", str(path))
    assert doctor.returncode == 1, doctor.stdout + doctor.stderr  # the pending retirement and the ECC errors fail
    assert "Traceback" not in doctor.stderr


def test_doctor_on_a_healthy_paste_does_not_fail() -> None:
    doctor = run("doctor", "--from", str(OWN / "t4-driver515.105.01.txt"))
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "Tesla T4" in doctor.stdout


HEAD = "==============NVSMI LOG==============\nDriver Version : 1\n"
PLAIN_TABLE = """\
+-----------------------------------------------------------------------------+
| NVIDIA-SMI 470.82.01    Driver Version: 470.82.01    CUDA Version: 11.4     |
|-------------------------------+----------------------+----------------------+
"""


def test_detection_needs_the_banner_and_the_driver_line() -> None:
    assert looks_like_nvidia_smi_q(DRIVER_570)
    assert looks_like_nvidia_smi_q("<details>\n\n```\n" + DRIVER_570 + "```\n</details>\n")
    assert not looks_like_nvidia_smi_q(PLAIN_TABLE)  # plain nvidia-smi: the table, not -q
    assert not looks_like_nvidia_smi_q("==============NVSMI LOG==============\n\nno driver line\n")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (PLAIN_TABLE.encode(), "unknown format"),
        (b"==============NVSMI LOG==============\n\nTimestamp : now\n", "unknown format"),
        (
            (HEAD + "GPU 0000:01:00.0\n" * (MAX_GPUS + 1)).encode(),
            f"more than {MAX_GPUS} GPU blocks",
        ),
        (
            (HEAD + "".join(" " * i + "x\n" for i in range(40))).encode(),
            "nested deeper than 32",
        ),
    ],
)
def test_text_that_is_not_readable_is_a_one_line_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "q.txt"
    path.write_bytes(content)
    result = run("doctor", "--from", str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith(f"envcheck: error: {path}: ") and result.stderr.count("\n") == 1
    assert message in result.stderr


def test_only_the_first_log_of_a_paste_is_read() -> None:
    second = DRIVER_570.replace("570.133.20", "999.99").replace("RTX 5090", "RTX 9999")
    facts = parse_nvidia_smi_text("$ nvidia-smi -q\n" + DRIVER_570 + "\n$ nvidia-smi -q\n" + second, "x")
    assert facts.driver_version == "570.133.20" and [gpu.name for gpu in facts.gpus] == ["NVIDIA GeForce RTX 5090"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from(list(" :\t\n=[]GPU0:.xNAa%MiB-")), max_size=400), st.floats(0, 1))
def test_fuzz_garbage_after_or_inside_a_real_log_never_raises_anything_else(garbage: str, where: float) -> None:
    cut = int(len(DRIVER_570) * where)
    try:
        facts = parse_nvidia_smi_text(DRIVER_570[:cut] + garbage + DRIVER_570[cut:], "x")
    except NvidiaSmiTextError as error:
        assert "\n" not in str(error)
    else:
        encode(facts)
