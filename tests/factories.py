"""Hand-built facts of a healthy Linux training box, for check and renderer tests (no mocks).

Tests derive scenarios with dataclasses.replace(), so each test states only what differs.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from envcheck.facts.common import Unavailable
from envcheck.facts.cpu import CpuFacts
from envcheck.facts.environment import EnvironmentFacts, EnvironmentVariable
from envcheck.facts.framework import Extension, FrameworkFacts, SmokeTest, TorchDevice, TorchFacts
from envcheck.facts.gpu import GpuFacts, no_gpu_facts
from envcheck.facts.memory import MemoryFacts
from envcheck.facts.network import HcaPort, NetworkFacts, NetworkInterface, nccl_selections
from envcheck.facts.python import InstalledPackage, PythonFacts
from envcheck.facts.storage import StorageFacts, StorageLocation
from envcheck.facts.system import SystemFacts
from envcheck.facts.toolchain import Tool, ToolchainFacts, ToolkitFolder
from envcheck.snapshot import SECTIONS, ProbeRun, Snapshot
from tests.shared_fixtures import shared_fixture

GIB = 1024**3
SITE = "/opt/venv/lib/python3.11/site-packages"


def system(**changes: Any) -> SystemFacts:
    facts = SystemFacts(
        os_name="Linux",
        distribution="Ubuntu 22.04.4 LTS",
        kernel="5.15.0-105-generic",
        architecture="x86_64",
        hostname="gpu-node-17",
        libc="glibc 2.35",
        container=None,
        container_evidence=(),
        is_wsl=False,
        virtualization=None,
        uptime_s=86400.0 * 12,
        is_root=False,
        open_files_limit=1048576,
    )
    return replace(facts, **changes)


def cpu(**changes: Any) -> CpuFacts:
    facts = CpuFacts(
        vendor="AuthenticAMD",
        model="AMD EPYC 7763 64-Core Processor",
        architecture="x86_64",
        physical_cores=64,
        logical_cores=128,
        affinity_cpus=128,
        cgroup_quota_cpus=None,
        usable_cpus=128.0,
        frequency_current_mhz=2450.0,
        frequency_max_mhz=3529.0,
        isa_flags=("avx", "avx2", "fma", "f16c"),
        numa_nodes=2,
    )
    return replace(facts, **changes)


def memory(**changes: Any) -> MemoryFacts:
    facts = MemoryFacts(
        total_bytes=1024 * GIB,
        available_bytes=980 * GIB,
        swap_total_bytes=0,
        swap_free_bytes=0,
        cgroup_limit_bytes=None,
        cgroup_usage_bytes=None,
    )
    return replace(facts, **changes)


def location(role: str = "cwd", path: str = "/home/ada/project", **changes: Any) -> StorageLocation:
    facts = StorageLocation(
        role=role,
        path=path,
        exists=True,
        measured_path=path,
        mount_point="/",
        filesystem="ext4",
        is_network_filesystem=False,
        is_read_only=False,
        total_bytes=1800 * GIB,
        free_bytes=900 * GIB,
        device="/dev/nvme0n1p2",
        block_device="nvme0n1",
        media="nvme",
    )
    return replace(facts, **changes)


def storage(**changes: Any) -> StorageFacts:
    facts = StorageFacts(
        locations=(
            location(),
            location("home", "/home/ada"),
            location("tmp", "/tmp"),
            location("torch_cache", "/home/ada/.cache/torch"),
            location("hf_cache", "/home/ada/.cache/huggingface"),
        ),
        shm_total_bytes=512 * GIB,
        shm_free_bytes=511 * GIB,
    )
    return replace(facts, **changes)


def python(**changes: Any) -> PythonFacts:
    facts = PythonFacts(
        executable="/opt/venv/bin/python",
        version="3.11.9",
        implementation="CPython",
        prefix="/opt/venv",
        virtualenv="/opt/venv",
        conda_env=None,
        pip_version="24.0",
        packages=(
            InstalledPackage("torch", "2.3.1", SITE),
            InstalledPackage("torchvision", "0.18.1", SITE),
            InstalledPackage("numpy", "1.26.4", SITE),
            InstalledPackage("nvidia-ml-py", "12.550.52", SITE),
        ),
        is_user_site_enabled=False,
    )
    return replace(facts, **changes)


def environment(**variables: str) -> EnvironmentFacts:
    return EnvironmentFacts(
        variables=tuple(EnvironmentVariable(name, value, False) for name, value in sorted(variables.items()))
    )


def interface(name: str, speed_mbit_s: int | None = 25000, **changes: Any) -> NetworkInterface:
    """A physical Ethernet interface that is up; speed None: the driver gives none (virtio)."""
    speed: int | Unavailable = speed_mbit_s if speed_mbit_s is not None else Unavailable("the driver reports none")
    facts = NetworkInterface(name, "ethernet", False, "up", True, speed, 9000, "mlx5_core")
    return replace(facts, **changes)


def hca_port(hca: str, port: int = 1, rate_gbit_s: float = 400.0, **changes: Any) -> HcaPort:
    """An active InfiniBand port at RATE (400: NDR)."""
    rate = {400.0: "400 Gb/sec (4X NDR)", 200.0: "200 Gb/sec (4X HDR)", 100.0: "100 Gb/sec (4X EDR)"}
    facts = HcaPort(hca, port, "ACTIVE", True, "LinkUp", "InfiniBand", rate.get(rate_gbit_s, f"{rate_gbit_s:g} Gb/sec"),
                    rate_gbit_s, ())  # fmt: skip
    return replace(facts, **changes)


def network(
    interfaces: tuple[NetworkInterface, ...] | Unavailable | None = None,
    hca_ports: tuple[HcaPort, ...] | Unavailable = (),
    **variables: str,
) -> NetworkFacts:
    """A node's network: lo and eth0 (25 GbE) unless given, its HCA ports, and the NCCL variables matched to them."""
    if interfaces is None:
        interfaces = (interface("eth0"), NetworkInterface("lo", "loopback", True, "unknown", True,
                                                          Unavailable("none"), 65536, None))  # fmt: skip
    return NetworkFacts(interfaces, hca_ports, nccl_selections(variables, interfaces, hca_ports))


