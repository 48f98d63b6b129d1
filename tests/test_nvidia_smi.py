"""The nvidia-smi importer and live fallback: real driver output, hand-written machines, hostile input."""

from __future__ import annotations

import dataclasses
import os
import stat
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envcheck.codec import decode, encode
from envcheck.facts.common import Unavailable
from envcheck.facts.gpu import Gpu, GpuFacts
from envcheck.facts.gpu_health import RemappedRows, RetiredPages
from envcheck.probes.context import ProbeContext
from envcheck.probes.errors import ProbeError
from envcheck.probes.nvidia_smi import (
    NvidiaSmiXmlError,
    load_nvidia_smi_xml,
    parse_nvidia_smi_xml,
    probe_nvidia_smi,
)
from tests.shared_fixtures import SHARED_XML, shared_fixture, shared_glob

SHARED = SHARED_XML
OWN = Path(__file__).resolve().parent / "fixtures" / "nvidia-smi"
ALL_FIXTURES = [
    *shared_glob("nvidia-smi", "*.xml"),
    *(pytest.param(path, id=path.name) for path in sorted(OWN.glob("*.xml"))),
]
MIB = 1024 * 1024
NOT_SUPPORTED = Unavailable("not supported")


def load(name: str) -> GpuFacts:
    path = OWN / name if (OWN / name).exists() else shared_fixture(f"nvidia-smi/{name}")
    return load_nvidia_smi_xml(path)


def test_fixtures_are_present() -> None:
    assert len(list(shared_fixture("nvidia-smi").glob("*.xml"))) >= 6
    assert len(list(OWN.glob("*.xml"))) >= 4


@pytest.mark.parametrize("path", ALL_FIXTURES)
def test_every_fixture_parses_round_trips_and_explains_every_gap(path: Path) -> None:
    facts = load_nvidia_smi_xml(path)
    assert facts.source == f"nvidia-smi-xml:{path}"
    assert facts.gpus and facts.no_gpu_reason is None
    assert decode(GpuFacts, encode(facts)) == facts
    for gpu in facts.gpus:
        for field in dataclasses.fields(Gpu):
            value = getattr(gpu, field.name)
            if isinstance(value, Unavailable):
                assert value.reason, field.name
            assert value != "N/A", field.name


def summary(gpu: Gpu) -> tuple[object, ...]:
    return (gpu.name, gpu.uuid, gpu.memory_total_bytes, gpu.pcie_generation, gpu.pcie_generation_max,
            gpu.pcie_width, gpu.pcie_width_max)  # fmt: skip


def test_k80_driver430_old_ecc_layout_and_retired_pages() -> None:
    facts = load("k80x4-driver430.26-ecc-dbe-retired.xml")
    assert facts.driver_version == "430.26"
    assert isinstance(facts.cuda_driver_version, Unavailable)  # the file says "Not Found"
    assert facts.gpu_count == 4
    assert [summary(gpu) for gpu in facts.gpus] == [
        ("Tesla K80", "GPU-c3b26f7a-8dcb-619c-fa1b-8029265a4db0", 11441 * MIB, 3, 3, 16, 16),
        ("Tesla K80", "GPU-b01b80eb-0f18-1df0-cf88-0725bd90f1e1", 11441 * MIB, 3, 3, 16, 16),
        ("Tesla K80", "GPU-30bc2701-3bc2-5f35-0ebd-9867a077e138", 11441 * MIB, 1, 3, 16, 16),
        ("Tesla K80", "GPU-3341aba2-f01d-2c1f-7dd4-e389779faec2", 11441 * MIB, 1, 3, 16, 16),
    ]
    first, second = facts.gpus[0], facts.gpus[1]
    assert first.ecc.is_enabled is True
    assert (first.ecc.aggregate.corrected, first.ecc.aggregate.uncorrected) == (7, 7)
    assert (second.ecc.aggregate.corrected, second.ecc.aggregate.uncorrected) == (34, 4)
    assert (first.ecc.volatile.corrected, first.ecc.volatile.uncorrected) == (0, 0)
    assert first.retired_pages == RetiredPages(1, 1, False)
    assert first.clock_event_reasons == ("applications_clocks_setting",)
    assert facts.gpus[2].clock_event_reasons == ("gpu_idle",)
    assert isinstance(first.remapped_rows, Unavailable)
    assert "gpu/remapped_rows" in facts.missing_fields
    assert first.minor_number == 1 and first.pci_bus_id == "00001580:00:00.0"
    assert first.power_draw_watts == 135.72 and first.power_limit_watts == 149.0


