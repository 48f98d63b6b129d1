"""The typed knowledge base: frozen records of the profiles/ tables, and the lookups checks need.

Records hold verbatim version strings (for display); lookups compare with ``packaging.version.Version``.
"""

from __future__ import annotations

import datetime
import fnmatch
import re
from dataclasses import dataclass, field
from functools import cache

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from envcheck.facts.common import Unavailable


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a row came from and how sure we are: every row of every table carries one."""

    source: str
    as_of: datetime.date
    confidence: str = "ok"
    note: str | None = None
    verified: str | None = None  # what was re-checked, when, against what


@dataclass(frozen=True, slots=True)
class TorchRelease:
    """One PyTorch release and what shipped with it."""

    version: str
    release_date: datetime.date | None  # None: the sources give no date (see provenance.note)
    python_min: str
    python_max: str
    cuda_variants: tuple[str, ...]  # every cuXY wheel known to exist, e.g. ("cu118", "cu121")
    unlisted_variants: tuple[str, ...]  # of those, the ones missing from pytorch.org's previous-versions page
    rocm_variants: tuple[str, ...]
    pypi_default_cuda: str | None  # None: this release is not on PyPI (1.8.2 LTS)
    cudnn: str  # verbatim; differs per variant
    torchvision: str
    torchaudio: str | None  # None: no matching torchaudio release
    verbatim: tuple[tuple[str, str], ...]  # original reference text of cells that were normalised
    provenance: Provenance
    # other companion releases built for this torch: a same-day fix release, conda's own pairing (2.0.0: 0.15.0/2.0.0)
    also_torchvision: tuple[str, ...] = ()
    also_torchaudio: tuple[str, ...] = ()

    def companions(self, package: str) -> tuple[str, ...]:
        """Every ``torchvision``/``torchaudio`` release made for this torch, the paired one first."""
        paired = self.torchvision if package == "torchvision" else self.torchaudio
        also = self.also_torchvision if package == "torchvision" else self.also_torchaudio
        return ((paired,) if paired else ()) + also


@dataclass(frozen=True, slots=True)
class CudaToolkitUpdate:
    """A later update of a CUDA minor release whose Table 3 minimum driver differs from GA."""

    release: str
    linux_min_driver: str | Unavailable
    windows_min_driver: str | Unavailable


@dataclass(frozen=True, slots=True)
class CudaToolkit:
    """One CUDA major.minor: the driver it needs, and the minor-version-compatibility floor of its major."""

    cuda: str  # "12.1"
    ga_release: str
    linux_min_driver: str | Unavailable
    windows_min_driver: str | Unavailable
    minor_compat_linux_min: str | None  # None: no minor-version compatibility before CUDA 11
    minor_compat_windows_min: str | Unavailable | None
    updates: tuple[CudaToolkitUpdate, ...]
    provenance: Provenance

    @property
    def major(self) -> int:
        return int(self.cuda.split(".")[0])


@dataclass(frozen=True, slots=True)
class WheelArch:
    """The GPU code compiled into the official wheels of a torch range, CUDA variant and platform."""

    torch: str  # PEP 440 specifier, e.g. ">=2.4.0,<2.6"
    variants: tuple[str, ...]
    platform: str  # "linux-x86_64", "linux-aarch64", "windows-x86_64"
    sass: tuple[str, ...]  # ("sm_50", "sm_60", ...): machine code
    ptx: tuple[str, ...]  # ("compute_37",): PTX the driver can JIT for newer GPUs
    verbatim: tuple[tuple[str, str], ...]
    provenance: Provenance
    cuda: str | None = None  # the toolkit the wheels were built with ("10.2"); the oldest of ``variants``
    newest_known: tuple[int, int] | None = None  # the newest architecture that toolkit knows (ArchToolkit rows)

    def matches(self, torch_version: Version, variant: str, platform: str) -> bool:
        return (
            variant in self.variants
            and platform == self.platform
            and _specifier(self.torch).contains(torch_version, prereleases=True)
        )


@cache
def _specifier(text: str) -> SpecifierSet:
    # parsed once per distinct range: arch lookups scan ~100 rows
    return SpecifierSet(text)


@dataclass(frozen=True, slots=True)
class GpuSpec:
    """Specifications of one GPU model as NVML sees it (per device).

    Throughput fields: a number (dense TFLOP/s), None (the GPU has no such unit), or Unavailable (unknown).
    """

    name: str
    variant: str
    segment: str  # datacenter, workstation, consumer, embedded
    nvml_names: tuple[str, ...]
    nvml_patterns: tuple[str, ...]
    compute_capability: tuple[int, int]
    architecture: str
    memory_gb: float | Unavailable
    memory_type: str
    memory_bandwidth_gb_s: float | Unavailable
    fp32_tflops: float | Unavailable
    tf32_tflops: float | Unavailable | None
    bf16_tflops: float | Unavailable | None
    fp16_tflops: float | Unavailable | None
    fp8_tflops: float | Unavailable | None
    tdp_watts: float | Unavailable
    provenance: Provenance
    # GPU-to-GPU links inside one node (docs/recommend.md#communication): NVLink bandwidth per GPU as NVIDIA
    # quotes it (both directions together) where every GPU of an HGX/SXM node is linked, None where the GPU has
    # no NVLink across the node; the host link's PCIe generation (x16). Unavailable: not recorded.
    nvlink_gb_s: float | Unavailable | None
    pcie_gen: int | Unavailable

    @property
    def sm(self) -> str:
        """The SASS name of this GPU's architecture, e.g. ``sm_80`` for compute capability 8.0."""
        return f"sm_{self.compute_capability[0]}{self.compute_capability[1]}"


