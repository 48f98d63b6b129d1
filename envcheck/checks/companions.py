"""torchvision and torchaudio against the installed torch: the release each was built for, and its build variant
(CPU, CUDA, ROCm), judged only where the release history says the pairing matters.

Where a pairing rule does not apply, nothing fails: torchvision before 0.3 was pure Python (no C++ ops, so no
torch it was built against); nightly and source builds of torch pair with builds of the same day or tree, which
the release tables do not list.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from envcheck.checks.common import skipped
from envcheck.checks.registry import CheckInput, check
from envcheck.checks.wheels import INDEX_URL, NOT_LISTED, companion_release, installed_version, knowledge_of, missing_of
from envcheck.facts.common import Unavailable, known
from envcheck.facts.python import InstalledPackage, PythonFacts
from envcheck.finding import Finding, Severity
from envcheck.knowledge.model import TorchRelease, release_key
from envcheck.knowledge.rules import cuda_of_variant

# torchvision 0.3.0 (May 2019) was the first release with compiled ops (nms, roi_align; pytorch/vision release
# notes for 0.3.0): 0.1.x and 0.2.x are pure Python and import with any torch.
_FIRST_COMPILED_TORCHVISION = Version("0.3.0")
# torchaudio moved its extension to torch's stable ABI in December 2025 (pytorch/audio#4142, after 2.9), so 2.10 and
# 2.11 ship libtorchaudio.abi3.so: such a build may load with a later torch, never an earlier one (torchaudio 2.11
# under torch 2.10: "undefined symbol: torch_dtype_float4_e2m1fn_x2", deepbeepmeep/Wan2GP#1701)
_FIRST_STABLE_ABI_TORCHAUDIO = Version("2.10.0")
COMPANIONS = ("torchvision", "torchaudio")
# conda build strings name the variant where pip has a local tag. The pytorch channel: pytorch
# py3.9_cuda11.7_cudnn8.5.0_0 / py3.10_cpu_0 (older py3.7_cuda90_cudnn7_1, pytorch/pytorch#27745), torchvision and
# torchaudio py39_cu117 / py310_cpu (py_3 is a pure-Python noarch build); conda-forge: cuda118_py310h... /
# cpu_py310h... (conda/conda#14761); Anaconda's defaults: gpu_cuda113py310h... / cpu_py310h...
_CONDA_CPU = re.compile(r"(?:^|_)cpu(?:_|$)")
_CONDA_ROCM = re.compile(r"(?:^|_)rocm")
_CONDA_DOTTED = re.compile(r"(?:^|_)cuda_?(\d+)\.(\d+)")
_CONDA_COMPACT = re.compile(r"(?:^|_)(?:cuda|cu)(\d)(\d{1,2})(?!\d)")
_CPU_PINS = ("cpuonly",)  # the pytorch channel's CPU pin: depends on pytorch-mutex=*=cpu


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One companion that does not fit the installed torch."""

    package: str
    severity: Severity
    text: str
    wanted: str | None  # the version to pin (``0.18.1``); None: no release exists, uninstall instead
    index: str  # the download.pytorch.org variant of the pin (``cu121``); empty: PyPI
    is_rebuild: bool = False  # the right release, the wrong build: pip must replace an install it deems satisfied
    advice: str = ""  # what to do when there is nothing to pin


def parsed(version: str) -> Version | None:
    try:
        return Version(version.strip())
    except InvalidVersion:
        return None


def is_source_build(version: Version) -> bool:
    """Built from a source tree (``0.16.0a0+c1e2095``, ``0.15.0a0``, NGC's ``2.1.0+6ea1133``): compiled against
    whichever torch was installed. A nightly wheel (``.devYYYYMMDD+cu124``) is not one."""
    if version.local is not None:
        return variant_of_tag(version.local) is None
    return version.is_prerelease and not version.is_devrelease


def variant_of_tag(tag: str) -> str | None:
    """``cu121``, ``cpu`` or ``rocm6.2`` from a local version tag; None for a git hash or a vendor tag."""
    tag = tag.lower()
    if tag == "cpu" or tag.startswith("rocm") or cuda_of_variant(tag):
        return tag
    return None


def conda_variant(build: str | None) -> str | None:
    """``cu117``, ``cpu`` or ``rocm`` from a conda build string; None where it names no variant (``py_3``, ``0``)."""
    build = (build or "").lower()
    if _CONDA_CPU.search(build):
        return "cpu"
    if _CONDA_ROCM.search(build):
        return "rocm"
    match = _CONDA_DOTTED.search(build) or _CONDA_COMPACT.search(build)
    if match is None:
        return None
    major, minor = match.group(1), match.group(2)
    if match.re is _CONDA_COMPACT and len(minor) == 2:  # cuda118: 11.8, cu102: 10.2; cuda90: 9.0
        major, minor = major + minor[0], minor[1]
    return f"cu{int(major)}{int(minor)}"


