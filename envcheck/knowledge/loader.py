"""Reading profiles/ into the typed model: find the data, parse TOML, validate every row.

In an installed wheel the data is ``envcheck/profiles`` (pyproject force-includes the top-level
``profiles/`` there); in a source checkout it is the repository's ``profiles/``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TypeVar

from packaging.version import Version

import envcheck
from envcheck.facts.common import Unavailable
from envcheck.input_files import CONFIG_LIMIT, InputError, load_toml_file
from envcheck.knowledge.errors import KnowledgeError
from envcheck.knowledge.model import (
    DECLARATIONS,
    NUMPY_PLATFORMS,
    ArchToolkit,
    CudaToolkit,
    CudaToolkitUpdate,
    DriverCeiling,
    DriverFloor,
    ExtensionRule,
    GpuFamily,
    GpuSpec,
    HostCompilerLimit,
    ImportSignature,
    Knowledge,
    NumpyAbiFloor,
    TorchRelease,
    WheelArch,
    WorkloadProfile,
    newest_arch_known,
    normalise_gpu_name,
)
from envcheck.knowledge.rows import Row
from envcheck.knowledge.rules import cuda_of_variant
from envcheck.validation import quoted

T = TypeVar("T")
CUDA_VARIANT = r"cu\d{2,3}"
ROCM_VARIANT = r"rocm\d+(\.\d+)*"
COMPANION_VERSION = r"\d+\.\d+\.\d+"
PLATFORMS = ("linux-x86_64", "linux-aarch64", "windows-x86_64")
SEGMENTS = ("datacenter", "workstation", "consumer", "embedded")
MAX_PCIE_GENERATION = 6
DTYPES = ("fp32", "tf32", "fp16", "bf16", "fp8", "int8", "int4")


def profiles_root(override: Path | None = None) -> Path:
    """The directory holding the profiles: ``override``, the wheel's ``envcheck/profiles``, or the checkout's."""
    if override is not None:
        return override
    packaged = resources.files("envcheck") / "profiles"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(envcheck.__file__).resolve().parent.parent / "profiles"


def _read(path: Path, label: str) -> dict[str, object]:
    try:
        return load_toml_file(path, CONFIG_LIMIT, label)
    except InputError as error:  # the knowledge layer raises its own error, with the same one line
        raise KnowledgeError(str(error)) from None


def _table(root: Path, relative: str, kind: str, build: Callable[[Row], T]) -> tuple[T, ...]:
    label = f"{root.name}/{relative}"
    document = _read(root / relative, label)
    rows = document.get(kind)
    if not isinstance(rows, list) or not rows:
        raise KnowledgeError(f"{label}: {kind}: expected a non-empty array of tables [[{kind}]]")
    return tuple(build(Row(label, f"{kind}[{index}]", data)) for index, data in enumerate(rows))


def _release(row: Row) -> TorchRelease:
    row.only(
        (
            "version",
            "release_date",
            "python_min",
            "python_max",
            "cuda_variants",
            "unlisted_variants",
            "rocm_variants",
            "unlisted_rocm_variants",
            "pypi_default_cuda",
            "cudnn",
            "torchvision",
            "torchaudio",
            "also_torchvision",
            "also_torchaudio",
        )
    )
    variants = row.texts("cuda_variants", CUDA_VARIANT)
    unlisted = row.texts("unlisted_variants", CUDA_VARIANT, required=False)
    if not set(unlisted) <= set(variants):
        row.fail("unlisted_variants", "every unlisted variant must also be in cuda_variants")
    row.texts("unlisted_rocm_variants", ROCM_VARIANT, required=False)
    return TorchRelease(
        version=row.version("version"),
        release_date=row.optional_date("release_date"),
        python_min=row.version("python_min"),
        python_max=row.version("python_max"),
        cuda_variants=variants,
        unlisted_variants=unlisted,
        rocm_variants=row.texts("rocm_variants", ROCM_VARIANT),
        pypi_default_cuda=row.optional_version("pypi_default_cuda"),
        cudnn=row.text("cudnn"),
        torchvision=row.version("torchvision"),
        torchaudio=row.optional_version("torchaudio"),
        also_torchvision=row.texts("also_torchvision", COMPANION_VERSION, required=False),
        also_torchaudio=row.texts("also_torchaudio", COMPANION_VERSION, required=False),
        verbatim=row.verbatim(),
        provenance=row.provenance(),
    )


def _update(row: Row) -> CudaToolkitUpdate:
    row.only(("release", "linux_min_driver", "windows_min_driver"))
    return CudaToolkitUpdate(row.text("release"), row.driver("linux_min_driver"), row.driver("windows_min_driver"))


def _toolkit(row: Row) -> CudaToolkit:
    row.only(
        (
            "cuda",
            "ga_release",
            "linux_min_driver",
            "windows_min_driver",
            "minor_compat_linux_min",
            "minor_compat_windows_min",
            "updates",
        )
    )
    cuda = row.version("cuda")
    updates = row.data.get("updates", [])
    if not isinstance(updates, list):
        row.fail("updates", "expected an array of tables")
    compat_linux = row.optional_driver("minor_compat_linux_min")
    if isinstance(compat_linux, Unavailable):
        row.fail("minor_compat_linux_min", 'expected a driver version ("?" is not allowed: it is the rule)')
    return CudaToolkit(
        cuda=cuda,
        ga_release=row.text("ga_release"),
        linux_min_driver=row.driver("linux_min_driver"),
        windows_min_driver=row.driver("windows_min_driver"),
        minor_compat_linux_min=compat_linux if isinstance(compat_linux, str) else None,
        minor_compat_windows_min=row.optional_driver("minor_compat_windows_min"),
        updates=tuple(_update(Row(row.label, f"{row.where}.updates[{i}]", u)) for i, u in enumerate(updates)),
        provenance=row.provenance(),
    )


def _wheel(row: Row) -> WheelArch:
    row.only(("torch", "variants", "platform", "sass", "ptx"))
    platform = row.text("platform")
    if platform not in PLATFORMS:
        row.fail("platform", f"expected one of {', '.join(PLATFORMS)}, got {quoted(platform)}")
    return WheelArch(
        torch=row.specifier("torch"),
        variants=row.texts("variants", CUDA_VARIANT),
        platform=platform,
        sass=row.texts("sass", r"sm_\d{2,3}"),
        ptx=row.texts("ptx", r"compute_\d{2,3}"),
        verbatim=row.verbatim(),
        provenance=row.provenance(),
    )


def _arch_toolkit(row: Row) -> ArchToolkit:
    row.only(("compute_capability", "first_cuda"))
    return ArchToolkit(row.compute_capability("compute_capability"), row.version("first_cuda"), row.provenance())


def _with_toolkit(wheel: WheelArch, archs: tuple[ArchToolkit, ...]) -> WheelArch:
    """The wheel row with its toolkit and the newest architecture that toolkit knows (None: no row that old)."""
    versions = [cuda for variant in wheel.variants if (cuda := cuda_of_variant(variant)) is not None]
    if not versions:
        return wheel
    cuda = min(versions, key=Version)
    return replace(wheel, cuda=cuda, newest_known=newest_arch_known(archs, cuda))


def _ceiling(row: Row) -> DriverCeiling:
    row.only(("architecture", "compute_capability_min", "compute_capability_max", "last_branch", "newest_driver"))
    lowest, highest = row.compute_capability("compute_capability_min"), row.compute_capability("compute_capability_max")
    if lowest > highest:
        row.fail("compute_capability_max", "is below compute_capability_min")
    branch = row.integer("last_branch")
    newest = row.driver("newest_driver")
    if isinstance(newest, str) and Version(newest).major != branch:
        row.fail("newest_driver", f"{quoted(newest)} is not a release of branch R{branch}")
    return DriverCeiling(row.text("architecture"), lowest, highest, branch, newest, row.provenance())


def _floor(row: Row) -> DriverFloor:
    row.only(("architecture", "compute_capability_min", "compute_capability_max", "first_branch"))
    lowest, highest = row.compute_capability("compute_capability_min"), row.compute_capability("compute_capability_max")
    if lowest > highest:
        row.fail("compute_capability_max", "is below compute_capability_min")
    return DriverFloor(row.text("architecture"), lowest, highest, row.integer("first_branch"), row.provenance())


def _gpu(row: Row) -> GpuSpec:
    row.only(
        (
            "name",
            "variant",
            "segment",
            "nvml_names",
            "nvml_patterns",
            "compute_capability",
            "architecture",
            "memory_gb",
            "memory_type",
            "memory_bandwidth_gb_s",
            "fp32_tflops",
            "tf32_tflops",
            "bf16_tflops",
            "fp16_tflops",
            "fp8_tflops",
            "tdp_watts",
            "nvlink_gb_s",
            "pcie_gen",
            "interconnect_source",  # where the two interconnect fields come from (the row's source covers the rest)
        )
    )
    segment = row.text("segment")
    if segment not in SEGMENTS:
        row.fail("segment", f"expected one of {', '.join(SEGMENTS)}, got {quoted(segment)}")
    names, patterns = row.texts("nvml_names"), row.texts("nvml_patterns", required=False)
    if not names and not patterns:
        row.fail("nvml_names", "a GPU needs at least one NVML name or pattern to be found")
    _interconnect_checked(row)
    return GpuSpec(
        name=row.text("name"),
        variant=row.text("variant"),
        segment=segment,
        nvml_names=names,
        nvml_patterns=patterns,
        compute_capability=row.compute_capability("compute_capability"),
        architecture=row.text("architecture"),
        memory_gb=row.measure("memory_gb"),
        memory_type=row.text("memory_type"),
        memory_bandwidth_gb_s=row.measure("memory_bandwidth_gb_s"),
        fp32_tflops=row.measure("fp32_tflops"),
        tf32_tflops=row.unit_measure("tf32_tflops"),
        bf16_tflops=row.unit_measure("bf16_tflops"),
        fp16_tflops=row.unit_measure("fp16_tflops"),
        fp8_tflops=row.unit_measure("fp8_tflops"),
        tdp_watts=row.measure("tdp_watts"),
        provenance=row.provenance(),
        # the interconnect fields are optional: a row without them is a GPU whose links nobody recorded yet
        nvlink_gb_s=row.unit_measure("nvlink_gb_s") if "nvlink_gb_s" in row.data else _not_recorded(row, "nvlink_gb_s"),
        pcie_gen=_pcie_generation(row) if "pcie_gen" in row.data else _not_recorded(row, "pcie_gen"),
    )


def _family(row: Row) -> GpuFamily:
    row.only(("family", "architecture", "compute_capability", "segment", "names", "rule"))
    segment = row.text("segment")
    if segment not in SEGMENTS:
        row.fail("segment", f'expected one of {", ".join(SEGMENTS)}, got "{segment}"')
    try:
        rule = re.compile(row.text("rule"), re.IGNORECASE)
    except re.error as error:
        row.fail("rule", f"not a regular expression: {error}")
    return GpuFamily(
        family=row.text("family"),
        architecture=row.text("architecture"),
        compute_capability=row.compute_capability("compute_capability"),
        segment=segment,
        names=row.texts("names"),
        rule=rule,
        provenance=row.provenance(),
    )


def _interconnect_checked(row: Row) -> None:
    if ("nvlink_gb_s" in row.data or "pcie_gen" in row.data) and "interconnect_source" not in row.data:
        row.fail("interconnect_source", "missing: every interconnect figure needs its source")
    if "interconnect_source" in row.data:
        row.text("interconnect_source")


def _not_recorded(row: Row, key: str) -> Unavailable:
    return Unavailable(f"{row.label}: {row.where}.{key} not recorded")


def _pcie_generation(row: Row) -> int | Unavailable:
    if row.data.get("pcie_gen") == "?":
        return Unavailable(f"{row.label} has no verified value for pcie_gen")
    generation = row.integer("pcie_gen")
    if not 1 <= generation <= MAX_PCIE_GENERATION:
        row.fail("pcie_gen", f"expected a PCIe generation from 1 to {MAX_PCIE_GENERATION}, got {generation}")
    return generation


def _check_unique(label: str, kind: str, keys: Mapping[int, str]) -> None:
    seen: dict[str, int] = {}
    for index, key in keys.items():
        if key in seen:
            raise KnowledgeError(f"{label}: {kind}[{index}]: duplicates {kind}[{seen[key]}] ({key})")
        seen[key] = index


def _check_names_unique(label: str, families: tuple[GpuFamily, ...]) -> None:
    # one name in two families would give a GPU two capabilities depending on file order
    seen: dict[str, int] = {}
    for index, family in enumerate(families):
        for name in family.names:
            key = normalise_gpu_name(name)
            if seen.get(key, index) != index:
                raise KnowledgeError(f"{label}: family[{index}]: name {name!r} is also in family[{seen[key]}]")
            seen[key] = index


def _extension(row: Row) -> ExtensionRule:
    row.only(("name", "declares", "builds_from_source", "compiles_at_runtime", "imported", "wheels", "fix"))
    declares = row.texts("declares", "|".join(DECLARATIONS))
    return ExtensionRule(
        name=row.text("name"),
        declares=declares,
        builds_from_source=row.boolean("builds_from_source"),
        compiles_at_runtime=row.boolean("compiles_at_runtime"),
        wheels=row.text("wheels"),
        fix=row.template("fix", ("python", "torch_release", "torch_mm", "variant", "cuda_major", "abi", "pin")),
        provenance=row.provenance(),
        is_imported=row.boolean("imported") if "imported" in row.data else True,
    )


def _signature(row: Row) -> ImportSignature:
    row.only(("pattern", "cause", "printed"))
    pattern = row.text("pattern")
    try:
        re.compile(pattern)
    except re.error as error:
        row.fail("pattern", f"not a regular expression: {error}")
    is_printed = row.boolean("printed") if "printed" in row.data else False
    return ImportSignature(pattern, row.text("cause"), row.provenance(), is_printed)


def _host_compiler(row: Row) -> HostCompilerLimit:
    row.only(("cuda_from", "cuda_to", "gcc_max", "clang_max"))
    low, high = row.major_minor("cuda_from"), row.major_minor("cuda_to")
    if low > high:
        row.fail("cuda_to", "is below cuda_from")
    return HostCompilerLimit(low, high, row.count_or_unknown("gcc_max"), row.count_or_unknown("clang_max"),
                             row.provenance())  # fmt: skip


def _numpy_abi_floor(row: Row) -> NumpyAbiFloor:
    row.only(("platform", "first_torch"))
    platform = row.text("platform")
    if platform not in NUMPY_PLATFORMS:
        row.fail("platform", f"expected one of {', '.join(NUMPY_PLATFORMS)}, got {quoted(platform)}")
    return NumpyAbiFloor(platform, row.version("first_torch"), row.provenance())


def _load(root: Path) -> Knowledge:
    releases = _table(root, "compat/torch_releases.toml", "release", _release)
    _check_unique(f"{root.name}/compat/torch_releases.toml", "release", dict(enumerate(r.version for r in releases)))
    toolkits = _table(root, "compat/cuda_toolkits.toml", "toolkit", _toolkit)
    _check_unique(f"{root.name}/compat/cuda_toolkits.toml", "toolkit", dict(enumerate(t.cuda for t in toolkits)))
    archs = _table(root, "compat/cuda_toolkits.toml", "architecture", _arch_toolkit)
    _check_unique(
        f"{root.name}/compat/cuda_toolkits.toml",
        "architecture",
        dict(enumerate(f"{a.compute_capability[0]}.{a.compute_capability[1]}" for a in archs)),
    )
    wheels = tuple(_with_toolkit(w, archs) for w in _table(root, "compat/wheel_arch.toml", "wheel", _wheel))
    gpus = _table(root, "gpus.toml", "gpu", _gpu)
    names = {f"{i}.{n}": normalise_gpu_name(n) for i, g in enumerate(gpus) for n in g.nvml_names}
    _check_unique(f"{root.name}/gpus.toml", "gpu", {int(k.split(".")[0]): v for k, v in names.items()})
    ceilings = _table(root, "compat/driver_branches.toml", "architecture", _ceiling)
    families = _table(root, "gpu_capabilities.toml", "family", _family)
    _check_names_unique(f"{root.name}/gpu_capabilities.toml", families)
    floors = _table(root, "compat/driver_floors.toml", "architecture", _floor)
    extensions = _table(root, "compat/extensions.toml", "extension", _extension)
    _check_unique(f"{root.name}/compat/extensions.toml", "extension", dict(enumerate(e.name for e in extensions)))
    signatures = _table(root, "compat/extensions.toml", "signature", _signature)
    limits = _table(root, "compat/host_compilers.toml", "nvcc", _host_compiler)
    numpy_floors = _table(root, "compat/numpy_abi.toml", "platform", _numpy_abi_floor)
    _check_unique(f"{root.name}/compat/numpy_abi.toml", "platform", dict(enumerate(f.platform for f in numpy_floors)))
    return Knowledge(
        releases, toolkits, wheels, gpus, str(root), ceilings, families, floors, extensions, signatures, limits,
        numpy_floors, archs,
    )  # fmt: skip


@lru_cache(maxsize=1)
def _default_knowledge() -> Knowledge:
    return _load(profiles_root())


def load_knowledge(root: Path | None = None) -> Knowledge:
    """Every compatibility table and the GPU specs. The default root is read once per process and cached."""
    return _default_knowledge() if root is None else _load(root)


def workload_names(root: Path | None = None) -> tuple[str, ...]:
    """The shipped workload profiles, by name (``cifar10-cnn``, ...)."""
    return tuple(sorted(p.stem for p in (profiles_root(root) / "workloads").glob("*.toml")))


def _workload(row: Row) -> WorkloadProfile:
    row.only(
        (
            "name",
            "description",
            "parameters",
            "min_gpu_memory_gb",
            "min_total_gpu_memory_gb",
            "dtypes_required",
            "min_compute_capability",
            "min_ram_gb",
            "min_free_disk_gb",
            "min_cpu_cores",
            "activation_memory_per_sample_mb",
            "reference_resolution",
            "reference_sequence_length",
            "reference_batch_size",
        )
    )
    dtypes = row.texts("dtypes_required")
    for dtype in dtypes:
        if dtype not in DTYPES:
            row.fail("dtypes_required", f"unknown dtype {quoted(dtype)} (expected some of {', '.join(DTYPES)})")
    return WorkloadProfile(
        name=row.text("name"),
        description=row.text("description"),
        parameters=row.integer("parameters"),
        min_gpu_memory_gb=row.number("min_gpu_memory_gb"),
        min_total_gpu_memory_gb=row.optional_number("min_total_gpu_memory_gb"),
        dtypes_required=dtypes,
        min_compute_capability=row.compute_capability("min_compute_capability"),
        min_ram_gb=row.number("min_ram_gb"),
        min_free_disk_gb=row.number("min_free_disk_gb"),
        min_cpu_cores=row.integer("min_cpu_cores"),
        activation_memory_per_sample_mb=row.optional_number("activation_memory_per_sample_mb"),
        reference_resolution=row.optional_integer("reference_resolution"),
        reference_sequence_length=row.optional_integer("reference_sequence_length"),
        reference_batch_size=row.optional_integer("reference_batch_size"),
        provenance=row.provenance(),
    )


def load_workload(name_or_path: str | Path, root: Path | None = None) -> WorkloadProfile:
    """A workload profile by shipped name (``llama-7b-lora``) or from a TOML file of the same shape."""
    text = str(name_or_path)
    is_file = isinstance(name_or_path, Path) or text.endswith(".toml") or "/" in text or "\\" in text
    if is_file:
        path, label = Path(text), text
    else:
        known = workload_names(root)
        if text not in known:
            raise KnowledgeError(f"unknown workload profile {quoted(text)} (known: {', '.join(known)})")
        path = profiles_root(root) / "workloads" / f"{text}.toml"
        label = f"{profiles_root(root).name}/workloads/{text}.toml"
    return _workload(Row(label, "", _read(path, label)))
