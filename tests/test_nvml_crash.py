"""A libnvidia-ml.so.1 that segfaults or hangs is a finding, not a dead envcheck: NVML runs in a child process.

The libraries are real: tiny shared objects compiled here with gcc and put on LD_LIBRARY_PATH, so
pynvml's own dlopen("libnvidia-ml.so.1") picks them up. The parent's reading of each way the child can
fail is tested with real tiny executables through the same bounded runner.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from envcheck.checks.gpu import check_gpu_present
from envcheck.checks.registry import CheckInput
from envcheck.collect import Probe, collect
from envcheck.facts.common import Unavailable
from envcheck.facts.gpu import GpuFacts
from envcheck.finding import Severity
from envcheck.probes.bounded import run_bounded, started_pids
from envcheck.probes.context import ProbeContext
from envcheck.probes.errors import ProbeError, ProbeTimeout
from envcheck.probes.nvml import probe_gpu, record_nvml
from envcheck.probes.nvml.backend import NvmlError
from envcheck.probes.nvml.isolated import ask_nvml, read_answer
from envcheck.probes.nvml.probe import facts_from_answer

ROOT = Path(__file__).resolve().parents[1]

FAKE_NVML = r"""
#include <unistd.h>
static int answer(void) {
#if defined(HANG)
    for (;;) pause();
#elif defined(RETURN)
    return RETURN;
#else
    volatile int *nowhere = 0;
    return *nowhere;
#endif
}
/* pynvml's nvmlInit asks for nvmlInitWithFlags; the others are what older bindings and tools look up */
int nvmlInitWithFlags(unsigned int flags) { (void)flags; return answer(); }
int nvmlInit_v2(void) { return answer(); }
int nvmlInit(void) { return answer(); }
"""


@pytest.fixture(scope="module")
def fake_nvml(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Folders holding a libnvidia-ml.so.1 whose nvmlInit segfaults, hangs, or answers 18 (version mismatch)."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the fake libnvidia-ml.so.1")
    if importlib.util.find_spec("pynvml") is None:
        pytest.skip("nvidia-ml-py is not installed, so NVML is never loaded")
    base = tmp_path_factory.mktemp("fake-nvml")
    source = base / "fake.c"
    source.write_text(FAKE_NVML)
    folders = {}
    for kind, flags in (("segfault", []), ("hang", ["-DHANG"]), ("mismatch", ["-DRETURN=18"])):
        folder = base / kind
        folder.mkdir()
        subprocess.run(
            ["gcc", *flags, "-shared", "-fPIC", "-o", str(folder / "libnvidia-ml.so.1"), str(source)], check=True
        )
        folders[kind] = folder
    return folders


def with_library(folder: Path) -> dict[str, str]:
    return {**os.environ, "LD_LIBRARY_PATH": str(folder), "PYTHONPATH": str(ROOT)}


def envcheck(*arguments: str, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "envcheck", *arguments],
        check=False,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_segfaulting_nvml_gives_a_doctor_report_with_a_finding(fake_nvml: dict[str, Path]) -> None:
    ran = envcheck("doctor", "--json", "--fast", environ=with_library(fake_nvml["segfault"]))
    assert ran.returncode in (0, 1), ran.stderr  # not 139 / -11
    report = json.loads(ran.stdout)
    assert report["exit_code"] == ran.returncode
    (present,) = [finding for finding in report["findings"] if finding["id"] == "gpu.present"]
    assert present["severity"] == "warn"
    assert "the NVML library crashed (SIGSEGV) in nvmlInit" in present["detail"]
    assert f"LD_LIBRARY_PATH: {fake_nvml['segfault']}/libnvidia-ml.so.1" in present["detail"]
    assert f"remove {fake_nvml['segfault']} from LD_LIBRARY_PATH" in present["fix"]


def test_a_segfaulting_nvml_gives_an_info_report(fake_nvml: dict[str, Path]) -> None:
    ran = envcheck("info", "--json", environ=with_library(fake_nvml["segfault"]))
    assert ran.returncode == 0, ran.stderr
    snapshot = json.loads(ran.stdout)
    assert "NVML library crashed (SIGSEGV)" in snapshot["gpu"]["unavailable"] and snapshot["gpu"]["fix"]
    (run,) = [run for run in snapshot["probes"] if run["name"] == "gpu"]
    assert run["status"] == "failed"


def test_a_hanging_nvml_is_killed_at_its_deadline_and_fails_gpu_present(fake_nvml: dict[str, Path]) -> None:
    context = ProbeContext(environ=with_library(fake_nvml["hang"]))
    before = started_pids()

    def probe(context: ProbeContext) -> GpuFacts:
        return facts_from_answer(context, ask_nvml(context, timeout_s=1.0).result)

    started = time.monotonic()
    snapshot = collect(context, [Probe("gpu", probe, lambda _context: 15.0)]).snapshot
    assert time.monotonic() - started < 8.0
    assert isinstance(snapshot.gpu, Unavailable) and "NVML hung in nvmlInit" in snapshot.gpu.reason
    (finding,) = check_gpu_present(CheckInput(snapshot))
    assert finding.severity is Severity.FAIL and "Xid" in (finding.fix or "")
    for pid in started_pids() - before:  # the child's whole group was killed and reaped
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_an_nvml_error_from_the_library_is_explained_not_a_crash(fake_nvml: dict[str, Path]) -> None:
    facts = probe_gpu(ProbeContext(environ=with_library(fake_nvml["mismatch"])))
    assert facts.gpus == () and "different versions" in (facts.no_gpu_reason or "")


def test_recording_a_segfaulting_nvml_raises_and_writes_nothing(fake_nvml: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "nvml.json"
    with pytest.raises(ProbeError, match=r"crashed \(SIGSEGV\) in nvmlInit"):
        record_nvml(path, ProbeContext(environ=with_library(fake_nvml["segfault"])))
    assert not path.exists()


# --- the parent's reading of each way the child can end, with real tiny executables ---


def answer_of(script: str, timeout_s: float = 30.0) -> object:
    finished = run_bounded(["/bin/sh", "-c", script], timeout_s, {"PATH": os.defpath})
    return read_answer(finished, ProbeContext(environ={}), timeout_s).result


@pytest.mark.parametrize(
    ("script", "error", "reason"),
    [
        ("echo 'envcheck-nvml-call: init'; kill -ABRT $$", ProbeError, "crashed (SIGABRT) in nvmlInit"),
        (
            "echo 'envcheck-nvml-call: init'; echo 'envcheck-nvml-call: device[0].memory_info'; kill -SEGV $$",
            ProbeError,
            "crashed (SIGSEGV) in the NVML call for device[0].memory_info",
        ),
        ("echo 'no module named envcheck' >&2; exit 3", ProbeError, "exited with status 3 before its first NVML call"),
        ("echo garbage", ProbeError, "printed no result"),
        ("echo 'envcheck-nvml-result: {not json'", ProbeError, "cannot read"),
        ("echo 'envcheck-nvml-result: [1]'", ProbeError, "cannot read"),
        ("""echo 'envcheck-nvml-result: {"facts": {"source": 1}}'""", ProbeError, "$.facts.source"),
        ("""echo 'envcheck-nvml-result: {"nvml_error": {"code": "x"}}'""", ProbeError, "$.nvml_error"),
        ("echo 'envcheck-nvml-call: init'; sleep 30", ProbeTimeout, "NVML hung in nvmlInit: no answer within 0.5 s"),
    ],
)
def test_each_way_the_child_fails_is_one_reason(script: str, error: type[ProbeError], reason: str) -> None:
    with pytest.raises(error) as raised:
        answer_of(script, timeout_s=0.5 if "sleep" in script else 30.0)
    assert type(raised.value) is error and reason in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_crash_after_init_suggests_updating_the_binding() -> None:
    with pytest.raises(ProbeError) as raised:
        answer_of("echo 'envcheck-nvml-call: device[0].name'; kill -SEGV $$")
    assert "pip install -U nvidia-ml-py" in (raised.value.fix or "")


def test_an_init_error_the_child_reports_is_the_nvml_error() -> None:
    result = answer_of("""echo 'envcheck-nvml-result: {"nvml_error": {"code": 12, "detail": "no library"}}'""")
    assert isinstance(result, NvmlError) and result.name == "LIBRARY_NOT_FOUND"


def test_bench_telemetry_with_a_segfaulting_nvml_is_unavailable_not_a_crash(fake_nvml: dict[str, Path]) -> None:
    from envcheck.bench.telemetry import open_nvml_for

    reason = open_nvml_for("GPU-00000000-0000-0000-0000-000000000000", environ=with_library(fake_nvml["segfault"]))
    assert isinstance(reason, str) and "NVML is not usable: the NVML library crashed (SIGSEGV)" in reason


def test_cluster_telemetry_after_the_gemm_is_bounded_and_a_failing_nvml_is_its_reason(
    fake_nvml: dict[str, Path],
) -> None:
    """`envcheck cluster` samples each GPU through the same NVML child right after its GEMM: a segfault, a hang (cut
    at TELEMETRY_TIMEOUT_S) and no NVML at all each become the sample's reason, and the rank goes on."""
    from envcheck.cluster.probe import TELEMETRY_TIMEOUT_S, sample_gpu_telemetry

    uuid = "GPU-00000000-0000-0000-0000-000000000000"
    crashed = sample_gpu_telemetry(uuid, with_library(fake_nvml["segfault"]))
    assert (
        isinstance(crashed, Unavailable) and "NVML after the GEMM: the NVML library crashed (SIGSEGV)" in crashed.reason
    )
    started = time.monotonic()
    hung = sample_gpu_telemetry(uuid, with_library(fake_nvml["hang"]))
    assert isinstance(hung, Unavailable) and f"no answer within {TELEMETRY_TIMEOUT_S:g} s" in hung.reason
    assert time.monotonic() - started < TELEMETRY_TIMEOUT_S + 5
    mismatch = sample_gpu_telemetry(uuid, with_library(fake_nvml["mismatch"]))
    assert isinstance(mismatch, Unavailable) and mismatch.reason.startswith("NVML after the GEMM: NVML error")
