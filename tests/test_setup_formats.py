"""Every output format of a plan is valid: pip/uv/conda commands, requirements, a Dockerfile that parses, JSON."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import replace

import pytest

from envcheck.advise.setup_formats import FORMATS, NoFitError, base_image, format_plan
from envcheck.advise.setup_plan import SetupPlan, plan_setup
from envcheck.advise.target import hypothetical_target
from envcheck.knowledge import load_knowledge

KNOWLEDGE = load_knowledge()
# https://docs.docker.com/reference/dockerfile/#overview
DOCKERFILE_INSTRUCTIONS = {
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
    "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
}  # fmt: skip


def plan_for(gpus: tuple[str, ...], driver: str | None, python: str = "3.11", os: str = "linux") -> SetupPlan:
    arch = "arm64" if os == "macos" else "x86_64"
    target = hypothetical_target(KNOWLEDGE, gpus=gpus, driver=driver, python=python, os=os, arch=arch)
    return plan_setup(KNOWLEDGE, target)


CUDA_PLAN = plan_for(("NVIDIA L4",), "535.104.05", "3.10")  # 2.14.1 cu126, no torchaudio
OLD_PLAN = plan_for(("Tesla K80",), "470.82.01", "3.9")  # 2.7.1 cu118, with torchaudio
CPU_PLAN = plan_for((), None)
MAC_PLAN = plan_for((), None, "3.12", "macos")
NO_FIT = plan_for(("NVIDIA A100-SXM4-80GB",), "418.39", "3.12")


def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per logical line: comments dropped, backslash continuations joined."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "a continuation line runs off the end of the file"
    parsed = []
    for line in logical:
        instruction, _, arguments = line.partition(" ")
        assert instruction.upper() in DOCKERFILE_INSTRUCTIONS, f"unknown instruction {instruction!r}"
        assert instruction == instruction.upper(), "instructions are upper case by convention"
        assert arguments.strip(), f"{instruction} without arguments"
        parsed.append((instruction, arguments.strip()))
    return parsed


@pytest.mark.parametrize("plan", [CUDA_PLAN, OLD_PLAN, CPU_PLAN], ids=["cu126", "cu118", "cpu"])
def test_dockerfile_parses(plan: SetupPlan) -> None:
    instructions = parse_dockerfile(format_plan(plan, "dockerfile", KNOWLEDGE))
    assert instructions[0][0] == "FROM"
    assert [name for name, _ in instructions].count("HEALTHCHECK") == 1
    healthcheck = dict(instructions)["HEALTHCHECK"]
    assert "CMD envcheck doctor" in healthcheck
    run = dict(instructions)["RUN"]
    assert all(f"{name}=={version}" in run for name, version in plan.packages)
    shlex.split(run)  # the RUN line is valid shell words
    # "envcheck" on PyPI is an unrelated project: the image installs envcheck's own wheel, never that name
    assert "uv pip install /tmp/envcheck_ml-*.whl" in run and not re.search(r"install\s+envcheck\b", run)
    assert [args for name, args in instructions if name == "COPY"][-1] == "envcheck_ml-*.whl /tmp/"


def test_base_image_cuda_is_supported_by_the_driver_itself() -> None:
    # Table 3: 12.2.2 (Update 2) needs 535.104.05, 12.3 needs 545.23.06
    assert base_image(CUDA_PLAN, KNOWLEDGE) == "nvidia/cuda:12.2.2-base-ubuntu22.04"
    # driver 535.86.05 is below 12.2.2's 535.104.05 (and 12.2.1's 535.86.09): 12.1.1 (530.30.02)
    older_driver = replace(CUDA_PLAN, target=replace(CUDA_PLAN.target, driver="535.86.05"))
    assert base_image(older_driver, KNOWLEDGE) == "nvidia/cuda:12.1.1-base-ubuntu22.04"
    # driver 470.82.01 meets 11.4.3's own minimum (470.82.01) but not 11.7's (515.43.04)
    assert base_image(OLD_PLAN, KNOWLEDGE) == "nvidia/cuda:11.4.3-base-ubuntu20.04"
    below_11_4_3 = replace(OLD_PLAN, target=replace(OLD_PLAN.target, driver="470.57.02"))
    assert base_image(below_11_4_3, KNOWLEDGE) == "python:3.9-slim"  # no listed 11.x image starts
    assert base_image(CPU_PLAN, KNOWLEDGE) == "python:3.11-slim"


def test_pip_and_uv_commands() -> None:
    pip = shlex.split(format_plan(CUDA_PLAN, "pip", KNOWLEDGE))
    assert pip == [
        "python", "-m", "pip", "install", "torch==2.14.1+cu126", "torchvision==0.29.1+cu126",
        "--index-url", "https://download.pytorch.org/whl/cu126",
    ]  # fmt: skip
    uv = shlex.split(format_plan(OLD_PLAN, "uv", KNOWLEDGE))
    assert uv[:3] == ["uv", "pip", "install"]
    assert "torchaudio==2.7.1+cu118" in uv
    assert uv[-2:] == ["--index-url", "https://download.pytorch.org/whl/cu118"]
    assert "--index-url" not in format_plan(MAC_PLAN, "pip", KNOWLEDGE)  # PyPI's macOS wheels


def test_conda_command() -> None:
    words = shlex.split(format_plan(OLD_PLAN, "conda", KNOWLEDGE))
    assert words[:5] == ["conda", "install", "-c", "conda-forge", "--override-channels"]
    assert "pytorch=2.7.1=cuda*" in words
    assert "cuda-version>=11.0,<=11.8" in words
    assert "pytorch=2.15.0=cpu*" in shlex.split(format_plan(CPU_PLAN, "conda", KNOWLEDGE))


def test_requirements_file() -> None:
    lines = format_plan(OLD_PLAN, "requirements", KNOWLEDGE).splitlines()
    assert lines[0].startswith("# envcheck setup: torch 2.7.1 (cu118)")
    assert lines[1:] == [
        "--index-url https://download.pytorch.org/whl/cu118",
        "torch==2.7.1+cu118",
        "torchvision==0.22.1+cu118",
        "torchaudio==2.7.1+cu118",
    ]


@pytest.mark.parametrize("plan", [CUDA_PLAN, CPU_PLAN, MAC_PLAN, NO_FIT], ids=["cuda", "cpu", "mac", "no-fit"])
def test_json_has_the_required_keys(plan: SetupPlan) -> None:
    document = json.loads(format_plan(plan, "json", KNOWLEDGE))
    required = {"torch", "torchvision", "torchaudio", "variant", "index_url", "commands", "reasons", "fits"}
    assert required <= set(document)
    assert document["fits"] is plan.fits
    if plan.fits:
        assert document["commands"] and document["torch"] == plan.torch
    else:
        assert document["commands"] == [] and document["upgrades"]


@pytest.mark.parametrize("output_format", [f for f in FORMATS if f != "json"])
def test_formats_refuse_a_plan_that_does_not_fit(output_format: str) -> None:
    with pytest.raises(NoFitError, match="upgrade the NVIDIA driver"):
        format_plan(NO_FIT, output_format, KNOWLEDGE)


def test_dockerfile_checker_rejects_broken_files() -> None:
    with pytest.raises(AssertionError, match="unknown instruction"):
        parse_dockerfile("FROM python:3.11-slim\nINSTALL torch\n")
    with pytest.raises(AssertionError, match="continuation"):
        parse_dockerfile("FROM python:3.11-slim\nRUN pip install \\\n")


def test_commands_name_the_target_interpreter() -> None:
    # `setup --python /usr/bin/python3` must not print another interpreter's `python -m pip` (issue 13)
    real = replace(CPU_PLAN, target=replace(CPU_PLAN.target, interpreter="/opt/my env/bin/python3"))
    pip = shlex.split(format_plan(real, "pip", KNOWLEDGE))
    assert pip[:4] == ["/opt/my env/bin/python3", "-m", "pip", "install"]
    uv = shlex.split(format_plan(real, "uv", KNOWLEDGE))
    assert uv[:5] == ["uv", "pip", "install", "--python", "/opt/my env/bin/python3"]
    document = json.loads(format_plan(real, "json", KNOWLEDGE))
    assert document["commands"][0].startswith("'/opt/my env/bin/python3' -m pip install torch==")
    assert document["target"]["interpreter"] == "/opt/my env/bin/python3"
    assert document["requirements"] == [f"torch=={real.torch}+cpu", f"torchvision=={real.torchvision}+cpu"]
