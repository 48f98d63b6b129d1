"""`--from` OpenMMLab's environment pasted as the repr of its dict (`print(collect_env())` in mmcv, mmengine, mmdet
3.x, mmpose): `OrderedDict([('sys.platform', 'linux'), ...])` or `{'sys.platform': 'linux', ...}`, whole or wrapped
across lines, gives the same facts as the `label: value` lines the same dict is logged as."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import time
from collections import OrderedDict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envcheck.checks.registry import CheckInput, run_checks
from envcheck.facts.framework import FrameworkFacts
from envcheck.facts.gpu import GpuFacts
from envcheck.facts.python import PythonFacts
from envcheck.facts.toolchain import Tool, ToolchainFacts
from envcheck.finding import Severity
from envcheck.importers.collect_env import CollectEnvError
from envcheck.importers.framework_env import OPENMMLAB, FrameworkEnvError, format_of, snapshot_from_framework_env
from envcheck.importers.framework_env_repr import env_repr_as_lines, looks_like_env_repr
from envcheck.loaders import InputError, load_snapshot_file
from envcheck.snapshot import Snapshot

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "framework_env"
MMDET_LINES = FIXTURES / "mmdet-torch1.6-cu101-4x-rtx2080ti.txt"
WRAPPED = FIXTURES / "mmengine-repr-torch2.3.1-cu121-rtx2070-wrapped.txt"
WINDOWS = FIXTURES / "mmpose-repr-torch1.12.1-cu113-rtx3090-windows.txt"


def load(text: str, name: str = "env.txt") -> Snapshot:
    return snapshot_from_framework_env(text.encode(), name)


def failures(snapshot: Snapshot) -> dict[str, str]:
    return {f.id: f.title for f in run_checks(CheckInput(snapshot)) if f.severity is Severity.FAIL}


def logged_dict(path: Path) -> OrderedDict[str, object]:
    """The dict OpenMMLab's collect_env returned, read back from the lines its logger printed for it."""
    env: OrderedDict[str, object] = OrderedDict()
    key = ""
    for line in path.read_text().splitlines():
        if line.startswith("  ") and key == "PyTorch compiling details":
            env[key] = f"{env[key]}\n{line}"
            continue
        if not line.strip():
            continue
        key, _, value = line.partition(": ")
        env[key] = {"True": True, "False": False}.get(value, value)
    return env


def wrapped(text: str, width: int = 60) -> str:
    """`text` as a page wraps it: a line break after a space once a line is `width` long, the space kept."""
    return re.sub(rf"([^\n]{{{width},}}?) ", r"\1 \n", text)


@pytest.mark.parametrize("spelling", ["ordered", "dict", "ordered-wrapped", "dict-wrapped"])
def test_the_repr_gives_the_same_facts_as_the_logged_lines(spelling: str) -> None:
    env = logged_dict(MMDET_LINES)
    assert env["CUDA available"] is True and str(env["PyTorch compiling details"]).count("\n") > 5
    text = repr(env) if spelling.startswith("ordered") else repr(dict(env))  # Python's own repr, as print() writes it
    if spelling.endswith("wrapped"):
        text = wrapped(text)
        assert text.count("\n") > 10
    assert format_of(text) == OPENMMLAB
    assert load(text) == load(MMDET_LINES.read_text())


def test_a_wrapped_mmengine_paste_with_escaped_build_settings() -> None:
    snapshot = load(WRAPPED.read_text(), WRAPPED.name)
    assert snapshot.source == f"openmmlab-env:{WRAPPED.name}"
    framework = snapshot.framework
    assert isinstance(framework, FrameworkFacts) and framework.torch is not None
    torch = framework.torch
    assert (torch.version, torch.cuda_version, torch.cudnn_version, torch.is_cuda_available) == (
        "2.3.1+cu121",
        "12.1",
        8902,
        True,
    )
    assert torch.arch_list == ("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90")
    assert framework.python_version.startswith("3.10.12 ") or framework.python_version == "3.10.12"
    assert isinstance(snapshot.gpu, GpuFacts)
    assert [gpu.name for gpu in snapshot.gpu.gpus] == ["NVIDIA GeForce RTX 2070"]
    assert isinstance(snapshot.python, PythonFacts)
    versions = {package.name: package.version for package in snapshot.python.packages}
    assert (versions["torchvision"], versions["mmengine"], versions["mmcv"]) == ("0.18.1+cu121", "0.10.4", "2.1.0")
    toolchain = snapshot.toolchain
    assert isinstance(toolchain, ToolchainFacts)
    assert isinstance(toolchain.nvcc, Tool) and toolchain.nvcc.version == "12.1.105"
    assert isinstance(toolchain.gcc, Tool) and toolchain.gcc.version == "11.4.0"
    assert failures(snapshot) == {}


def test_a_one_line_windows_paste_keeps_its_paths() -> None:
    lines = env_repr_as_lines(WINDOWS.read_text())
    assert "CUDA_HOME: C:\\Program Files\\NVIDIA GPU Computing Toolkit\\CUDA\\v11.3\n" in lines
    snapshot = load(WINDOWS.read_text(), WINDOWS.name)
    framework = snapshot.framework
    assert isinstance(framework, FrameworkFacts) and framework.torch is not None
    assert (framework.torch.version, framework.torch.cuda_version, framework.torch.cudnn_version) == (
        "1.12.1+cu113",
        "11.3",
        8302,
    )
    assert framework.torch.arch_list[-2:] == ("sm_86", "compute_37")
    assert isinstance(snapshot.gpu, GpuFacts) and snapshot.gpu.gpus[0].name == "NVIDIA GeForce RTX 3090"
    assert failures(snapshot) == {}