def smoke(passed: bool = True, error: str | None = None) -> SmokeTest:
    return SmokeTest(passed=passed, max_abs_error=None if error else 1e-6, error=error, duration_s=0.01)


def torch(**changes: Any) -> TorchFacts:
    facts = TorchFacts(
        version="2.3.1+cu121",
        cuda_version="12.1",
        hip_version=None,
        cudnn_version=8902,
        nccl_version="2.20.5",
        is_cuda_available=True,
        cuda_error=None,
        is_mps_available=False,
        device_count=1,
        arch_list=("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"),
        devices=(TorchDevice(0, "NVIDIA A100-SXM4-80GB", "8.0", 80 * GIB, 108, smoke()),),
        cpu_smoke_test=smoke(),
        location=f"{SITE}/torch",
        import_duration_s=1.8,
        cxx11_abi=False,  # torch's pip wheels before 2.7 use the pre-C++11 ABI
    )
    return replace(facts, **changes)


def framework(**changes: Any) -> FrameworkFacts:
    facts = FrameworkFacts(
        interpreter="/opt/venv/bin/python",
        python_version="3.11.9",
        is_torch_installed=True,
        torch=torch(),
        import_error=None,
        import_traceback_tail=None,
        extensions=(),
    )
    return replace(facts, **changes)


def extension(name: str, version: str, **changes: Any) -> Extension:
    """An installed extension that imported, with nothing in its metadata unless `changes` say so."""
    facts = Extension(
        name=name,
        version=version,
        location=SITE,
        wheel_tags=("cp311-cp311-linux_x86_64",),
        requires_torch=(),
        pinned_by_torch=None,
        origin_url=None,
        import_error=None,
        import_duration_s=0.4,
    )
    return replace(facts, **changes)


def tool(path: str, version: str) -> Tool:
    return Tool(path=path, resolved_path=path, version=version)


