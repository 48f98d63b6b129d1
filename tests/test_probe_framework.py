"""The framework probe in this venv (real torch), in a Python without torch, over fake torch packages, and
against fake interpreters that hang, crash or print garbage (real executables the tests write)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import sys
import textwrap
import time
from pathlib import Path

import pytest

from envcheck.codec import decode, encode
from envcheck.facts.common import Unavailable
from envcheck.facts.framework import FrameworkFacts
from envcheck.probes.context import ProbeContext
from envcheck.probes.errors import ProbeError
from envcheck.probes.framework import probe_framework
from envcheck.probes.target import parse_output, run_target_script
from envcheck.probes.target_script import MARKER, format_nccl_version

SYSTEM_PYTHON = Path("/usr/bin/python3")
NO_KERNEL = "CUDA error: no kernel image is available for execution on the device"

# The JSON a minimal framework run prints: what the fake interpreters below answer with.
NO_TORCH = {
    "interpreter": "/opt/fake/bin/python",
    "python_version": "3.8.10",
    "is_torch_installed": False,
    "torch": None,
    "import_error": None,
    "import_traceback_tail": None,
}


def encode_json(value: object) -> str:
    return json.dumps(value)


def fake_interpreter(tmp_path: Path, body: str, name: str = "python") -> str:
    """A real executable standing in for an interpreter: a shell script that ignores its arguments."""
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return str(path)


def context(python: str, timeout_s: float = 60.0, **variables: str) -> ProbeContext:
    return ProbeContext(python=python, environ={**os.environ, **variables}, framework_timeout_s=timeout_s)


def assert_round_trip(facts: FrameworkFacts) -> None:
    assert decode(FrameworkFacts, encode(facts)) == facts


# --- real interpreters --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live() -> FrameworkFacts:
    return probe_framework(ProbeContext())


def test_live_torch_in_this_venv(live: FrameworkFacts) -> None:
    assert live.interpreter == sys.executable
    assert live.is_torch_installed
    assert live.import_error is None
    torch = live.torch
    assert torch is not None
    # the metadata has the public version, torch.__version__ adds the local build tag (2.15.0+cu132); not
    # pinned: the README installs whichever torch is newest
    assert torch.version.split("+")[0] == importlib.metadata.version("torch")
    assert torch.location == str(importlib.metadata.distribution("torch").locate_file("torch"))
    # this machine has no GPU
    assert not torch.is_cuda_available
    assert (torch.device_count, torch.devices) == (0, ())
    assert torch.cpu_smoke_test is not None
    assert torch.cpu_smoke_test.passed, torch.cpu_smoke_test
    assert torch.cpu_smoke_test.max_abs_error is not None
    assert torch.cpu_smoke_test.max_abs_error < 1e-3  # float32 with TF32/bfloat16 off: ~2e-5
    assert torch.import_duration_s > 0
    if torch.cuda_version is not None:  # a CUDA build on a machine without a driver says why
        assert torch.cuda_error
        assert torch.arch_list
    assert isinstance(torch.cxx11_abi, bool)
    # the extensions this venv holds, by their metadata (triton comes with Linux CUDA wheels; listed, not imported)
    assert isinstance(live.extensions, tuple)
    for extension in live.extensions:
        assert extension.version == importlib.metadata.version(extension.name)
    assert_round_trip(live)


@pytest.mark.skipif(not SYSTEM_PYTHON.exists(), reason="no /usr/bin/python3")
def test_python_without_torch() -> None:
    facts = probe_framework(context(str(SYSTEM_PYTHON)))
    if facts.is_torch_installed:
        pytest.skip("/usr/bin/python3 has torch here")
    assert facts.interpreter == str(SYSTEM_PYTHON)
    assert facts.torch is None
    assert facts.import_error is None  # not installed is the fact; there was no import to fail
    assert_round_trip(facts)


# --- fake torch packages, imported by this venv's Python through PYTHONPATH ------------------------------------

FAKE_TORCH = {
    "__init__.py": """
        import os
        import sys
        import types

        from torch import cuda, version
        import torch.cuda.nccl

        __version__ = "2.3.1+cu121"
        print("stray output from an import", end="")  # left without a newline, as some libraries do
        sys.stdout.flush()
        os.write(1, b"and C-level noise")

        class Tensor:
            def double(self): return self
            def __matmul__(self, other): return self
            def __add__(self, other): return self
            def __sub__(self, other): return self
            def abs(self): return self
            def max(self): return self
            def item(self): return 0.0
            def cpu(self): return self
            def to(self, device):
                if device.startswith("cuda"):
                    raise RuntimeError("CUDA error: no kernel image is available for execution on the device")
                return self

        class Generator:
            def manual_seed(self, seed): return self

        def randn(*shape, generator=None): return Tensor()
        def device(name): return name
        def set_float32_matmul_precision(precision): pass

        def _cudnn_version():
            raise RuntimeError("cuDNN version incompatibility: compiled against (8, 9, 2) but found (8, 5, 0)")

        backends = types.SimpleNamespace(
            cudnn=types.SimpleNamespace(version=_cudnn_version),
            mps=types.SimpleNamespace(is_available=lambda: False),
            cuda=types.SimpleNamespace(is_built=lambda: True),
        )
    """,
    "version.py": """
        cuda = "12.1"
        hip = None
    """,
    "cuda/__init__.py": """
        import os
        import types
        import warnings

        def is_available():
            if os.environ.get("FAKE_TORCH_GPU") != "1":
                warnings.warn("CUDA initialization: The NVIDIA driver on your system is too old (found version 11040).")
                return False
            return True

        def init():
            raise AssertionError("not called when is_available() gave a reason")

        def device_count(): return 2
        def get_arch_list(): return ["sm_50", "sm_60", "sm_70", "sm_80", "sm_90"]

        def get_device_properties(index):
            if index == 1:
                raise RuntimeError("CUDA error: unspecified launch failure")
            return types.SimpleNamespace(
                name="NVIDIA GeForce RTX 5090", major=12, minor=0, total_memory=34190917632, multi_processor_count=170
            )
    """,
    "cuda/nccl.py": """
        def version(): return (2, 20, 5)
    """,
}


def write_package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "torch" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def test_torch_that_fails_to_import(tmp_path: Path) -> None:
    error = "libcudnn.so.9: cannot open shared object file: No such file or directory"
    write_package(tmp_path, {"__init__.py": f"raise ImportError({error!r})"})
    facts = probe_framework(context(sys.executable, PYTHONPATH=str(tmp_path)))
    assert facts.is_torch_installed
    assert facts.torch is None
    assert facts.import_error == "ImportError: libcudnn.so.9: cannot open shared object file: No such file or directory"
    assert facts.import_traceback_tail is not None
    assert str(tmp_path / "torch" / "__init__.py") in facts.import_traceback_tail
    assert facts.import_traceback_tail.endswith(facts.import_error)
    assert_round_trip(facts)


def test_a_torch_folder_shadowing_the_package(tmp_path: Path) -> None:
    # a regular package (a bare folder would not do: Python prefers any regular package to a namespace one)
    write_package(tmp_path, {"__init__.py": ""})
    facts = probe_framework(context(sys.executable, PYTHONPATH=str(tmp_path)))
    assert facts.torch is None
    assert facts.import_error is not None
    assert str(tmp_path / "torch") in facts.import_error
    assert "no __version__" in facts.import_error


def test_cuda_unavailable_with_torch_reason_and_odd_values(tmp_path: Path) -> None:
    facts = probe_framework(context(sys.executable, PYTHONPATH=str(write_package(tmp_path, FAKE_TORCH))))
    torch = facts.torch
    assert torch is not None
    assert torch.version == "2.3.1+cu121"
    assert (torch.cuda_version, torch.hip_version) == ("12.1", None)
    assert not torch.is_cuda_available
    assert torch.cuda_error == "CUDA initialization: The NVIDIA driver on your system is too old (found version 11040)."
    assert isinstance(torch.cudnn_version, Unavailable)
    assert torch.cudnn_version.reason.startswith("RuntimeError: cuDNN version incompatibility")
    assert torch.nccl_version == "2.20.5"
    assert torch.arch_list == ("sm_50", "sm_60", "sm_70", "sm_80", "sm_90")
    assert (torch.device_count, torch.devices) == (0, ())  # devices are listed only when CUDA is available
    assert torch.location == str(tmp_path / "torch")
    assert_round_trip(facts)


def test_gpu_without_kernels_for_it_and_a_gpu_without_properties(tmp_path: Path) -> None:
    write_package(tmp_path, FAKE_TORCH)
    facts = probe_framework(context(sys.executable, PYTHONPATH=str(tmp_path), FAKE_TORCH_GPU="1"))
    torch = facts.torch
    assert torch is not None
    assert torch.is_cuda_available
    assert torch.cuda_error is None
    assert torch.cpu_smoke_test is not None
    assert torch.cpu_smoke_test.passed
    first, second = torch.devices
    assert (first.name, first.compute_capability, first.memory_total_bytes, first.multiprocessor_count) == (
        "NVIDIA GeForce RTX 5090",
        "12.0",
        34190917632,
        170,
    )
    assert not first.smoke_test.passed
    assert first.smoke_test.max_abs_error is None
    assert first.smoke_test.error == f"RuntimeError: {NO_KERNEL}"
    assert isinstance(second.name, Unavailable)
    assert second.name.reason == "RuntimeError: CUDA error: unspecified launch failure"
    assert second.compute_capability == second.name
    assert_round_trip(facts)


# --- fake interpreters: every way the run can fail ------------------------------------------------------------


def test_missing_interpreter() -> None:
    with pytest.raises(ProbeError, match=r"^interpreter not found: /nonexistent/bin/python$"):
        probe_framework(context("/nonexistent/bin/python"))


def test_interpreter_that_is_not_executable(tmp_path: Path) -> None:
    path = tmp_path / "python"
    path.write_text("#!/bin/sh\n")
    with pytest.raises(ProbeError, match=r"^interpreter not found: .*not an executable file"):
        probe_framework(context(str(path)))


def test_bare_name_is_found_on_the_targets_path(tmp_path: Path) -> None:
    fake_interpreter(tmp_path, f"echo '{MARKER}{encode_json(NO_TORCH)}'", name="python3.8")
    facts = probe_framework(context("python3.8", PATH=str(tmp_path)))
    assert facts.interpreter == NO_TORCH["interpreter"]


def test_hang_is_killed_at_the_timeout(tmp_path: Path) -> None:
    python = fake_interpreter(tmp_path, "echo importing torch >&2\nsleep 600\n")
    started = time.monotonic()
    with pytest.raises(ProbeError, match=r"did not finish within 2 s and was killed.*importing torch") as error:
        probe_framework(context(python, timeout_s=2))
    assert time.monotonic() - started < 3.5
    assert python in str(error.value)


def test_hang_kills_the_children_too(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    python = fake_interpreter(tmp_path, f"sleep 600 &\necho $! > {pid_file}\nsleep 600\n")
    with pytest.raises(ProbeError, match="did not finish within 1 s"):
        probe_framework(context(python, timeout_s=1))
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 3
    while is_running(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not is_running(child)


def test_a_child_holding_the_pipes_after_the_script_finished(tmp_path: Path) -> None:
    python = fake_interpreter(tmp_path, f"sleep 600 &\necho '{MARKER}{encode_json(NO_TORCH)}'\n")
    facts = probe_framework(context(python, timeout_s=1))
    assert not facts.is_torch_installed


def test_crash_names_the_signal(tmp_path: Path) -> None:
    python = fake_interpreter(tmp_path, "echo 'Fatal Python error: Segmentation fault' >&2\nkill -SEGV $$\n")
    with pytest.raises(ProbeError, match=r"crashed with SIGSEGV: Fatal Python error: Segmentation fault$"):
        probe_framework(context(python))


def test_non_zero_exit_quotes_the_end_of_stderr(tmp_path: Path) -> None:
    noise = "x" * 2000
    python = fake_interpreter(tmp_path, f"echo {noise} >&2\necho 'OSError: libcuda.so.1: cannot open' >&2\nexit 3\n")
    with pytest.raises(
        ProbeError, match=r"exited with status 3: \.\.\.x+ OSError: libcuda.so.1: cannot open$"
    ) as error:
        probe_framework(context(python))
    assert "\n" not in str(error.value)
    assert len(str(error.value)) < 600


def test_garbage_without_a_result(tmp_path: Path) -> None:
    python = fake_interpreter(tmp_path, "echo 'Python 2.7.18'\necho 'SyntaxError: invalid syntax' >&2\n")
    with pytest.raises(ProbeError, match=r"printed no result .*SyntaxError: invalid syntax"):
        probe_framework(context(python))


def test_marker_with_invalid_json(tmp_path: Path) -> None:
    python = fake_interpreter(tmp_path, f"echo '{MARKER}{{\"interpreter\": '\n")
    with pytest.raises(ProbeError, match="printed an unreadable result"):
        probe_framework(context(python))


@pytest.mark.parametrize(
    ("result", "message"),
    [
        ("[1, 2]", "printed list JSON, not an object"),
        ('{"interpreter": 3}', r"cannot read: \$\.interpreter: expected str, got int 3"),
    ],
)
def test_result_of_the_wrong_shape(tmp_path: Path, result: str, message: str) -> None:
    python = fake_interpreter(tmp_path, f"echo '{MARKER}{result}'\n")
    with pytest.raises(ProbeError, match=message):
        probe_framework(context(python))


def test_wrong_field_type_deep_inside(tmp_path: Path) -> None:
    torch = {"version": "2.3.1", "device_count": "two"}
    result = encode_json({**NO_TORCH, "is_torch_installed": True, "torch": torch})
    python = fake_interpreter(tmp_path, f"echo '{MARKER}{result}'\n")
    with pytest.raises(ProbeError, match=r"\$\.torch\.\w+"):
        probe_framework(context(python))


def test_the_last_marker_line_wins_over_noise() -> None:
    stdout = f"noise\n{MARKER}{{}}\nmore noise\n{MARKER}{encode_json(NO_TORCH)}\ntrailing\n".encode()
    assert parse_output("python", "framework", 0, stdout, b"") == NO_TORCH


def test_runner_reports_unknown_signals_by_number() -> None:
    with pytest.raises(ProbeError, match="crashed with signal 99"):
        parse_output("python", "framework", -99, b"", b"")


def test_runner_usage_error_for_an_unknown_mode() -> None:
    with pytest.raises(ProbeError, match=r"exited with status 2: usage: .*interpreter\|framework"):
        run_target_script(sys.executable, "nonsense", 30, os.environ)


def is_running(pid: int) -> bool:
    """Whether a process exists and is not a zombie (a container's init may be slow to reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@pytest.mark.parametrize(
    ("version", "expected"),
    [((2, 20, 5), "2.20.5"), ((2, 21, 5, "+cuda12.4"), "2.21.5+cuda12.4"), (2708, "2.7.8"), (21003, "2.10.3")],
)
def test_nccl_versions_old_and_new(version: object, expected: str) -> None:
    assert format_nccl_version(version) == expected