def package_of(python: PythonFacts, name: str) -> InstalledPackage | None:
    return next((package for package in python.packages if package.name == name), None)


def _kind(variant: str) -> str:
    return "cpu" if variant == "cpu" else ("rocm" if variant.startswith("rocm") else "cuda")


def torch_variant(given: CheckInput, torch_version: str) -> str | None:
    """The installed torch's build: its local tag, else what the framework facts say it was built with."""
    tag = variant_of_tag(torch_version.split("+", 1)[1]) if "+" in torch_version else None
    if tag is not None:
        return tag
    python = known(given.snapshot.python)
    installed = package_of(python, "torch") if python is not None else None
    if installed is not None and installed.version == torch_version and conda_variant(installed.build):
        return conda_variant(installed.build)
    framework = known(given.snapshot.framework)
    torch = framework.torch if framework is not None else None
    if torch is None or torch.version != torch_version:
        return None
    if torch.hip_version:
        return "rocm"
    if torch.cuda_version is None:
        return "cpu"
    major, _, minor = torch.cuda_version.partition(".")
    return f"cu{major}{minor.split('.')[0]}" if major.isdigit() and minor[:1].isdigit() else None


def companion_variant(
    given: CheckInput, package: str, version: str, release: TorchRelease, is_torch_tagged: bool
) -> str | None:
    """A companion's build: its local tag; an untagged pip install on Linux x86_64 is PyPI's build, which for a
    release is its default CUDA. Only judged beside a tagged torch (a download.pytorch.org install): an untagged
    companion beside an untagged torch may be a conda build of either kind."""
    if "+" in version:
        return variant_of_tag(version.split("+", 1)[1])
    python = known(given.snapshot.python)
    installed = package_of(python, package) if python is not None else None
    if installed is not None and installed.build is not None:
        return conda_variant(installed.build)  # conda names its build: judged beside any torch
    system = known(given.snapshot.system)
    if not is_torch_tagged or system is None or system.os_name != "Linux" or known(system.architecture) != "x86_64":
        return None
    cuda = release.pypi_default_cuda
    return f"cu{cuda.replace('.', '')}" if cuda else None


def _variant_mismatch(package: str, version: str, torch_version: str, wanted: str, ours: str, theirs: str) -> Mismatch:
    label = {"cpu": "CPU-only", "rocm": "ROCm"}.get(_kind(theirs), f"CUDA {cuda_of_variant(theirs)}")
    torch_label = {"cpu": "CPU-only", "rocm": "ROCm"}.get(_kind(ours), f"CUDA {cuda_of_variant(ours)}")
    text = f"{package} {version} is a {label} build, torch {torch_version} a {torch_label} one"
    # a GPU build of the companion links torch's GPU libraries: beside a CPU-only (or the other vendor's) torch
    # its ops do not load ("operator torchvision::nms does not exist"); a CPU build beside a GPU torch loads, but
    # its ops have no GPU kernels. torchvision refuses another CUDA major at import ("compiled with different CUDA
    # major versions", torchvision/extension.py _check_cuda_version); releases of early 2023 refused any other
    # CUDA ("different CUDA versions. PyTorch has CUDA Version=11.7 and torchvision has CUDA Version=11.8").
    is_broken = _kind(theirs) != _kind(ours) and _kind(theirs) != "cpu"
    if _kind(theirs) == _kind(ours) == "cuda":
        is_broken = (cuda_of_variant(ours) or "").split(".")[0] != (cuda_of_variant(theirs) or "").split(".")[0]
    return Mismatch(package, Severity.FAIL if is_broken else Severity.WARN, text, wanted, ours, is_rebuild=True)