def test_gt730_driver384_unsupported_gpu_has_reasons_for_everything() -> None:
    facts = load("gt730-driver384.111-unsupported.xml")
    assert (facts.driver_version, facts.gpu_count) == ("384.111", 1)
    gpu = facts.gpus[0]
    assert gpu.name == "GeForce GT 730" and gpu.uuid == "GPU-09cb2925-9d01-5ca4-810b-6cdebe86b71a"
    assert gpu.serial == NOT_SUPPORTED and gpu.utilization_gpu_percent == NOT_SUPPORTED
    assert gpu.pci_bus_id == "00000000:01:00.0"  # from the gpu element's id attribute
    assert isinstance(gpu.memory_total_bytes, Unavailable)
    assert "384.111" in gpu.memory_total_bytes.reason
    assert {"gpu/fb_memory_usage/total", "cuda_version", "gpu/clocks_event_reasons"} <= set(facts.missing_fields)


def test_a100_40gb_mig_driver510() -> None:
    facts = load("a100-sxm4-40gb-mig-driver510.47.03.xml")
    assert (facts.driver_version, facts.cuda_driver_version, facts.gpu_count) == ("510.47.03", "11.6", 1)
    gpu = facts.gpus[0]
    assert summary(gpu) == (
        "NVIDIA A100-SXM4-40GB",
        "GPU-27b94a00-ed54-5c24-b1fd-1054085de32a",
        40960 * MIB,
        4,
        4,
        16,
        16,
    )
    assert gpu.is_mig_enabled is True and gpu.is_mig_enabled_pending is True
    assert not isinstance(gpu.mig_devices, Unavailable)
    assert [(d.index, d.gpu_instance_id, d.compute_instance_id, d.memory_total_bytes, d.multiprocessor_count)
            for d in gpu.mig_devices] == [(0, 1, 0, 19968 * MIB, 42), (1, 2, 0, 19968 * MIB, 42)]  # fmt: skip
    assert gpu.ecc.is_enabled is True
    assert gpu.ecc.volatile.uncorrected == NOT_SUPPORTED
    assert (gpu.ecc.aggregate.corrected, gpu.ecc.aggregate.uncorrected) == (0, 0)
    assert gpu.retired_pages == NOT_SUPPORTED and gpu.remapped_rows == NOT_SUPPORTED
    assert gpu.clock_event_reasons == ()  # from clocks_throttle_reasons, one value wrapped over two lines
    assert (gpu.architecture, gpu.temperature_slowdown_c, gpu.temperature_shutdown_c) == ("Ampere", 89, 92)
    assert isinstance(gpu.compute_capability, Unavailable)  # the XML of this driver does not carry it
    assert gpu.fan_speed_percent == NOT_SUPPORTED


def test_rtx4090_driver535_new_power_section_and_relative_thresholds() -> None:
    facts = load("rtx4090-driver535.86.05.xml")
    assert (facts.driver_version, facts.cuda_driver_version, facts.gpu_count) == ("535.86.05", "12.2", 1)
    gpu = facts.gpus[0]
    assert summary(gpu) == (
        "NVIDIA GeForce RTX 4090",
        "GPU-71d1acc2-662d-2166-bf9f-65272d2fc437",
        24564 * MIB,
        1,
        3,
        16,
        16,
    )
    assert (gpu.power_draw_watts, gpu.power_limit_watts, gpu.power_max_limit_watts) == (26.84, 450.0, 600.0)
    assert gpu.ecc.is_enabled is False and gpu.retired_pages == NOT_SUPPORTED
    assert gpu.remapped_rows == RemappedRows(0, 0, False, False)
    assert gpu.clock_event_reasons == ("gpu_idle",)
    # driver 535 printed only T.Limit-relative thresholds for this card: absent, not guessed
    assert "gpu/temperature/gpu_temp_slow_threshold" in facts.missing_fields
    assert gpu.is_mig_enabled == NOT_SUPPORTED and gpu.mig_devices == ()


