"""Each foundation check on a snapshot where it must fire and one where it must not."""

from __future__ import annotations

from dataclasses import replace

import pytest

from envcheck.checks.registry import CheckInput, all_checks, run_checks
from envcheck.facts.common import Unavailable
from envcheck.facts.python import InstalledPackage
from envcheck.finding import Finding, Severity, exit_code
from envcheck.snapshot import ProbeRun
from tests import factories
from tests.shared_fixtures import shared_fixture

GIB = factories.GIB


def findings_of(check_id: str, snapshot) -> list[Finding]:  # type: ignore[no-untyped-def]
    (registered,) = [c for c in all_checks() if c.id == check_id]
    return list(registered.run(CheckInput(snapshot)))


def severities(check_id: str, snapshot) -> set[Severity]:  # type: ignore[no-untyped-def]
    return {finding.severity for finding in findings_of(check_id, snapshot)}


def test_a_healthy_machine_has_no_warning_or_failure() -> None:
    findings = run_checks(CheckInput(factories.snapshot()))
    assert [f for f in findings if f.severity in (Severity.WARN, Severity.FAIL)] == []
    assert exit_code(findings) == 0


def test_every_check_skips_with_a_reason_when_its_facts_are_missing() -> None:
    missing = Unavailable("probe failed: permission denied")
    snapshot = factories.snapshot(**{name: missing for name in factories.SECTIONS})
    for finding in run_checks(CheckInput(snapshot)):
        if finding.id in ("install.framework_probe", "gpu.present"):
            continue  # those judge the probe run itself (a crashed torch import, a crashed or hung NVML)
        assert finding.severity is Severity.SKIP, finding
        assert finding.detail


def test_framework_probe_failure_is_a_failure_with_the_error() -> None:
    snapshot = factories.snapshot(framework=Unavailable("the framework probe timed out"))
    snapshot = replace(
        snapshot,
        probes=tuple(
            ProbeRun(r.name, "timeout", 60.0, "timed out after 60 s") if r.name == "framework" else r
            for r in snapshot.probes
        ),
    )
    (finding,) = findings_of("install.framework_probe", snapshot)
    assert finding.severity is Severity.FAIL and "timed out" in finding.title
    assert severities("install.framework_probe", factories.snapshot()) == {Severity.OK}


def test_torch_missing_warns_and_broken_import_fails_with_the_error() -> None:
    missing = factories.framework(is_torch_installed=False, torch=None)
    assert severities("install.torch_importable", factories.snapshot(framework=missing)) == {Severity.WARN}
    broken = factories.framework(
        torch=None, import_error="OSError: libcudnn.so.9: cannot open shared object file", import_traceback_tail="..."
    )
    (finding,) = findings_of("install.torch_importable", factories.snapshot(framework=broken))
    assert finding.severity is Severity.FAIL and "libcudnn.so.9" in finding.title
    assert severities("install.torch_importable", factories.snapshot()) == {Severity.OK}


def test_smoke_test_failure_names_the_device_and_error() -> None:
    device = factories.torch().devices[0]
    bad = replace(device, smoke_test=factories.smoke(False, "no kernel image is available for execution on the device"))
    snapshot = factories.snapshot(framework=factories.framework(torch=factories.torch(devices=(bad,))))
    (finding,) = findings_of("install.smoke_test", snapshot)
    assert finding.severity is Severity.FAIL
    assert "GPU 0" in finding.title and "no kernel image" in finding.title
    assert severities("install.smoke_test", factories.snapshot()) == {Severity.OK}


def test_two_torch_installs_warn() -> None:
    packages = (*factories.python().packages, InstalledPackage("torch", "2.1.0", "/home/ada/.local/lib/python3.11"))
    snapshot = factories.snapshot(python=factories.python(packages=packages))
    assert severities("install.duplicate_torch", snapshot) == {Severity.WARN}
    assert severities("install.duplicate_torch", factories.snapshot()) == {Severity.OK}


@pytest.mark.parametrize(
    ("name", "version", "fires"),
    [
        ("nvidia-ml-py3", "7.352.0", True),
        ("pynvml", "11.5.0", True),
        ("pynvml", "9.0", True),
        ("pynvml", "12.0.0", False),
        ("nvidia-ml-py", "12.550.52", False),
    ],
)
def test_deprecated_nvml_binding(name: str, version: str, fires: bool) -> None:
    snapshot = factories.snapshot(python=factories.python(packages=(InstalledPackage(name, version, factories.SITE),)))
    assert severities("install.nvml_binding", snapshot) == ({Severity.WARN} if fires else {Severity.OK})


def test_docker_default_shm_warns() -> None:
    small = factories.snapshot(storage=factories.storage(shm_total_bytes=64 * 1024**2))
    (finding,) = findings_of("system.shm_size", small)
    assert finding.severity is Severity.WARN and "64.0 MiB" in finding.title and "--shm-size" in (finding.fix or "")
    assert severities("system.shm_size", factories.snapshot()) == {Severity.OK}