def _judge(
    given: CheckInput, python: PythonFacts, package: str, torch_version: str, release: TorchRelease
) -> Mismatch | None:
    version = installed_version(python, package)
    parsed_companion, parsed_torch = (parsed(version) if version else None), parsed(torch_version)
    if version is None or parsed_companion is None or parsed_torch is None:
        return None
    if package == "torchvision" and Version(parsed_companion.base_version) < _FIRST_COMPILED_TORCHVISION:
        return None  # pure Python: any torch
    expected = release.torchvision if package == "torchvision" else release.torchaudio
    local = torch_version.split("+", 1)[1] if "+" in torch_version else ""
    if parsed_torch.is_prerelease:  # a nightly (2.6.0.dev20241001+cu124) or a source build (2.1.0a0+git32f93b1)
        if parsed_companion.is_prerelease or is_source_build(parsed_companion):
            # neither numbers nor dates line up: torchvision 0.7.0.dev20200610 pinned torch 1.6.0.dev20200609
            # (pytorch/pytorch#40013); a cu128 nightly trio was torch 2.8.0.dev20250407, torchaudio
            # 2.6.0.dev20250408, torchvision 0.22.0.dev20250408 (pytorch/pytorch#150900)
            return None
        text = (
            f"{package} {version} is a release build, torch {torch_version} a nightly or source build: "
            f"{package}'s compiled ops were built against another torch"
        )
        return Mismatch(package, Severity.WARN, text, None, local)
    if is_source_build(parsed_companion):
        wanted_minor = release_key(expected) if expected else None
        found = release_key(version)
        if (
            wanted_minor is None
            or found is None
            or (found.major, found.minor) == (wanted_minor.major, wanted_minor.minor)
        ):
            return None  # compiled from its tree against the torch that is installed
        text = (
            f"{package} {version} is a source build of another series than torch {release.version} needs ({expected})"
        )
        return Mismatch(package, Severity.WARN, text, expected, local)
    found = release_key(version)
    is_stable_abi = found is not None and _FIRST_STABLE_ABI_TORCHAUDIO <= found < Version(release.version)
    if expected is None and package == "torchaudio" and is_stable_abi:
        # built on torch's stable ABI, which later torch releases are meant to keep; no torchaudio release after 2.11
        text = f"torchaudio {version} predates torch {release.version}, for which no torchaudio release exists"
        advice = (
            f"if `import torchaudio` fails: {python.executable} -m pip uninstall -y torchaudio (last release: 2.11)"
        )
        return Mismatch(package, Severity.WARN, text, None, local, advice=advice)
    if expected is None or found not in {release_key(made) for made in release.companions(package)}:
        knowledge = knowledge_of(given)
        made_for = companion_release(knowledge, package, version) if knowledge is not None else None
        belongs = f"made for torch {made_for.version}" if made_for else "not a release the tables know"
        wanted = f"torch {release.version} needs {package} {expected}" if expected else (
            f"no {package} release exists for torch {release.version}")  # fmt: skip
        return Mismatch(package, Severity.FAIL, f"{package} {version} ({belongs}); {wanted}", expected, local)
    ours = torch_variant(given, torch_version)
    theirs = companion_variant(given, package, version, release, is_torch_tagged=variant_of_tag(local) is not None)
    if ours is None or theirs is None or ours == theirs or _kind(ours) == _kind(theirs) != "cuda":
        return None  # ROCm builds are told apart by their tag only when both carry one
    mismatch = _variant_mismatch(package, version, torch_version, expected, ours, theirs)
    installed = package_of(python, package)
    if installed is None or installed.build is None:
        return mismatch
    # a conda install: pip's --force-reinstall would put a wheel over conda's files; conda swaps the build
    channel = f"-c {installed.channel} " if installed.channel else ""  # no channel column: Anaconda's defaults
    marker = "cpu" if ours == "cpu" else (f"cu{ours[2:]}" if installed.channel == "pytorch" else f"cuda{ours[2:]}")
    if _kind(ours) == "rocm":
        marker = "rocm"
    advice = f'conda install {channel}"{package}={expected}=*{marker}*"'
    return Mismatch(package, mismatch.severity, mismatch.text, None, "", advice=advice)


