"""A setup plan written out: pip and uv commands, a conda command, a requirements file, a Dockerfile, JSON.

Pure text from a ``SetupPlan``; nothing here runs or prints. Why each format looks as it does: docs/setup.md.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

from packaging.version import Version

from envcheck.advise.setup_plan import SetupPlan
from envcheck.knowledge.model import CudaToolkit, Knowledge
from envcheck.knowledge.rules import driver_satisfies

FORMATS = ("pip", "uv", "conda", "requirements", "dockerfile", "json")
SCHEMA = "envcheck.setup/1"
# nvidia/cuda base images (hub.docker.com/r/nvidia/cuda/tags): the newest patch of each minor we build on.
# The image's CUDA must be supported by the host driver itself: the image sets NVIDIA_REQUIRE_CUDA=cuda>=X.Y,
# which the NVIDIA container toolkit checks against the driver before starting the container.
CUDA_BASE_IMAGES = (
    ("11.4", "nvidia/cuda:11.4.3-base-ubuntu20.04"),
    ("11.7", "nvidia/cuda:11.7.1-base-ubuntu22.04"),
    ("11.8", "nvidia/cuda:11.8.0-base-ubuntu22.04"),
    ("12.1", "nvidia/cuda:12.1.1-base-ubuntu22.04"),
    ("12.2", "nvidia/cuda:12.2.2-base-ubuntu22.04"),
    ("12.4", "nvidia/cuda:12.4.1-base-ubuntu22.04"),
    ("12.6", "nvidia/cuda:12.6.3-base-ubuntu22.04"),
    ("12.8", "nvidia/cuda:12.8.1-base-ubuntu22.04"),
    ("12.9", "nvidia/cuda:12.9.1-base-ubuntu22.04"),
    ("13.0", "nvidia/cuda:13.0.0-base-ubuntu24.04"),
)


class NoFitError(ValueError):
    """The plan does not fit the target, so there is nothing to install."""


def requirement_lines(plan: SetupPlan) -> tuple[str, ...]:
    return tuple(f"{name}=={version}" for name, version in plan.pins)


def _index_args(plan: SetupPlan) -> tuple[str, ...]:
    return ("--index-url", plan.index_url) if plan.index_url else ()


def pip_arguments(plan: SetupPlan) -> tuple[str, ...]:
    """The arguments after ``pip`` (or ``uv pip``): ``install``, the index, the pinned packages."""
    if not plan.fits:
        raise NoFitError("nothing to install: " + "; ".join(plan.reasons + plan.upgrades))
    return ("install", *requirement_lines(plan), *_index_args(plan))


def commands(plan: SetupPlan, tool: str = "pip") -> tuple[str, ...]:
    """The shell command lines that install the plan with ``tool`` (pip, uv or conda)."""
    if not plan.fits:
        return ()
    if tool == "conda":
        return (format_conda(plan).rstrip("\n"),)
    arguments = pip_arguments(plan)
    interpreter = plan.target.interpreter
    if tool == "uv":
        # uv installs into the active venv unless told which interpreter: name it when the target is a real one
        where = ("--python", shlex.quote(interpreter)) if interpreter else ()
        return (" ".join(("uv", "pip", arguments[0], *where, *arguments[1:])),)
    # the target interpreter's own pip: a bare `python` may be another interpreter's (issue 13)
    python = shlex.quote(interpreter) if interpreter else "python"
    return (f"{python} -m pip {' '.join(arguments)}",)


def format_pip(plan: SetupPlan) -> str:
    return "\n".join(commands(plan, "pip")) + "\n"


def format_uv(plan: SetupPlan) -> str:
    return "\n".join(commands(plan, "uv")) + "\n"


def format_conda(plan: SetupPlan) -> str:
    """conda-forge's own builds: ``pytorch`` with a ``cuda*`` or ``cpu*`` build string, CUDA pinned by cuda-version."""
    pip_arguments(plan)  # raises when nothing fits
    packages = [f'"pytorch={plan.torch}={"cuda" if plan.cuda else "cpu"}*"', f"torchvision={plan.torchvision}"]
    if plan.torchaudio:
        packages.append(f"torchaudio={plan.torchaudio}")
    if plan.cuda:
        # conda-forge builds for fewer CUDA minors than PyTorch's index; any of the same major up to ours runs
        major = Version(plan.cuda).major
        packages.append(f'"cuda-version>={major}.0,<={plan.cuda}"')
    return f"conda install -c conda-forge --override-channels {' '.join(packages)}\n"


def format_requirements(plan: SetupPlan) -> str:
    pip_arguments(plan)
    lines = [f"# envcheck setup: torch {plan.torch} ({plan.variant}) for {plan.target.describe()}"]
    if plan.index_url:
        lines.append(f"--index-url {plan.index_url}")
    lines.extend(requirement_lines(plan))
    return "\n".join(lines) + "\n"