def test_rtx_a5000_driver590_event_reasons_and_processes() -> None:
    facts = load("rtx-a5000x2-driver590.44.01.xml")
    assert (facts.driver_version, facts.cuda_driver_version, facts.gpu_count) == ("590.44.01", "13.1", 2)
    assert [summary(gpu) for gpu in facts.gpus] == [
        ("NVIDIA RTX A5000", "GPU-12345678-aaaa-bbbb-cccc-0123456789ab", 24564 * MIB, 1, 4, 16, 16),
        ("NVIDIA RTX A5000", "GPU-12345678-aaaa-bbbb-cccc-0123456789cd", 24564 * MIB, 1, 4, 16, 16),
    ]
    gpu = facts.gpus[0]
    assert gpu.power_draw_watts == 6.52  # instant_power_draw, as nvidia-smi's table shows
    assert gpu.clock_event_reasons == ("gpu_idle",)
    assert gpu.ecc.is_enabled is False and gpu.ecc.aggregate.corrected == NOT_SUPPORTED
    assert gpu.remapped_rows == RemappedRows(0, 0, False, False)
    assert not isinstance(gpu.processes, Unavailable)
    assert [(p.pid, p.type, p.used_memory_bytes) for p in gpu.processes] == [(100477, "C", 22430 * MIB)]
    assert (gpu.fan_speed_percent, gpu.sm_clock_max_mhz, gpu.memory_clock_max_mhz) == (30, 2100, 8001)
    assert facts.missing_fields == ("gpu/compute_cap",)


def test_t4_driver515_pcie_x8_and_retired_pages_clean() -> None:
    facts = load("t4-driver515.105.01.xml")
    assert (facts.driver_version, facts.cuda_driver_version, facts.gpu_count) == ("515.105.01", "11.7", 1)
    gpu = facts.gpus[0]
    assert summary(gpu) == ("Tesla T4", "GPU-d37e67a5-91dd-3774-a5cb-99096249601a", 15360 * MIB, 3, 3, 8, 16)
    assert gpu.retired_pages == RetiredPages(0, 0, False)
    assert gpu.remapped_rows == NOT_SUPPORTED
    assert (gpu.ecc.volatile.uncorrected, gpu.ecc.aggregate.uncorrected) == (0, 0)
    assert not isinstance(gpu.processes, Unavailable)
    assert [(p.pid, p.type, p.name) for p in gpu.processes] == [(675, "G", "/usr/lib/xorg/Xorg"), (5762, "C", "python")]


def test_h100_node_eight_gpus_and_foreign_processes() -> None:
    facts = load("h100-sxm5-80gb-x8-driver550.54.15-foreign-processes.xml")
    assert (facts.driver_version, facts.cuda_driver_version, facts.gpu_count) == ("550.54.15", "12.4", 8)
    assert [gpu.name for gpu in facts.gpus] == ["NVIDIA H100 80GB HBM3"] * 8
    assert {summary(gpu)[2:] for gpu in facts.gpus} == {(81559 * MIB, 5, 5, 16, 16)}
    assert len({gpu.uuid for gpu in facts.gpus}) == 8
    holders = {
        gpu.index: [process.pid for process in gpu.processes]
        for gpu in facts.gpus
        if isinstance(gpu.processes, tuple) and gpu.processes
    }
    assert holders == {3: [2871544], 5: [2871544, 3302117]}
    busy = facts.gpus[3]
    assert (busy.power_draw_watts, busy.power_limit_watts, busy.utilization_gpu_percent) == (655.9, 700.0, 97)
    assert busy.is_mig_enabled is False and busy.mig_devices == ()
    assert busy.remapped_rows == RemappedRows(0, 0, False, False)
    assert isinstance(facts.topology, Unavailable) and isinstance(busy.nvlinks, Unavailable)
    assert facts.topology.fix == "nvidia-smi topo -m"