def _conda_pins(python: PythonFacts, torch_version: str, ours: str | None) -> list[Mismatch]:
    """conda's variant pins beside torch's build: ``cpuonly`` (CPU builds only) beside a CUDA build, and
    ``pytorch-cuda`` (the CUDA runtime packages of one version) beside a torch built for another CUDA or none."""
    if ours is None:
        return []
    found: list[Mismatch] = []
    pins = [p for p in python.packages if p.name in _CPU_PINS or (p.name == "pytorch-mutex" and p.build == "cpu")]
    if pins and _kind(ours) == "cuda":
        # "Anaconda installation CUDA requested, cpuonly obtained" (pytorch/pytorch#32369): the pin makes conda's
        # next solve pick CPU builds of pytorch and its companions
        text = (
            f"{pins[0].name} {pins[0].version} (conda's CPU-only pin) is installed beside torch {torch_version}, "
            f"a CUDA {cuda_of_variant(ours)} build: conda's next install or update swaps in CPU builds"
        )
        found.append(Mismatch(pins[0].name, Severity.WARN, text, None, "", advice=f"conda remove {pins[0].name}"))
    runtime = package_of(python, "pytorch-cuda")
    wanted = cuda_of_variant(ours)
    if runtime is not None and runtime.version != wanted:
        if wanted is None:
            text = (
                f"pytorch-cuda {runtime.version} is installed but torch {torch_version} is a "
                f"{'CPU-only' if ours == 'cpu' else 'ROCm'} build: conda installed pytorch without CUDA"
            )
            public = torch_version.split("+", 1)[0]
            advice = f"conda install -c pytorch -c nvidia pytorch={public} pytorch-cuda={runtime.version}"
            found.append(Mismatch("pytorch-cuda", Severity.WARN, text, None, "", advice=advice))
        else:
            text = (
                f"pytorch-cuda {runtime.version} installs the CUDA {runtime.version} runtime, torch {torch_version} "
                f"is a CUDA {wanted} build"
            )
            is_broken = runtime.version.split(".")[0] != wanted.split(".")[0]
            advice = f"conda install -c pytorch -c nvidia pytorch-cuda={wanted}"
            severity = Severity.FAIL if is_broken else Severity.WARN
            found.append(Mismatch("pytorch-cuda", severity, text, None, "", advice=advice))
    return found


@check(
    "install.companion_versions", "torchvision and torchaudio are the releases and builds made for the installed torch."
)
def check_companion_versions(given: CheckInput) -> Iterator[Finding]:
    python, knowledge = given.snapshot.python, knowledge_of(given)
    check_id = "install.companion_versions"
    if isinstance(python, Unavailable) or knowledge is None:
        yield skipped(check_id, "torchvision/torchaudio versions", missing_of(python))
        return
    torch_version = installed_version(python, "torch")
    if torch_version is None:
        yield Finding(check_id, Severity.SKIP, "torchvision/torchaudio versions not checked", detail=NOT_LISTED)
        return
    release = knowledge.torch_release(torch_version)
    if release is None:
        yield Finding(
            check_id,
            Severity.SKIP,
            "torchvision/torchaudio versions not checked",
            detail=f"torch {torch_version} is not in the knowledge base ({knowledge.root})",
        )
        return
    mismatches = [m for package in COMPANIONS if (m := _judge(given, python, package, torch_version, release))]
    mismatches += _conda_pins(python, torch_version, torch_variant(given, torch_version))
    if not mismatches:
        yield Finding(check_id, Severity.OK, f"torchvision/torchaudio match torch {torch_version}")
        return
    severity = Severity.FAIL if any(m.severity is Severity.FAIL for m in mismatches) else Severity.WARN
    yield Finding(
        check_id,
        severity,
        f"packages built for another torch than {torch_version}: " + "; ".join(m.text for m in mismatches),
        detail="Each torchvision/torchaudio build is compiled against one torch build (release and CPU/CUDA/ROCm "
        "variant); another torch fails at import or with 'operator torchvision::nms does not exist' (pytorch/vision "
        "README, compatibility table). torchvision before 0.3 was pure Python and fits any torch.",
        fix=_fix(python.executable, torch_version, mismatches),
        evidence=("python.packages", "framework.torch.cuda_version"),
    )


def _fix(executable: str, torch_version: str, mismatches: list[Mismatch]) -> str:
    parts = []
    for index in sorted({m.index for m in mismatches if m.wanted}):
        chosen = [m for m in mismatches if m.wanted and m.index == index]
        pins = " ".join(f"{m.package}=={m.wanted}" for m in chosen)
        url = f" --index-url {INDEX_URL}{index}" if variant_of_tag(index) else ""
        force = " --force-reinstall --no-deps" if any(m.is_rebuild for m in chosen) else ""
        parts.append(f"{executable} -m pip install{force} {pins}{url}")
    removals = " ".join(m.package for m in mismatches if not m.wanted and m.severity is Severity.FAIL and not m.advice)
    if removals:
        parts.append(f"{executable} -m pip uninstall -y {removals}")
    parts += [m.advice for m in mismatches if m.advice]
    pre = [m.package for m in mismatches if not m.wanted and m.severity is Severity.WARN and not m.advice]
    if pre:
        local = torch_version.split("+", 1)[1] if "+" in torch_version else ""
        nightly = f" --index-url {INDEX_URL}nightly/{local}" if variant_of_tag(local) else ""
        parts.append(
            f"{executable} -m pip install --pre --force-reinstall --no-deps {' '.join(pre)}{nightly}  "
            "(the nightly of the same day as torch; for a source build of torch, build these from source too)"
        )
    return " && ".join(parts)