def base_image(plan: SetupPlan, knowledge: Knowledge) -> str:
    """The newest CUDA base image of the wheel's CUDA major whose CUDA the driver supports natively.

    The wheel bundles its own CUDA runtime, so the image's CUDA may be older than the wheel's.
    A plan without CUDA, or a driver older than every image of the major, gets a plain Python image.
    """
    python_image = f"python:{plan.target.python}-slim"
    if not plan.cuda or plan.target.driver is None:
        return python_image
    major = Version(plan.cuda).major
    for cuda, image in reversed(CUDA_BASE_IMAGES):
        toolkit = knowledge.cuda_toolkit(cuda)
        if Version(cuda).major != major or Version(cuda) > Version(plan.cuda) or toolkit is None:
            continue
        minimum = _image_min_driver(toolkit, image.split(":")[1].split("-")[0])
        if minimum is not None and driver_satisfies(plan.target.driver, minimum):
            return image
    return python_image


def _image_min_driver(toolkit: CudaToolkit, release: str) -> str | None:
    """Table 3's minimum for the image's exact CUDA release (12.2.2 needs 535.104.05, 12.2.0 GA 535.54.03).

    The container toolkit checks only major.minor (NVIDIA_REQUIRE_CUDA), but the image's own runtime
    libraries are of the exact release: asking for its own minimum keeps the image runnable without relying
    on minor-version compatibility.
    """
    for update in toolkit.updates:
        if release in re.findall(r"\d+\.\d+\.\d+", update.release):
            return update.linux_min_driver if isinstance(update.linux_min_driver, str) else None
    return toolkit.linux_min_driver if isinstance(toolkit.linux_min_driver, str) else None


def format_dockerfile(plan: SetupPlan, knowledge: Knowledge) -> str:
    """A Dockerfile: the base image, Python through uv, the pinned wheels, and `envcheck doctor` as health check."""
    install = " ".join(pip_arguments(plan))
    image = base_image(plan, knowledge)
    lines = [
        f"# envcheck setup: torch {plan.torch} ({plan.variant}) for {plan.target.describe()}",
        # "envcheck" on PyPI is an unrelated project: the health check installs envcheck's own wheel
        "# envcheck for the health check: `pip wheel --no-deps -w . /path/to/envcheck` next to this file",
        f"FROM {image}",
        "COPY --from=ghcr.io/astral-sh/uv:latest /uv /usr/local/bin/uv",
        "COPY envcheck_ml-*.whl /tmp/",
        "ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH UV_PYTHON_INSTALL_DIR=/opt/python",
        f"RUN uv venv --python {plan.target.python} /opt/venv \\",
        f"    && uv pip {install} \\",
        "    && uv pip install /tmp/envcheck_ml-*.whl && rm /tmp/envcheck_ml-*.whl",
    ]
    if plan.cuda:
        # what nvidia/cuda images set; on a plain Python image these make the container toolkit mount the driver
        lines.append("ENV NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility")
    lines.append("HEALTHCHECK --interval=5m --timeout=2m CMD envcheck doctor --only install --only cuda || exit 1")
    return "\n".join(lines) + "\n"


def plan_to_dict(plan: SetupPlan) -> dict[str, Any]:
    target = plan.target
    return {
        "schema": SCHEMA,
        "fits": plan.fits,
        "torch": plan.torch,
        "torchvision": plan.torchvision,
        "torchaudio": plan.torchaudio,
        "variant": plan.variant,
        "accelerator": plan.accelerator,
        "cuda": plan.cuda,
        "index_url": plan.index_url,
        "requirements": list(requirement_lines(plan)) if plan.fits else [],
        "commands": list(commands(plan)),
        "reasons": list(plan.reasons),
        "ruled_out": [{"torch": r.torch, "variant": r.variant, "reason": r.reason} for r in plan.ruled_out],
        "upgrades": list(plan.upgrades),
        "target": {
            "os": target.os,
            "arch": target.arch,
            "python": target.python,
            "driver": target.driver,
            "gpus": [{"name": g.name, "compute_capability": g.compute_capability} for g in target.gpus],
            "source": target.source,
            "interpreter": target.interpreter,
        },
    }


def format_json(plan: SetupPlan) -> str:
    return json.dumps(plan_to_dict(plan), indent=2, allow_nan=False)


def format_plan(plan: SetupPlan, output_format: str, knowledge: Knowledge) -> str:
    """The plan in ``output_format`` (one of FORMATS); json also describes a plan that does not fit."""
    if output_format == "json":
        return format_json(plan) + "\n"
    if output_format == "dockerfile":
        return format_dockerfile(plan, knowledge)
    writers = {"pip": format_pip, "uv": format_uv, "conda": format_conda, "requirements": format_requirements}
    if output_format not in writers:
        raise ValueError(f"unknown format {output_format!r}")
    if not plan.fits:
        raise NoFitError("nothing to install: " + "; ".join(plan.reasons + plan.upgrades))
    return writers[output_format](plan)
