"""CUDA checks of how this process reaches the GPUs: CUDA_VISIBLE_DEVICES, LD_LIBRARY_PATH, CUDA_HOME, and the
driver, container, fabric manager or WSL setup that leaves CUDA without a GPU. Judged from recorded strings only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from envcheck.checks.common import skipped
from envcheck.checks.registry import CheckInput, check
from envcheck.checks.wheels import installed_version, missing_of
from envcheck.facts.common import Unavailable, known
from envcheck.facts.environment import EnvironmentFacts
from envcheck.facts.gpu import GpuFacts
from envcheck.finding import Finding, Severity


def _variable(environment: EnvironmentFacts, name: str) -> str | None:
    return next((v.value for v in environment.variables if v.name == name), None)


def _visible(value: str, gpu: GpuFacts) -> tuple[list[str], str | None]:
    """The GPUs CUDA will enumerate under CUDA_VISIBLE_DEVICES=value, and the first entry it rejects.

    CUDA reads the comma-separated list up to the first invalid entry (an index out of range, an unknown
    UUID, a repeat) and ignores the rest (CUDA C Programming Guide, "CUDA Environment Variables").
    """
    count = max(gpu.gpu_count, len(gpu.gpus))
    uuids = [known(device.uuid) or "" for device in gpu.gpus]
    seen: list[str] = []
    for entry in (part.strip() for part in value.split(",")):
        index: int | None = None
        if re.fullmatch(r"[+-]?\d+", entry):
            index = int(entry)
            index = index if 0 <= index < count else None
        elif entry.upper().startswith("GPU-") and len(entry) > 4:
            index = next((i for i, uuid in enumerate(uuids) if uuid.lower().startswith(entry.lower())), None)
        if index is None or str(index) in seen:
            return seen, entry
        seen.append(str(index))
    return seen, None


@check("cuda.visible_devices", "CUDA_VISIBLE_DEVICES, when set, names GPUs that exist and leaves at least one visible.")
def check_visible_devices(given: CheckInput) -> Iterator[Finding]:
    environment, gpu = given.snapshot.environment, given.snapshot.gpu
    check_id = "cuda.visible_devices"
    if isinstance(environment, Unavailable) or isinstance(gpu, Unavailable):
        yield skipped(check_id, "CUDA_VISIBLE_DEVICES", missing_of(environment, gpu))
        return
    value = _variable(environment, "CUDA_VISIBLE_DEVICES")
    if value is None:
        yield Finding(check_id, Severity.OK, "CUDA_VISIBLE_DEVICES not set: CUDA sees every GPU")
        return
    if not gpu.gpus:
        detail = f"no NVIDIA GPU seen ({gpu.no_gpu_reason}), so there is nothing to hide"
        yield Finding(check_id, Severity.SKIP, "CUDA_VISIBLE_DEVICES not checked", detail=detail)
        return
    if value.strip().upper().startswith("MIG-"):
        detail = "MIG device UUIDs are not recorded in the snapshot (`nvidia-smi -L` lists them)"
        yield Finding(check_id, Severity.SKIP, "CUDA_VISIBLE_DEVICES not checked", detail=detail)
        return
    count = max(gpu.gpu_count, len(gpu.gpus))
    visible, rejected = _visible(value, gpu)
    listed = f"the machine has {count} GPU(s), " + ("index 0" if count == 1 else f"indices 0-{count - 1}")
    if not visible:
        yield Finding(
            check_id,
            Severity.FAIL,
            f"CUDA_VISIBLE_DEVICES={value!r} hides every GPU from CUDA",
            detail=f"CUDA stops at {rejected!r}, which names no GPU; {listed}. torch.cuda.is_available() is False.",
            fix="unset CUDA_VISIBLE_DEVICES  (or list the GPUs to use, e.g. CUDA_VISIBLE_DEVICES=0)",
            evidence=("environment.CUDA_VISIBLE_DEVICES", "gpu.gpu_count"),
        )
    elif rejected is not None:
        yield Finding(
            check_id,
            Severity.WARN,
            f"CUDA_VISIBLE_DEVICES={value!r} names {rejected!r}, which is not a GPU here; CUDA ignores it and "
            f"everything after it",
            detail=f"CUDA sees {len(visible)} GPU(s): {', '.join(visible)}; {listed}.",
            fix=f"export CUDA_VISIBLE_DEVICES={','.join(visible)}  (valid entries only)",
            evidence=("environment.CUDA_VISIBLE_DEVICES", "gpu.gpu_count"),
        )
    else:
        yield Finding(
            check_id, Severity.OK, f"CUDA_VISIBLE_DEVICES={value!r}: {len(visible)} of {count} GPU(s) visible"
        )


# Directories that hold a CUDA toolkit's or cuDNN's own libraries (not the driver's: /usr/local/nvidia is the
# driver mount of the NVIDIA Container Toolkit, and libcuda must come from the driver anyway).
_TOOLKIT_DIR = re.compile(r"/cuda[^/]*/(lib64|lib|targets/[^/]+/lib)/?$|cudnn|/nccl", re.IGNORECASE)
_CONDA_LIB = re.compile(
    r"/(ana|mini)conda\d*/(envs/[^/]+/)?lib/?$|/miniforge\d*/(envs/[^/]+/)?lib/?$|/envs/[^/]+/lib/?$"
)
_CUDA_IN_PATH = re.compile(r"cuda[-_]?(\d+)\.(\d+)", re.IGNORECASE)


@check("cuda.ld_library_path", "LD_LIBRARY_PATH does not shadow the CUDA, cuDNN and NCCL libraries the wheel bundles.")
def check_ld_library_path(given: CheckInput) -> Iterator[Finding]:
    environment, python, framework = given.snapshot.environment, given.snapshot.python, given.snapshot.framework
    check_id = "cuda.ld_library_path"
    if isinstance(environment, Unavailable) or isinstance(python, Unavailable):
        yield skipped(check_id, "LD_LIBRARY_PATH", missing_of(environment, python))
        return
    bundled = sorted(p.name for p in python.packages if re.fullmatch(r"nvidia-[a-z-]+-cu\d+", p.name))
    torch_version = installed_version(python, "torch") or ""
    is_bundling = bool(bundled) or "+cu" in torch_version
    value = _variable(environment, "LD_LIBRARY_PATH") or ""
    toolkit_dirs = [part for part in value.split(":") if part and _TOOLKIT_DIR.search(part)]
    conda_dirs = [part for part in value.split(":") if part and _CONDA_LIB.search(part)]
    if not is_bundling or not (toolkit_dirs or conda_dirs):
        why = "no pip CUDA wheel bundling its libraries" if not is_bundling else "no CUDA library directory in it"
        yield Finding(check_id, Severity.OK, f"LD_LIBRARY_PATH shadows nothing ({why})")
        return
    framework_facts = known(framework)
    import_error = framework_facts.import_error if framework_facts else None
    wheel_cuda = framework_facts.torch.cuda_version if framework_facts and framework_facts.torch else None
    other_major = [d for d in toolkit_dirs if (m := _CUDA_IN_PATH.search(d)) and wheel_cuda and
                   m.group(1) != wheel_cuda.split(".")[0]]  # fmt: skip
    shown = ", ".join(toolkit_dirs + conda_dirs)
    detail = (
        "The dynamic loader searches LD_LIBRARY_PATH before the wheel's own RUNPATH, so libcudart/libcublas/"
        f"libcudnn/libnccl from these directories replace the ones pip installed ({', '.join(bundled) or 'torch/lib'})."
    )
    fix = f"unset LD_LIBRARY_PATH  (or drop {shown} from it) before running torch"
    evidence = ("environment.LD_LIBRARY_PATH", "python.packages")
    if import_error and toolkit_dirs + conda_dirs:
        title = f"torch fails to import ({import_error}) and LD_LIBRARY_PATH puts {shown} first"
        yield Finding(check_id, Severity.FAIL, title, detail=detail, fix=fix, evidence=evidence)
    elif other_major:
        title = f"LD_LIBRARY_PATH has CUDA libraries of another major version than the wheel's {wheel_cuda}: {shown}"
        yield Finding(check_id, Severity.WARN, title, detail=detail, fix=fix, evidence=evidence)
    else:
        title = f"LD_LIBRARY_PATH may shadow the wheel's CUDA libraries: {shown}"
        yield Finding(check_id, Severity.INFO, title, detail=detail + " It works while the versions agree.", fix=fix,
                      evidence=evidence)  # fmt: skip


@check("cuda.cuda_home", "The CUDA toolkit at CUDA_HOME (used to build extensions) matches the wheel's CUDA version.")
def check_cuda_home(given: CheckInput) -> Iterator[Finding]:
    environment, framework = given.snapshot.environment, given.snapshot.framework
    check_id = "cuda.cuda_home"
    if isinstance(environment, Unavailable) or isinstance(framework, Unavailable):
        yield skipped(check_id, "CUDA_HOME", missing_of(environment, framework))
        return
    name = next((n for n in ("CUDA_HOME", "CUDA_PATH") if _variable(environment, n)), None)
    torch = framework.torch
    if name is None or torch is None or torch.cuda_version is None:
        why = "CUDA_HOME not set" if name is None else "torch is not a CUDA build"
        yield Finding(check_id, Severity.OK, f"no toolkit to compare ({why}); only extension builds use it")
        return
    home = _variable(environment, name) or ""
    match = _CUDA_IN_PATH.search(home)
    if match is None:
        # The toolkit's version.json / `nvcc --version` are not probed; a check must not read them itself.
        detail = f"{name}={home} does not name its CUDA version, and the snapshot records no toolkit version"
        yield Finding(check_id, Severity.SKIP, "CUDA_HOME toolkit version not checked", detail=detail)
        return
    home_cuda = f"{match.group(1)}.{match.group(2)}"
    wheel_major, _, wheel_minor = torch.cuda_version.partition(".")
    evidence = (f"environment.{name}", "framework.torch.cuda_version")
    if home_cuda.split(".") == [wheel_major, wheel_minor.split(".")[0]]:
        yield Finding(
            check_id, Severity.OK, f"{name} toolkit CUDA {home_cuda} matches torch's CUDA {torch.cuda_version}"
        )
        return
    # torch.utils.cpp_extension raises on a major mismatch and only warns on a minor one (_check_cuda_version).
    is_major = match.group(1) != wheel_major
    yield Finding(
        check_id,
        Severity.WARN if is_major else Severity.INFO,
        f"{name} is CUDA {home_cuda} but torch {torch.version} was built with CUDA {torch.cuda_version}",
        detail="Only building CUDA extensions (pip install of packages with CUDA code, torch.utils.cpp_extension) "
        + (
            "fails: 'The detected CUDA version mismatches the version that was used to compile PyTorch'."
            if is_major
            else "warns about the minor version difference."
        ),
        fix=f"point {name} at a CUDA {wheel_major}.x toolkit, e.g. export {name}=/usr/local/cuda-{torch.cuda_version}",
        evidence=evidence,
    )