def test_cpu_quota_without_thread_settings_warns_and_with_them_passes() -> None:
    limited = factories.cpu(cgroup_quota_cpus=4.0, usable_cpus=4.0)
    (finding,) = findings_of("system.cpu_quota", factories.snapshot(cpu=limited))
    assert finding.severity is Severity.WARN and "OMP_NUM_THREADS=4" in (finding.fix or "")
    configured = factories.snapshot(cpu=limited, environment=factories.environment(OMP_NUM_THREADS="4"))
    assert severities("system.cpu_quota", configured) == {Severity.OK}


def test_low_open_file_limit_warns() -> None:
    assert severities("system.open_files", factories.snapshot(system=factories.system(open_files_limit=1024))) == {
        Severity.WARN
    }
    assert severities("system.open_files", factories.snapshot(system=factories.system(open_files_limit=None))) == {
        Severity.OK
    }


def test_root_in_container_is_information() -> None:
    inside = factories.system(is_root=True, container="docker", container_evidence=("/.dockerenv",))
    assert severities("system.root_in_container", factories.snapshot(system=inside)) == {Severity.INFO}
    assert severities("system.root_in_container", factories.snapshot(system=factories.system(is_root=True))) == {
        Severity.OK
    }


def test_low_ram_without_swap_warns_and_a_cgroup_limit_counts() -> None:
    low = factories.memory(total_bytes=8 * GIB, available_bytes=2 * GIB)
    assert severities("memory.low_ram_no_swap", factories.snapshot(memory=low)) == {Severity.WARN}
    limited = factories.memory(cgroup_limit_bytes=3 * GIB)
    assert severities("memory.low_ram_no_swap", factories.snapshot(memory=limited)) == {Severity.WARN}
    swapped = replace(low, swap_total_bytes=16 * GIB, swap_free_bytes=16 * GIB)
    assert severities("memory.low_ram_no_swap", factories.snapshot(memory=swapped)) == {Severity.OK}


def test_cgroup_limit_far_below_ram_is_noted() -> None:
    limited = factories.memory(cgroup_limit_bytes=64 * GIB)
    assert severities("memory.cgroup_limit", factories.snapshot(memory=limited)) == {Severity.INFO}
    assert severities("memory.cgroup_limit", factories.snapshot()) == {Severity.OK}


def test_free_space_warns_and_fails_by_threshold() -> None:
    def with_free(free: int):  # type: ignore[no-untyped-def]
        return factories.snapshot(storage=factories.storage(locations=(factories.location(free_bytes=free),)))

    assert severities("storage.free_space", with_free(10 * GIB)) == {Severity.WARN}
    assert severities("storage.free_space", with_free(1 * GIB)) == {Severity.FAIL}
    assert severities("storage.free_space", with_free(100 * GIB)) == {Severity.OK}


def test_read_only_cache_warns_once_and_reports_no_ok() -> None:
    read_only = factories.location("hf_cache", "/models/hf", is_read_only=True)
    snapshot = factories.snapshot(storage=factories.storage(locations=(factories.location(), read_only)))
    assert severities("storage.read_only", snapshot) == {Severity.WARN}
    assert severities("storage.read_only", factories.snapshot()) == {Severity.OK}


def test_caches_on_hdd_warn_and_on_nfs_are_noted() -> None:
    hdd = factories.location("hf_cache", "/data/hf", media="hdd", block_device="sda")
    nfs = factories.location(
        "torch_cache", "/nfs/torch", filesystem="nfs4", is_network_filesystem=True, media="network", block_device=None
    )
    snapshot = factories.snapshot(storage=factories.storage(locations=(hdd, nfs)))
    assert severities("storage.slow_media", snapshot) == {Severity.WARN, Severity.INFO}
    assert severities("storage.slow_media", factories.snapshot()) == {Severity.OK}


def test_exit_codes() -> None:
    warn = [Finding("x.y", Severity.WARN, "w")]
    fail = [Finding("x.y", Severity.FAIL, "f")]
    assert exit_code(warn) == 0
    assert exit_code(warn, strict=True) == 1
    assert exit_code(fail) == 1
    assert exit_code([]) == 0


def test_no_gpu_is_a_note_with_the_reason_and_a_hung_probe_fails() -> None:
    (finding,) = findings_of("gpu.present", factories.snapshot())
    assert finding.severity is Severity.INFO and "libnvidia-ml.so.1" in finding.title
    hung = factories.snapshot(gpu=Unavailable("the gpu probe timed out after 15 s"))
    hung = replace(
        hung,
        probes=tuple(ProbeRun(r.name, "timeout", 15.0, "timed out") if r.name == "gpu" else r for r in hung.probes),
    )
    (finding,) = findings_of("gpu.present", hung)
    assert finding.severity is Severity.FAIL and "xid" in (finding.fix or "").lower()


def test_gpus_seen_pass() -> None:
    from envcheck.probes.nvidia_smi import load_nvidia_smi_xml

    xml = shared_fixture("nvidia-smi/t4-driver515.105.01.xml")
    (finding,) = findings_of("gpu.present", factories.snapshot(gpu=load_nvidia_smi_xml(xml)))
    assert finding.severity is Severity.OK and "Tesla T4" in finding.title


def test_every_check_area_has_a_title() -> None:
    from envcheck.finding import AREA_TITLES

    assert {registered.area for registered in all_checks()} <= set(AREA_TITLES)
