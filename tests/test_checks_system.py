"""System, memory and storage checks: over snapshots built from recorded host trees, and hand-built scenarios.

The host-tree table pins every finding that is not ok, so a new false alarm on these machines fails here.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from envcheck.checks.registry import CheckInput, all_checks, run_checks
from envcheck.facts.gpu import GpuFacts
from envcheck.finding import Finding, Severity
from envcheck.probes.nvidia_smi import load_nvidia_smi_xml
from envcheck.probes.storage import probe_storage
from envcheck.probes.system import probe_system
from envcheck.snapshot import Snapshot
from tests import factories
from tests.test_probe_storage import HOSTS, MIB, FakeFilesystem, context_of

GIB = factories.GIB
H100_XML = Path(__file__).parent / "fixtures/nvidia-smi/h100-sxm5-80gb-x8-driver550.54.15-foreign-processes.xml"

# The same fakes as tests/test_probe_storage.py uses for these trees: what each machine's disks held.
HOST_CASES: dict[str, tuple[dict[str, str], tuple[str, ...], FakeFilesystem]] = {
    "ubuntu2204-baremetal-nvme-hdd-nfs": (
        {"HOME": "/home/ada"},
        ("/mnt/imagenet ro/train",),
        FakeFilesystem(
            cwd="/data/ada/project",
            existing={"/data/ada/project", "/home/ada/.cache/huggingface/hub", "/tmp", "/mnt/imagenet ro/train"},
            usage={"/": (1800 * GIB, 900 * GIB), "/data": (7450 * GIB, 2100 * GIB), "/home": (50000 * GIB, 1 * GIB)},
        ),
    ),
    "docker-cuda-ubuntu2204-on-ec2-g5": (
        {"HOME": "/root"},
        (),
        FakeFilesystem(
            cwd="/workspace",
            existing={"/workspace", "/root", "/tmp"},
            usage={
                "/": (484 * GIB, 402 * GIB),
                "/workspace": (233 * GIB, 230 * GIB),
                str(HOSTS / "docker-cuda-ubuntu2204-on-ec2-g5" / "dev/shm"): (64 * MIB, 64 * MIB),
            },
        ),
    ),
    "k8s-pod-debian12-on-gke": (
        {"HOME": "/home/trainer", "HF_HOME": "/data/hf", "TORCH_HOME": "/data/torch", "KUBERNETES_SERVICE_HOST": "x"},
        (),
        FakeFilesystem(cwd="/data", existing={"/data/hf"}, usage={"/": (95 * GIB, 60 * GIB)}),
    ),
    "wsl2-ubuntu2204": (
        {"HOME": "/home/ada"},
        (),
        FakeFilesystem(
            cwd="/mnt/c/Users/ada/datasets",
            existing={"/mnt/c/Users/ada/datasets", "/home/ada"},
            usage={"/": (1007 * GIB, 950 * GIB)},
        ),
    ),
}

EXPECTED: dict[str, set[tuple[str, str, str]]] = {
    "ubuntu2204-baremetal-nvme-hdd-nfs": {
        # /home is an NFS share with 1 GiB left: home and both caches live there, reported once
        ("storage.free_space", "fail", "only 1.0 GiB free on /home (home, torch_cache, hf_cache)"),
        ("storage.slow_media", "info", "torch_cache (/home/ada/.cache/torch) is on a network filesystem (nfs4)"),
        ("storage.slow_media", "info", "hf_cache (/home/ada/.cache/huggingface/hub) is on a network filesystem (nfs4)"),
        ("storage.slow_media", "warn", "user (/mnt/imagenet ro/train) is on a rotational disk (sda)"),
        # the read-only dataset mount is not flagged: datasets are read; cwd on the HDD is not flagged either
        ("system.shm_size", "skip", "/dev/shm size not checked"),
    },
    "docker-cuda-ubuntu2204-on-ec2-g5": {
        ("system.shm_size", "warn", "/dev/shm is 64.0 MiB: DataLoader workers will crash with a bus error"),
        ("system.root_in_container", "info", "running as root inside a docker container"),
    },
    "k8s-pod-debian12-on-gke": {
        ("system.shm_size", "skip", "/dev/shm size not checked"),
        ("system.root_in_container", "info", "running as root inside a kubernetes container"),
    },
    "wsl2-ubuntu2204": {
        ("storage.slow_media", "info", "cwd (/mnt/c/Users/ada/datasets) is on a network filesystem (9p)"),
        ("system.shm_size", "skip", "/dev/shm size not checked"),
    },
}


def host_snapshot(tree: str) -> Snapshot:
    environ, paths, filesystem = HOST_CASES[tree]
    context = context_of(HOSTS / tree, environ, paths)
    system = probe_system(context)
    # is_root and the open-file limit come from the process running the test: pin them as the machine had.
    system = replace(system, is_root=system.container is not None, open_files_limit=1048576)
    return factories.snapshot(system=system, storage=probe_storage(context, filesystem))


@pytest.mark.parametrize("tree", sorted(HOST_CASES))
def test_host_trees_give_exactly_the_expected_system_and_storage_findings(tree: str) -> None:
    findings = run_checks(CheckInput(host_snapshot(tree)), only_areas=("system", "storage"))
    assert {(f.id, f.severity.value, f.title) for f in findings if f.severity is not Severity.OK} == EXPECTED[tree]


def findings_of(check_id: str, snapshot: Snapshot) -> list[Finding]:
    (registered,) = [c for c in all_checks() if c.id == check_id]
    return list(registered.run(CheckInput(snapshot)))


def h100() -> GpuFacts:
    return load_nvidia_smi_xml(H100_XML)  # 8 x 79.6 GiB = 637 GiB of GPU memory


def test_ram_smaller_than_gpu_memory_warns_and_names_the_container_limit() -> None:
    (small,) = findings_of(
        "memory.ram_for_gpus", factories.snapshot(gpu=h100(), memory=factories.memory(total_bytes=512 * GIB))
    )
    assert small.severity is Severity.WARN
    assert small.title == "RAM is 512.0 GiB, less than the 637.2 GiB of memory on 8 GPU(s)"
    assert "torch.load" in small.detail and small.fix is not None and "mmap=True" in small.fix
    limited = factories.memory(cgroup_limit_bytes=256 * GIB)
    (capped,) = findings_of("memory.ram_for_gpus", factories.snapshot(gpu=h100(), memory=limited))
    assert capped.severity is Severity.WARN and capped.title.startswith("the container's memory limit is 256.0 GiB")
    (enough,) = findings_of("memory.ram_for_gpus", factories.snapshot(gpu=h100()))  # 1 TiB of RAM
    assert enough.severity is Severity.OK
    (no_gpu,) = findings_of("memory.ram_for_gpus", factories.snapshot())
    assert no_gpu.severity is Severity.OK


def test_cpu_quota_fix_sizes_threads_and_workers_per_gpu_process() -> None:
    quota = factories.cpu(cgroup_quota_cpus=16.0, usable_cpus=16.0)
    (alone,) = findings_of("system.cpu_quota", factories.snapshot(cpu=quota, environment=factories.environment()))
    assert alone.severity is Severity.WARN
    assert alone.fix is not None and alone.fix.startswith(
        "export OMP_NUM_THREADS=16 and use DataLoader(num_workers=15);"
    )
    shared = factories.snapshot(cpu=replace(quota, usable_cpus=16.0), gpu=h100(), environment=factories.environment())
    (per_gpu,) = findings_of("system.cpu_quota", shared)
    assert per_gpu.fix is not None
    assert (
        "OMP_NUM_THREADS=2 and use DataLoader(num_workers=1) per process (8 GPU processes sharing 16 CPUs)"
        in per_gpu.fix
    )
    (full,) = findings_of("system.cpu_quota", factories.snapshot())
    assert full.severity is Severity.OK


def test_read_only_dataset_is_fine_but_a_read_only_working_directory_is_not() -> None:
    dataset = factories.location("user", "/datasets/imagenet", is_read_only=True)
    fine = factories.snapshot(storage=factories.storage(locations=(factories.location(), dataset)))
    assert {f.severity for f in findings_of("storage.read_only", fine)} == {Severity.OK}
    cwd = factories.location(is_read_only=True)
    broken = factories.snapshot(storage=factories.storage(locations=(cwd,)))
    assert {f.severity for f in findings_of("storage.read_only", broken)} == {Severity.WARN}


def test_free_space_reports_each_filesystem_once() -> None:
    findings = findings_of("storage.free_space", factories.snapshot())
    assert [f.title for f in findings] == ["900.0 GiB free on / (cwd, home, tmp, torch_cache, hf_cache)"]