# --- what torch says while it is imported and CUDA initialised, decoded as in a pasted report -------------------

# Real wordings (torch/cuda/__init__.py's capability warning, c10's driver check, NumPy 2's import guard print and
# torch's "Failed to initialize NumPy" warning), emitted by a fake torch as the real one emits them.
SAYING_TORCH = {
    **FAKE_TORCH,
    "__init__.py": FAKE_TORCH["__init__.py"]
    + """
        import warnings as _warnings
        sys.stderr.write(
            "\\nA module that was compiled using NumPy 1.x cannot be run in\\nNumPy 2.0.0 as it may crash. To support "
            "both 1.x and 2.x\\nversions of NumPy, modules must be compiled with NumPy 2.0.\\n"
        )
        _warnings.warn("Failed to initialize NumPy: _ARRAY_API not found (Triggered internally at "
                       "../torch/csrc/utils/tensor_numpy.cpp:84.)")
    """,
    "cuda/__init__.py": FAKE_TORCH["cuda/__init__.py"].replace(
        "            return True",
        """            warnings.warn(
                "\\nNVIDIA GeForce RTX 5090 with CUDA capability sm_120 is not compatible with the current PyTorch "
                "installation.\\nThe current PyTorch install supports CUDA capabilities sm_50 sm_60 sm_70 sm_75 sm_80 "
                "sm_86 sm_90.\\nIf you want to use the NVIDIA GeForce RTX 5090 GPU with PyTorch, please check the "
                "instructions at https://pytorch.org/get-started/locally/\\n"
            )
            return True""",
    ),
}