@dataclass(frozen=True, slots=True)
class GpuFamily:
    """GPUs of one compute capability (profiles/gpu_capabilities.toml): listed names, and a rule for the rest."""

    family: str  # "GeForce RTX 50"
    architecture: str
    compute_capability: tuple[int, int]
    segment: str
    names: tuple[str, ...]  # compared like GpuSpec.nvml_names
    rule: re.Pattern[str]  # searched in the folded name of a GPU the names lack
    provenance: Provenance


WINDOWS_BRANCH_SPAN = 5  # driver branches are numbered five apart (R525, R530, R535)


@dataclass(frozen=True, slots=True)
class DriverCeiling:
    """The last driver branch of a retired GPU architecture: no newer driver loads on its GPUs."""

    architecture: str  # "Kepler"
    compute_capability_min: tuple[int, int]
    compute_capability_max: tuple[int, int]
    last_branch: int  # 470 for R470
    newest_driver: str | Unavailable  # the branch's last release; Unavailable while the branch is maintained
    provenance: Provenance

    def covers(self, compute_capability: tuple[int, int]) -> bool:
        return self.compute_capability_min <= compute_capability <= self.compute_capability_max

    def allows(self, minimum_driver: str, os: str = "linux") -> bool | None:
        """Whether some driver of the last branch or older is at least ``minimum_driver``; None if unparseable.

        A CUDA minimum inside the last branch (470.42.01 for CUDA 11.4) is reachable: branches only grow.
        Windows numbers a branch's releases up to four above it (R470: 471.xx-474.xx, R535: 536.xx-539.xx),
        and branches are five apart, so a Windows minimum below branch + 5 is still inside the branch.
        """
        try:
            major = Version(minimum_driver.strip()).major
        except InvalidVersion:
            return None
        return major < self.last_branch + WINDOWS_BRANCH_SPAN if os == "windows" else major <= self.last_branch

    @property
    def summary(self) -> str:
        """``Kepler GPUs get no driver newer than branch R470 (its last release: 470.256.02)``."""
        newest = f" (its last release: {self.newest_driver})" if isinstance(self.newest_driver, str) else ""
        return f"{self.architecture} GPUs get no driver newer than branch R{self.last_branch}{newest}"


@dataclass(frozen=True, slots=True)
class DriverFloor:
    """The first driver branch that drives an architecture's GPUs: an older driver does not load on them,
    whatever CUDA version a wheel asks for (a GeForce RTX 5090 on R535)."""

    architecture: str  # "Blackwell (GeForce / RTX PRO)"
    compute_capability_min: tuple[int, int]
    compute_capability_max: tuple[int, int]
    first_branch: int  # 570 for R570
    provenance: Provenance

    def covers(self, compute_capability: tuple[int, int]) -> bool:
        return self.compute_capability_min <= compute_capability <= self.compute_capability_max

    def allows(self, driver: str) -> bool | None:
        """Whether ``driver`` is of the first branch or newer; None when it is not a version."""
        try:
            return Version(driver.strip()).major >= self.first_branch
        except InvalidVersion:
            return None

    @property
    def summary(self) -> str:
        """``Blackwell (GeForce / RTX PRO) GPUs need driver branch R570 or newer``."""
        return f"{self.architecture} GPUs need driver branch R{self.first_branch} or newer"