def test_a_cpu_build_under_a_gpu_fails_from_the_repr() -> None:
    text = WRAPPED.read_text().replace("('PyTorch', '2.3.1+cu121')", "('PyTorch', '2.3.1+cpu')")
    text = text.replace("('CUDA available', True)", "('CUDA available', False)")
    text = text.replace("- CUDA Runtime 12.1\\n", "").replace("CUDA_VERSION=12.1, ", "")
    assert "CUDA Runtime" not in text and "+cpu" in text
    assert "1 NVIDIA GPU" in failures(load(text))["install.cpu_wheel_on_gpu"]


def test_a_paste_cut_inside_the_build_settings_gives_what_it_has() -> None:
    text = WRAPPED.read_text().split("- CuDNN 8.9.2")[0]  # the string, the tuple and the dict never close
    snapshot = load(text)
    framework = snapshot.framework
    assert isinstance(framework, FrameworkFacts) and framework.torch is not None
    assert (framework.torch.version, framework.torch.cuda_version) == ("2.3.1+cu121", "12.1")
    assert framework.torch.arch_list[-1] == "sm_90"
    assert isinstance(snapshot.gpu, GpuFacts) and snapshot.gpu.gpus[0].name == "NVIDIA GeForce RTX 2070"


def test_a_version_cut_short_is_not_read() -> None:
    text = WINDOWS.read_text().split("('PyTorch', '1.1")[0] + "('PyTorch', '1.1"
    with pytest.raises(FrameworkEnvError, match="no readable PyTorch row"):
        load(text)


def test_from_a_paste_cut_before_pytorch_exits_2_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "mmpose-env.txt"
    path.write_text(WRAPPED.read_text().split("('PyTorch', ")[0])
    with pytest.raises(InputError, match=r"mmpose-env\.txt: no readable PyTorch row"):
        load_snapshot_file(path)
    command = [sys.executable, "-m", "envcheck", "doctor", "--from", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "mmpose-env.txt" in result.stdout + result.stderr
    assert len((result.stdout + result.stderr).strip().splitlines()) == 1


def test_doctor_from_a_repr_paste(tmp_path: Path) -> None:
    path = tmp_path / "env.txt"
    path.write_text("Here is my environment:\n\n```\n" + WRAPPED.read_text() + "```\n")
    command = [sys.executable, "-m", "envcheck", "doctor", "--from", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "torch 2.3.1+cu121" in result.stdout and "openmmlab-env:env.txt" in result.stdout.replace("\n", "")


@pytest.mark.parametrize(
    ("written", "read"),
    [
        (r"'a\\b'", "a\\b"),
        (r"'it\'s'", "it's"),
        ('"it\'s"', "it's"),
        (r"'\x41\u00e9\U0001F600'", "A\u00e9\U0001f600"),
        (r"'\ud800'", "\ufffd"),  # a lone surrogate cannot be printed
        (r"'\U00110000'", "\ufffd"),
        (r"'\x4'", "\\x4"),  # too few digits: kept as written
        (r"'C:\Program Files\CUDA\v11.3'", "C:\\Program Files\\CUDA\\v11.3"),  # typed by hand, not repr'd
        ("'one\\\nn two'", "one\n two"),  # a wrap between the backslash and its letter
    ],
)
def test_the_escapes_repr_writes(written: str, read: str) -> None:
    lines = env_repr_as_lines(f"{{'sys.platform': 'linux', 'PyTorch compiling details': {written}}}")
    assert lines == f"sys.platform: linux\nPyTorch compiling details: {read}\n"


def test_deep_nesting_and_a_huge_paste_are_read_in_one_pass() -> None:
    text = "OrderedDict([('sys.platform', 'linux'), ('x', " + "(" * 200_000 + "'y'" + ")" * 200_000 + "])"
    started = time.monotonic()
    assert env_repr_as_lines(text) == "sys.platform: linux\n"
    many = "{'sys.platform': 'linux', " + ", ".join(f"'k{i}': {i}" for i in range(5000)) + "}"
    assert env_repr_as_lines(many).count("\n") == 500  # at most _MAX_PAIRS pairs
    assert time.monotonic() - started < 10


def test_prose_that_only_mentions_a_dict_is_not_this_layout() -> None:
    assert not looks_like_env_repr("env = {'platform': 'linux'}\nsys.platform: linux\n")
    assert env_repr_as_lines("no dict here (it's fine)") == ""


PIECES = [*"'\"\\()[]{},:\n x0", "True", "None", "\\n", "\\x", "\\u12"]
MUTATIONS = st.lists(
    st.tuples(
        st.sampled_from(["insert", "delete", "cut"]),
        st.floats(min_value=0, max_value=1),
        st.lists(st.sampled_from([*"'\"\\()[]{},:\n x0", "True", "None", "\\n", "\\x", "\\u12"]), max_size=8).map(
            "".join
        ),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutations=MUTATIONS, seed=st.sampled_from([WRAPPED, WINDOWS]))
def test_fuzz_a_mutated_repr_is_read_or_refused_in_one_line(
    tmp_path: Path, mutations: list[tuple[str, float, str]], seed: Path
) -> None:
    """Quotes, brackets and escapes inserted, spans deleted, the paste cut: a Snapshot or a one-line error."""
    text = seed.read_text()
    for action, where, piece in mutations:
        at = int(len(text) * where)
        if action == "insert":
            text = text[:at] + piece + text[at:]
        elif action == "delete":
            text = text[:at] + text[at + len(piece) + 1 :]
        else:
            text = text[: max(at, 1)]
    env_repr_as_lines(text)
    path = tmp_path / "fuzz.txt"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    with contextlib.suppress(InputError):
        load_snapshot_file(path)
    with contextlib.suppress(FrameworkEnvError, CollectEnvError):
        snapshot_from_framework_env(path.read_bytes(), path.name)