def toolchain(**changes: Any) -> ToolchainFacts:
    """A machine with no CUDA toolkit, gcc/g++ 11.4 and ninja: what a pip-wheels-only box has."""
    facts = ToolchainFacts(
        nvcc=None,
        toolkits=(),
        gcc=tool("/usr/bin/gcc", "11.4.0"),
        gxx=tool("/usr/bin/g++", "11.4.0"),
        clang=None,
        ninja=tool(f"{SITE}/../../../bin/ninja", "1.11.1"),
    )
    return replace(facts, **changes)


def toolkit(path: str, version: str, resolved_path: str | None = None) -> ToolkitFolder:
    return ToolkitFolder(path=path, resolved_path=resolved_path or path, version=version, has_nvcc=True)


def gpu() -> GpuFacts:
    return no_gpu_facts("nvml", "no NVIDIA driver: libnvidia-ml.so.1 not found")


def snapshot(**sections: Any) -> Snapshot:
    """A healthy machine; pass a section's facts (or an Unavailable) to change it."""
    defaults: dict[str, Any] = {
        "system": system(),
        "cpu": cpu(),
        "memory": memory(),
        "storage": storage(),
        "python": python(),
        "environment": environment(CUDA_VISIBLE_DEVICES="0"),
        "network": network(),
        "framework": framework(),
        "gpu": gpu(),
        "toolchain": toolchain(),
    }
    defaults.update(sections)
    runs = tuple(
        ProbeRun(
            name,
            "ok" if not isinstance(defaults[name], Unavailable) else "failed",
            0.05,
            None if not isinstance(defaults[name], Unavailable) else defaults[name].reason,
        )
        for name in SECTIONS
    )
    return Snapshot(
        envcheck_version="0.1.0",
        created_at="2026-11-28T12:00:00+00:00",
        source="live",
        is_redacted=True,
        probes=runs,
        **defaults,
    )


# --- GPU machines from real fixtures (nvidia-smi XML, NVML recordings) combined with a torch install ---

FIXTURES = Path(__file__).parent / "fixtures"


def nvidia_smi_gpu(machine: str) -> GpuFacts:
    """GPU facts imported from `<machine>.xml` in tests/fixtures/nvidia-smi or the shared real XML fixtures."""
    from envcheck.probes.nvidia_smi import load_nvidia_smi_xml

    local = FIXTURES / "nvidia-smi" / f"{machine}.xml"
    return load_nvidia_smi_xml(local if local.exists() else shared_fixture(f"nvidia-smi/{machine}.xml"))


def nvml_gpu(machine: str, **values: Any) -> GpuFacts:
    """GPU facts from replaying tests/fixtures/nvml/<machine>.json, with calls overridden (`driver_version=...`)."""
    from envcheck.probes.context import ProbeContext
    from envcheck.probes.nvml import probe_gpu
    from envcheck.probes.nvml.replay import load_recording

    recording = load_recording(FIXTURES / "nvml" / f"{machine}.json")
    for call, value in values.items():
        recording = recording.with_value(call, value)
    return probe_gpu(ProbeContext(), recording.backend())


def torch_on(gpu_facts: GpuFacts, **changes: Any) -> TorchFacts:
    """A torch whose devices are the machine's GPUs (name, compute capability, memory from the GPU facts)."""
    devices = tuple(
        TorchDevice(
            gpu_.index,
            gpu_.name,
            gpu_.compute_capability,
            gpu_.memory_total_bytes,
            Unavailable("not in the GPU facts"),
            smoke(),
        )
        for gpu_ in gpu_facts.gpus
    )
    return torch(devices=devices, device_count=len(devices), **changes)


def packages(**versions: str) -> tuple[InstalledPackage, ...]:
    """Installed packages by name (underscores for dashes): packages(torch="2.3.1", numpy="1.26.4")."""
    return tuple(InstalledPackage(name.replace("_", "-"), version, SITE) for name, version in versions.items())


def gpu_machine(gpu_facts: GpuFacts, torch_facts: TorchFacts | None = None, **sections: Any) -> Snapshot:
    """A healthy snapshot on these GPUs; torch 2.3.1+cu121 on them unless `torch_facts` says otherwise."""
    installed = torch_facts or torch_on(gpu_facts)
    defaults: dict[str, Any] = {"gpu": gpu_facts, "framework": framework(torch=installed)}
    defaults.update(sections)
    return snapshot(**defaults)