@dataclass(frozen=True, slots=True)
class WorkloadProfile:
    """What a training or inference job needs from a machine; every number is a floor."""

    name: str
    description: str
    parameters: int
    min_gpu_memory_gb: float
    min_total_gpu_memory_gb: float | None  # None: the job runs on one GPU
    dtypes_required: tuple[str, ...]
    min_compute_capability: tuple[int, int]
    min_ram_gb: float
    min_free_disk_gb: float
    min_cpu_cores: int
    activation_memory_per_sample_mb: float | None  # CNNs, at reference_resolution
    reference_resolution: int | None
    reference_sequence_length: int | None
    reference_batch_size: int | None
    provenance: Provenance


def normalise_gpu_name(name: str) -> str:
    """NVML names compared case-insensitively, without the "NVIDIA " prefix newer drivers add."""
    folded = " ".join(name.split()).casefold()
    return folded.removeprefix("nvidia ")


def release_key(version: str) -> Version | None:
    """The release a (possibly local, post or pre) torch version belongs to: ``2.3.1+cu121`` -> 2.3.1."""
    try:
        parsed = Version(version.strip())
    except InvalidVersion:
        return None
    return Version(parsed.base_version)


DECLARATIONS = ("local_tag", "origin_url", "requires_torch", "pinned_by_torch")


@dataclass(frozen=True, slots=True)
class ExtensionRule:
    """One distribution of profiles/compat/extensions.toml: how it declares its build, and how to get one that fits."""

    name: str  # normalised distribution name
    declares: tuple[str, ...]  # of DECLARATIONS, in the order they are read
    builds_from_source: bool  # pip compiles it here: its fix needs nvcc
    compiles_at_runtime: bool  # it runs nvcc when used (DeepSpeed ops)
    wheels: str  # where prebuilt wheels live, for the message
    fix: str  # a template: {python} {torch_release} {torch_mm} {variant} {cuda_major} {abi} {pin}
    provenance: Provenance
    is_imported: bool = True  # False: the torch probe lists it without importing it (triton)


@dataclass(frozen=True, slots=True)
class ImportSignature:
    """An import error line with a known cause (profiles/compat/extensions.toml [[signature]])."""

    pattern: str  # a regular expression searched for in the error line
    cause: str
    provenance: Provenance
    # also searched for in what an import that succeeded printed or warned (`printed = true`): only patterns that
    # mean the extension cannot work, never a line a healthy import prints too
    is_printed: bool = False


@dataclass(frozen=True, slots=True)
class HostCompilerLimit:
    """The newest gcc and clang an nvcc release range accepts (profiles/compat/host_compilers.toml)."""

    cuda_from: tuple[int, int]
    cuda_to: tuple[int, int]
    gcc_max: int | Unavailable
    clang_max: int | Unavailable
    provenance: Provenance

    def covers(self, cuda: tuple[int, int]) -> bool:
        return self.cuda_from <= cuda <= self.cuda_to


NUMPY_PLATFORMS = ("linux", "macos", "windows")


@dataclass(frozen=True, slots=True)
class NumpyAbiFloor:
    """The first torch release whose wheels for one platform were built against NumPy 2 (older ones fail under it)."""

    platform: str  # one of NUMPY_PLATFORMS
    first_torch: str  # "2.4.1"
    provenance: Provenance


@dataclass(frozen=True, slots=True)
class ArchToolkit:
    """The first CUDA toolkit that knows a GPU architecture: wheels built with an older one cannot run on it."""

    compute_capability: tuple[int, int]
    first_cuda: str  # "11.1"
    provenance: Provenance


def newest_arch_known(archs: tuple[ArchToolkit, ...], cuda: str) -> tuple[int, int] | None:
    """The newest compute capability CUDA ``cuda`` ("10.2", "12.4.1") knows; None: no row that old, or no version."""
    try:
        built = Version(cuda.strip())
    except InvalidVersion:
        return None
    known = [a.compute_capability for a in archs if Version(a.first_cuda) <= Version(f"{built.major}.{built.minor}")]
    return max(known) if known else None