def test_l40s_degraded_pcie_link_and_thermal_power_throttling() -> None:
    facts = load("l40s-x2-driver550.90.07-pcie-gen3x8-throttling.xml")
    slow_link, hot = facts.gpus
    assert summary(slow_link)[3:] == (3, 4, 8, 16)
    assert slow_link.pcie_replay_count == 1873
    assert hot.clock_event_reasons == ("sw_power_cap", "hw_slowdown", "sw_thermal_slowdown", "hw_thermal_slowdown")
    assert (hot.temperature_c, hot.temperature_slowdown_c, hot.sm_clock_mhz, hot.sm_clock_max_mhz) == (
        96,
        95,
        1035,
        2520,
    )


def test_a100_80gb_uncorrectable_ecc_and_row_remap_failure() -> None:
    gpu = load("a100-sxm4-80gb-driver535.129.03-ecc-remap-failure.xml").gpus[0]
    assert (gpu.ecc.volatile.corrected, gpu.ecc.volatile.uncorrected) == (2, 2)
    assert (gpu.ecc.aggregate.corrected, gpu.ecc.aggregate.uncorrected) == (341, 12)
    assert gpu.remapped_rows == RemappedRows(3, 8, True, True)
    assert gpu.retired_pages == NOT_SUPPORTED
    assert gpu.power_draw_watts == 62.8  # driver 535 spells it power_draw


def test_v100_old_driver_throttle_reasons_and_pending_retirement() -> None:
    facts = load("v100-sxm2-16gb-x2-driver418.87.01-dbe-pending-retirement.xml")
    assert (facts.driver_version, facts.cuda_driver_version, facts.gpu_count) == ("418.87.01", "10.1", 2)
    healthy, failing = facts.gpus
    assert failing.clock_event_reasons == ("hw_slowdown",) and healthy.clock_event_reasons == ()
    assert (failing.ecc.volatile.corrected, failing.ecc.volatile.uncorrected) == (14, 2)
    assert failing.retired_pages == RetiredPages(0, 2, True)  # pending_blacklist: Yes
    assert healthy.retired_pages == RetiredPages(0, 0, False)
    assert "gpu/product_architecture" in facts.missing_fields


def test_values_that_are_not_readings() -> None:
    facts = parse_nvidia_smi_xml(
        b"<nvidia_smi_log><driver_version>550.54.15</driver_version><attached_gpus>1</attached_gpus>"
        b"<gpu id='00000000:01:00.0'><serial>[Insufficient Permissions]</serial><uuid>[Unknown Error]</uuid>"
        b"<product_name>[GPU requires reset]</product_name><fan_speed>[N/A]</fan_speed>"
        b"<fb_memory_usage><total>12x4 MiB</total><used>5 GiB</used><free>\xd9\xa1 MiB</free></fb_memory_usage>"
        b"<pci><pci_gpu_link_info><link_widths><max_link_width>16x</max_link_width></link_widths>"
        b"</pci_gpu_link_info></pci><compute_mode>Exclusive_Process</compute_mode></gpu></nvidia_smi_log>",
        "test",
    )
    gpu = facts.gpus[0]
    assert gpu.serial == Unavailable("no permission", "run nvidia-smi as root (or in the video group)")
    assert gpu.uuid == Unavailable("the driver reported an unknown error")
    assert isinstance(gpu.name, Unavailable) and "reset" in gpu.name.reason
    assert gpu.fan_speed_percent == NOT_SUPPORTED
    assert all(
        isinstance(value, Unavailable) and value.reason.startswith("unreadable value")
        for value in (gpu.memory_total_bytes, gpu.memory_used_bytes, gpu.memory_free_bytes)
    )
    assert (gpu.pcie_width_max, gpu.compute_mode) == (16, "Exclusive_Process")


def test_a_file_without_gpus_says_so() -> None:
    facts = parse_nvidia_smi_xml(b"<nvidia_smi_log><attached_gpus>0</attached_gpus></nvidia_smi_log>", "x")
    assert facts.gpus == () and facts.gpu_count == 0 and facts.no_gpu_reason