def test_torch_warnings_and_stderr_become_the_snapshot_messages(tmp_path: Path) -> None:
    from envcheck.collect import runtime_messages_of

    assert "sm_120" in SAYING_TORCH["cuda/__init__.py"]  # the replacement above found its text
    write_package(tmp_path, SAYING_TORCH)
    facts = probe_framework(context(sys.executable, PYTHONPATH=str(tmp_path), FAKE_TORCH_GPU="1"))
    assert any(line.startswith("UserWarning: Failed to initialize NumPy") for line in facts.runtime_output)
    messages = runtime_messages_of(facts)
    (arch,) = messages.unsupported_archs
    assert (arch.gpu_name, arch.compute_capability) == ("NVIDIA GeForce RTX 5090", "12.0")
    assert arch.arch_list[-1] == "sm_90" and arch.source_line.startswith("NVIDIA GeForce RTX 5090 with CUDA")
    assert messages.numpy_failure is not None and messages.numpy_failure.numpy_version == "2.0.0"
    assert messages.driver_too_old is None  # this run's CUDA initialised
    assert_round_trip(facts)


def test_the_driver_too_old_warning_is_read_live(tmp_path: Path) -> None:
    from envcheck.collect import runtime_messages_of

    facts = probe_framework(context(sys.executable, PYTHONPATH=str(write_package(tmp_path, FAKE_TORCH))))
    messages = runtime_messages_of(facts)
    assert messages.driver_too_old is not None and messages.driver_too_old.driver_cuda_version == "11.4"
    assert "found version 11040" in messages.driver_too_old.source_line


def test_a_quiet_torch_says_nothing(live: FrameworkFacts) -> None:
    from envcheck.collect import runtime_messages_of

    assert runtime_messages_of(live).driver_too_old is None and not runtime_messages_of(live).unsupported_archs