@dataclass(frozen=True, slots=True)
class Knowledge:
    """All compatibility tables and GPU specs, loaded once; lookups are pure."""

    torch_releases: tuple[TorchRelease, ...]
    cuda_toolkits: tuple[CudaToolkit, ...]
    wheel_archs: tuple[WheelArch, ...]
    gpus: tuple[GpuSpec, ...]
    root: str  # where the profiles were read from, for messages
    driver_ceilings: tuple[DriverCeiling, ...] = ()
    gpu_families: tuple[GpuFamily, ...] = ()  # compute capability of GPUs without a spec row
    driver_floors: tuple[DriverFloor, ...] = ()
    extensions: tuple[ExtensionRule, ...] = ()
    import_signatures: tuple[ImportSignature, ...] = ()
    host_compilers: tuple[HostCompilerLimit, ...] = ()
    numpy_abi_floors: tuple[NumpyAbiFloor, ...] = ()
    arch_toolkits: tuple[ArchToolkit, ...] = ()  # the first CUDA toolkit of each GPU architecture
    _gpu_index: dict[str, GpuSpec] = field(default_factory=dict, repr=False, compare=False)
    _release_index: dict[Version, TorchRelease] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for gpu in self.gpus:
            for name in gpu.nvml_names:
                self._gpu_index.setdefault(normalise_gpu_name(name), gpu)
        for release in self.torch_releases:
            self._release_index[Version(release.version)] = release

    def gpu_by_name(self, nvml_name: str) -> GpuSpec | None:
        """The GPU NVML names ``nvml_name`` (e.g. ``NVIDIA A100-SXM4-80GB``); exact names win over patterns."""
        key = normalise_gpu_name(nvml_name)
        if key in self._gpu_index:
            return self._gpu_index[key]
        for gpu in self.gpus:
            if any(fnmatch.fnmatchcase(key, normalise_gpu_name(p)) for p in gpu.nvml_patterns):
                return gpu
        return None

    def driver_ceiling(self, compute_capabilities: tuple[tuple[int, int], ...]) -> DriverCeiling | None:
        """The lowest last driver branch among GPUs of these compute capabilities; None: no known ceiling."""
        ceilings = [c for c in self.driver_ceilings for cc in compute_capabilities if c.covers(cc)]
        return min(ceilings, key=lambda ceiling: ceiling.last_branch, default=None)

    def driver_floor(self, compute_capabilities: tuple[tuple[int, int], ...]) -> DriverFloor | None:
        """The highest first driver branch among GPUs of these compute capabilities; None: no floor is known."""
        floors = [f for f in self.driver_floors for cc in compute_capabilities if f.covers(cc)]
        return max(floors, key=lambda floor: floor.first_branch, default=None)

    def extension(self, name: str) -> ExtensionRule | None:
        return next((rule for rule in self.extensions if rule.name == name), None)

    def import_cause(self, error_line: str, is_printed: bool = False) -> ImportSignature | None:
        """The first signature whose pattern occurs in an import error line, or (``is_printed``) in a line an import
        that succeeded printed, among the signatures marked for that."""
        signatures = (s for s in self.import_signatures if s.is_printed or not is_printed)
        return next((s for s in signatures if re.search(s.pattern, error_line)), None)

    def host_compiler_limit(self, cuda: tuple[int, int]) -> HostCompilerLimit | None:
        return next((limit for limit in self.host_compilers if limit.covers(cuda)), None)

    def torch_release(self, version: str) -> TorchRelease | None:
        """The release row for ``version``; local tags, post releases and pre-releases map to their release."""
        key = release_key(version)
        return None if key is None else self._release_index.get(key)

    def cuda_toolkit(self, cuda_version: str) -> CudaToolkit | None:
        """The toolkit row for a CUDA version such as ``12.1``, ``12.1.105`` or ``V12.1.105``."""
        try:
            parsed = Version(cuda_version.strip().lstrip("vV"))
        except InvalidVersion:
            return None
        wanted = f"{parsed.major}.{parsed.minor}"
        return next((t for t in self.cuda_toolkits if t.cuda == wanted), None)

    def arch_list(self, torch_version: str, variant: str, platform: str = "linux-x86_64") -> WheelArch | None:
        """What the official ``torch_version`` wheel for ``variant`` (``cu121``) on ``platform`` was built for.

        The variant may also come from the local tag (``2.3.1+cu121``) when ``variant`` is empty.
        """
        key = release_key(torch_version)
        if key is None:
            return None
        if not variant and "+" in torch_version:
            variant = torch_version.split("+", 1)[1]
        return next((w for w in self.wheel_archs if w.matches(key, variant, platform)), None)
