"""Checks of the Python/PyTorch install: is torch there, does it import, does it compute right."""

from __future__ import annotations

from collections.abc import Iterator

from envcheck.checks.common import skipped
from envcheck.checks.registry import CheckInput, check
from envcheck.checks.wheels import UNLISTED_TORCH, is_package_list_missing
from envcheck.facts.common import Unavailable, known
from envcheck.facts.framework import SmokeTest
from envcheck.finding import Finding, Severity


def _major(version: str) -> int:
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else 0


@check("install.framework_probe", "The out-of-process torch probe ran to completion in the target interpreter.")
def check_framework_probe(given: CheckInput) -> Iterator[Finding]:
    run = given.snapshot.probe("framework")
    check_id = "install.framework_probe"
    if run is None or run.status == "skipped":
        yield Finding(check_id, Severity.SKIP, "torch probe not run", detail=(run.error or "") if run else "")
    elif run.status == "ok":
        yield Finding(check_id, Severity.OK, f"torch probe finished in {run.duration_s:.1f} s")
    else:
        yield Finding(
            check_id,
            Severity.FAIL,
            f"the torch probe {'timed out' if run.status == 'timeout' else 'failed'}",
            detail=run.error or "",
            fix="Run `python -c 'import torch; print(torch.randn(2, 2) @ torch.randn(2, 2))'` in the same "
            "environment to see the error; a hang here usually means a stuck GPU or driver (check `dmesg`).",
            evidence=("probes.framework",),
        )


@check("install.torch_importable", "PyTorch is installed in the target interpreter and imports.")
def check_torch_importable(given: CheckInput) -> Iterator[Finding]:
    framework = given.snapshot.framework
    check_id = "install.torch_importable"
    if isinstance(framework, Unavailable):
        yield skipped(check_id, "torch import", framework)
    elif not framework.is_torch_installed:
        yield Finding(
            check_id,
            Severity.WARN,
            f"torch is not installed in {framework.interpreter}",
            fix=f"{framework.interpreter} -m pip install torch torchvision  (for a GPU build matching the driver, "
            "pick the index URL at https://pytorch.org/get-started/locally/)",
            evidence=("framework.is_torch_installed",),
        )
    elif framework.torch is None:
        yield Finding(
            check_id,
            Severity.FAIL,
            f"torch is installed but does not import: {framework.import_error}",
            detail=framework.import_traceback_tail or "",
            fix="Reinstall a matching build (https://pytorch.org/get-started/locally/); a missing "
            "libcudnn/libcublas usually means LD_LIBRARY_PATH points at another CUDA "
            "or the nvidia-* wheels are missing.",
            evidence=("framework.import_error",),
        )
    else:
        torch = framework.torch
        build = (
            f"CUDA {torch.cuda_version}"
            if torch.cuda_version
            else (f"ROCm {torch.hip_version}" if torch.hip_version else "CPU-only")
        )
        duration = known(torch.import_duration_s)
        yield Finding(
            check_id,
            Severity.OK,
            f"torch {torch.version} ({build}) imports" + (f" in {duration:.1f} s" if duration is not None else ""),
            evidence=("framework.torch.version",),
        )


@check("install.smoke_test", "A small matmul on the CPU and on every visible GPU matches a CPU reference.")
def check_smoke_test(given: CheckInput) -> Iterator[Finding]:
    framework = given.snapshot.framework
    check_id = "install.smoke_test"
    if isinstance(framework, Unavailable):
        yield skipped(check_id, "compute smoke test", framework)
        return
    if framework.torch is None:
        yield Finding(check_id, Severity.SKIP, "compute smoke test not run", detail="torch did not import")
        return
    tests = [("CPU", framework.torch.cpu_smoke_test)] + [
        (f"GPU {device.index} ({known(device.name) or 'name unavailable'})", device.smoke_test)
        for device in framework.torch.devices
    ]
    ran = [(name, test) for name, test in tests if isinstance(test, SmokeTest)]
    if not ran and any(isinstance(test, Unavailable) for _, test in tests):
        yield Finding(check_id, Severity.SKIP, "compute smoke test not run", detail="the snapshot's source runs none")
        return
    failed = [(name, test) for name, test in ran if not test.passed]
    for name, test in failed:
        error = test.error or f"largest deviation from the CPU result {test.max_abs_error:.3g}"
        yield Finding(
            check_id,
            Severity.FAIL,
            f"matmul on {name} failed: {error}",
            fix="'no kernel image is available' means the wheel lacks this GPU's architecture: "
            "install a torch build whose arch list includes this GPU; wrong numbers without an error point at the "
            "driver or the hardware (run `nvidia-smi -q -d ECC`).",
            evidence=("framework.torch.devices",),
        )
    if not failed:
        yield Finding(check_id, Severity.OK, f"matmul results correct on {', '.join(n for n, _ in ran) or 'no device'}")


@check("install.duplicate_torch", "Only one torch installation is visible to the interpreter.")
def check_duplicate_torch(given: CheckInput) -> Iterator[Finding]:
    python = given.snapshot.python
    check_id = "install.duplicate_torch"
    if isinstance(python, Unavailable):
        yield skipped(check_id, "duplicate torch installs", python)
        return
    if is_package_list_missing(given):
        yield Finding(check_id, Severity.SKIP, "duplicate torch installs not checked", detail=UNLISTED_TORCH)
        return
    installs = [package for package in python.packages if package.name == "torch"]
    if len(installs) > 1:
        where = "; ".join(f"{package.version} in {package.location}" for package in installs)
        yield Finding(
            check_id,
            Severity.WARN,
            f"{len(installs)} torch installations are visible: {where}",
            detail="Python imports the first one on sys.path; the others confuse pip and conda.",
            fix=f"Remove all but one, e.g. `{python.executable} -m pip uninstall torch` repeated until one "
            "remains, or disable the user site with PYTHONNOUSERSITE=1.",
            evidence=("python.packages",),
        )
    else:
        yield Finding(check_id, Severity.OK, "one torch installation" if installs else "no torch installation")


@check("install.nvml_binding", "The NVML binding is NVIDIA's nvidia-ml-py, not a deprecated fork that shadows it.")
def check_nvml_binding(given: CheckInput) -> Iterator[Finding]:
    python = given.snapshot.python
    check_id = "install.nvml_binding"
    if isinstance(python, Unavailable):
        yield skipped(check_id, "NVML binding", python)
        return
    if not python.packages and is_package_list_missing(given):
        yield Finding(check_id, Severity.SKIP, "NVML binding not checked", detail=UNLISTED_TORCH)
        return
    # nvidia-ml-py3 and pynvml < 12 ship their own pynvml.py, which shadows nvidia-ml-py's module.
    deprecated = [
        package
        for package in python.packages
        if package.name == "nvidia-ml-py3" or (package.name == "pynvml" and _major(package.version) < 12)
    ]
    if deprecated:
        names = ", ".join(f"{package.name} {package.version}" for package in deprecated)
        yield Finding(
            check_id,
            Severity.WARN,
            f"deprecated NVML binding installed: {names}",
            detail="It provides a `pynvml` module that shadows NVIDIA's nvidia-ml-py and lacks newer calls.",
            fix=f"{python.executable} -m pip uninstall -y {' '.join(p.name for p in deprecated)} "
            f"&& {python.executable} -m pip install --force-reinstall nvidia-ml-py",
            evidence=("python.packages",),
        )
    else:
        yield Finding(check_id, Severity.OK, "no deprecated NVML binding")