# --- hostile and malformed input -------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE nvidia_smi_log [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<nvidia_smi_log><driver_version>&lol9;</driver_version></nvidia_smi_log>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE nvidia_smi_log [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<nvidia_smi_log><driver_version>&xxe;</driver_version></nvidia_smi_log>"""
QUADRATIC_BLOWUP = (
    b'<?xml version="1.0"?><!DOCTYPE nvidia_smi_log [<!ENTITY a "' + b"A" * 50_000 + b'">]>'
    b"<nvidia_smi_log><driver_version>" + b"&a;" * 50_000 + b"</driver_version></nvidia_smi_log>"
)
PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE nvidia_smi_log [<!ENTITY % remote SYSTEM "http://example.invalid/evil.dtd"> %remote;]>
<nvidia_smi_log/>"""
EXTERNAL_DTD_ELSEWHERE = b'<!DOCTYPE nvidia_smi_log SYSTEM "file:///etc/passwd"><nvidia_smi_log/>'
UTF16 = '<?xml version="1.0" encoding="UTF-16"?><nvidia_smi_log/>'.encode("utf-16")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (BILLION_LAUGHS, "ENTITY"),
        (EXTERNAL_ENTITY, "ENTITY"),
        (QUADRATIC_BLOWUP, "ENTITY"),
        (PARAMETER_ENTITY, "ENTITY"),
        (EXTERNAL_DTD_ELSEWHERE, "DOCTYPE"),
        (b'<!DOCTYPE html SYSTEM "a.dtd"><nvidia_smi_log/>', "DOCTYPE"),
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"\x00\x01\x02garbage", "binary"),
        (UTF16, "binary"),
        (b"\xff\xfe\xfa not text", "UTF-8"),
        (b"<html><body>502 Bad Gateway</body></html>", "root element"),
        (b"<nvidia_smi_log><gpu>", "malformed"),
        (b"NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.", "malformed"),
        (b"<nvidia_smi_log>" + b"<a>" * 100 + b"</a>" * 100 + b"</nvidia_smi_log>", "nested"),
    ],
    ids=lambda value: value[:20] if isinstance(value, bytes) else value,
)
def test_hostile_and_malformed_input_is_refused_in_one_line(data: bytes, message: str) -> None:
    started = time.perf_counter()
    with pytest.raises(NvidiaSmiXmlError) as raised:
        parse_nvidia_smi_xml(data, "test")
    assert message.lower() in str(raised.value).lower()
    assert "\n" not in str(raised.value)
    assert time.perf_counter() - started < 1.0  # nothing was expanded


def test_the_real_plain_doctype_is_accepted() -> None:
    facts = parse_nvidia_smi_xml(
        b'<?xml version="1.0" ?>\n<!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_v12.dtd">\n'
        b"<nvidia_smi_log><driver_version>550.54.15</driver_version></nvidia_smi_log>",
        "test",
    )
    assert facts.driver_version == "550.54.15"


def test_load_names_the_file_in_every_error(tmp_path: Path) -> None:
    missing = tmp_path / "absent.xml"
    with pytest.raises(NvidiaSmiXmlError, match=r"absent\.xml: cannot read: No such file"):
        load_nvidia_smi_xml(missing)
    with pytest.raises(NvidiaSmiXmlError, match=r": cannot read: Is a directory"):
        load_nvidia_smi_xml(tmp_path)
    bad = tmp_path / "bad.xml"
    bad.write_bytes(BILLION_LAUGHS)
    with pytest.raises(NvidiaSmiXmlError, match=r"bad\.xml: refusing"):
        load_nvidia_smi_xml(bad)


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# the shared real XML, or in a plain clone the repository's own real XML
REAL = [path.read_bytes() for path in sorted(SHARED.glob("*.xml")) or sorted(OWN.glob("*.xml"))]


def parses_or_refuses(data: bytes) -> None:
    try:
        facts = parse_nvidia_smi_xml(data, "fuzz")
    except NvidiaSmiXmlError as error:
        assert "\n" not in str(error)
    else:
        assert decode(GpuFacts, encode(facts)) == facts


@FUZZ
@given(st.binary(max_size=2000))
def test_fuzz_random_bytes(data: bytes) -> None:
    parses_or_refuses(data)


@FUZZ
@given(st.sampled_from(REAL), st.floats(0.0, 1.0))
def test_fuzz_truncated_real_files(data: bytes, fraction: float) -> None:
    parses_or_refuses(data[: int(len(data) * fraction)])


@FUZZ
@given(st.sampled_from(REAL), st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), max_size=8))
def test_fuzz_byte_flips_in_real_files(data: bytes, flips: list[tuple[float, int]]) -> None:
    mutated = bytearray(data)
    for where, byte in flips:
        mutated[min(int(where * len(mutated)), len(mutated) - 1)] = byte
    parses_or_refuses(bytes(mutated))


@FUZZ
@given(st.sampled_from(REAL), st.floats(0.0, 1.0), st.sampled_from(["N/A", "[Unknown Error]", "-1 MiB", "", "9" * 40]))
def test_fuzz_odd_values_in_real_files(data: bytes, where: float, value: str) -> None:
    text = data.decode()
    start = text.find(">", int(where * len(text)))
    end = text.find("<", start)
    if start != -1 and end != -1:
        text = text[: start + 1] + value + text[end:]
    parses_or_refuses(text.encode())


# --- the live fallback, against fake nvidia-smi executables the tests write -----------------------------


def fake_nvidia_smi(tmp_path: Path, body: str) -> str:
    script = tmp_path / "nvidia-smi"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_live_output_is_parsed(tmp_path: Path) -> None:
    fixture = shared_fixture("nvidia-smi/t4-driver515.105.01.xml")
    executable = fake_nvidia_smi(tmp_path, f'[ "$1 $2" = "-q -x" ] || exit 3\ncat "{fixture}"')
    facts = probe_nvidia_smi(ProbeContext(), executable)
    assert facts.source == "nvidia-smi"
    assert [gpu.name for gpu in facts.gpus] == ["Tesla T4"]


def test_a_failing_nvidia_smi_is_reported_with_its_message(tmp_path: Path) -> None:
    executable = fake_nvidia_smi(
        tmp_path,
        "echo \"NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
        'Make sure that the latest NVIDIA driver is installed and running."\nexit 9',
    )
    with pytest.raises(ProbeError, match=r"exited with status 9: NVIDIA-SMI has failed because it couldn't"):
        probe_nvidia_smi(ProbeContext(), executable)


def test_no_devices_is_a_no_gpu_fact(tmp_path: Path) -> None:
    executable = fake_nvidia_smi(tmp_path, 'echo "No devices were found"\nexit 6')
    facts = probe_nvidia_smi(ProbeContext(), executable)
    assert facts.gpus == () and facts.no_gpu_reason == "nvidia-smi: No devices were found"


def test_a_hanging_nvidia_smi_and_its_children_are_killed_in_time(tmp_path: Path) -> None:
    marker = tmp_path / "still-running"
    executable = fake_nvidia_smi(tmp_path, f"(sleep 3; touch {marker}) &\nsleep 60")
    started = time.perf_counter()
    with pytest.raises(ProbeError, match=r"did not answer within 1 s"):
        probe_nvidia_smi(ProbeContext(), executable, timeout_s=1.0)
    assert time.perf_counter() - started < 2.0
    time.sleep(3.5)
    assert not marker.exists()  # the whole process group died, not only the shell


def test_garbage_output_and_a_missing_executable(tmp_path: Path) -> None:
    with pytest.raises(ProbeError, match="unreadable XML"):
        probe_nvidia_smi(ProbeContext(), fake_nvidia_smi(tmp_path, "echo '<oops>'"))
    with pytest.raises(ProbeError, match="not found"):
        probe_nvidia_smi(ProbeContext(), str(tmp_path / "no-such-nvidia-smi"))
    context = ProbeContext(environ={**os.environ, "PATH": str(tmp_path / "empty")})
    with pytest.raises(ProbeError, match="nvidia-smi not found"):
        probe_nvidia_smi(context)
