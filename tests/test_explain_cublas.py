"""CUBLAS_STATUS_NOT_INITIALIZED has a code cause (an out-of-range index, reported late because CUDA errors are
asynchronous) and a resource cause (no memory left for cuBLAS's workspace): the evidence in the same log, or the
GPU's memory in the Snapshot, picks one; with neither, both are listed and the environment is not cleared."""

from __future__ import annotations

from dataclasses import replace

from envcheck.explain import ExplainReport, explain_text
from envcheck.explain.engine import no_snapshot
from envcheck.knowledge import load_knowledge
from envcheck.knowledge.signatures import load_signatures
from envcheck.snapshot import Snapshot
from tests import factories

GIB = 1024**3
CUBLAS_LINE = "RuntimeError: CUDA error: CUBLAS_STATUS_NOT_INITIALIZED when calling `cublasCreate(handle)`"
TRACEBACK = f"""\
Traceback (most recent call last):
  File "train.py", line 88, in <module>
    outputs = model(input_ids=batch["input_ids"], labels=batch["labels"])
  File "/opt/conda/lib/python3.10/site-packages/transformers/models/bert/modeling_bert.py", line 1012, in forward
    encoder_outputs = self.encoder(
  File "/opt/conda/lib/python3.10/site-packages/torch/nn/modules/linear.py", line 114, in forward
    return F.linear(input, self.weight, self.bias)
{CUBLAS_LINE}
"""
INDEX_ASSERT = """\
../aten/src/ATen/native/cuda/Indexing.cu:1146: indexSelectLargeIndex: block: [18,0,0], thread: [5,0,0] \
Assertion `srcIndex < srcSelectDimSize` failed.
../aten/src/ATen/native/cuda/Indexing.cu:1146: indexSelectLargeIndex: block: [18,0,0], thread: [6,0,0] \
Assertion `srcIndex < srcSelectDimSize` failed.
"""
LABEL_ASSERT = """\
../aten/src/ATen/native/cuda/Loss.cu:250: nll_loss_forward_reduce_cuda_kernel_2d: block: [0,0,0], thread: [3,0,0] \
Assertion `t >= 0 && t < n_classes` failed.
"""
CPU_INDEX_ERROR = """\
  File "/opt/conda/lib/python3.10/site-packages/torch/nn/functional.py", line 2264, in embedding
    return torch.embedding(weight, input, padding_idx, scale_grad_by_freq, sparse)
IndexError: index out of range in self
"""
BOUNDS_ERROR = "IndexError: index 30522 is out of bounds for dimension 0 with size 30522\n"
OOM = """\
torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 14.75 GiB total capacity; \
14.52 GiB already allocated; 3.06 MiB free; 14.60 GiB reserved in total by PyTorch)
"""


def explain(text: str, snapshot: Snapshot | None = None) -> ExplainReport:
    return explain_text(text, snapshot or no_snapshot("not collected"), load_knowledge(), load_signatures())


def cublas(report: ExplainReport):  # type: ignore[no-untyped-def]
    return next(e for e in report.explanations if e.signature == "cuda.cublas_not_initialized")


def test_an_index_assertion_in_the_log_decides_the_code_cause_and_is_quoted() -> None:
    report = explain(INDEX_ASSERT + TRACEBACK)
    explanation = cublas(report)
    assert explanation.cause is not None and explanation.cause.id == "index_out_of_range"
    assert any("line 1" in line and "srcIndex < srcSelectDimSize" in line for line in explanation.because)
    assert report.exit_code == 0


def test_each_index_message_decides_the_code_cause() -> None:
    for evidence, words in (
        (LABEL_ASSERT, "t < n_classes"),
        (CPU_INDEX_ERROR, "IndexError: index out of range in self"),
        (BOUNDS_ERROR, "index 30522 is out of bounds"),
    ):
        report = explain(TRACEBACK + evidence)
        explanation = cublas(report)
        assert explanation.cause is not None and explanation.cause.id == "index_out_of_range", evidence
        line = f"line {TRACEBACK.count(chr(10)) + evidence.count(chr(10))}"
        assert any(line in b and words in b for b in explanation.because), (line, explanation.because)
        assert report.exit_code == 0


def test_a_device_side_assert_decides_the_code_cause() -> None:
    text = TRACEBACK + "RuntimeError: CUDA error: device-side assert triggered\n"
    report = explain(text)
    assert cublas(report).cause.id == "index_out_of_range"  # type: ignore[union-attr]
    assert report.exit_code == 0


def test_an_out_of_memory_message_decides_the_resource_cause() -> None:
    report = explain(OOM + TRACEBACK)
    explanation = cublas(report)
    assert explanation.cause is not None and explanation.cause.id == "near_oom"
    assert any("line 1" in line and "CUDA out of memory" in line for line in explanation.because)
    assert report.exit_code == 1


def test_a_nearly_full_gpu_decides_the_resource_cause() -> None:
    machine = factories.gpu_machine(factories.nvml_gpu("t4-driver515.105.01"))
    gpus = tuple(
        replace(g, memory_used_bytes=int(g.memory_total_bytes * 0.97), processes=())  # type: ignore[operator]
        for g in machine.gpu.gpus  # type: ignore[union-attr]
    )
    full = replace(machine, gpu=replace(machine.gpu, gpus=gpus))  # type: ignore[type-var]
    explanation = cublas(explain(TRACEBACK, full))
    assert explanation.cause is not None and explanation.cause.id == "near_oom"
    assert any("in use" in line for line in explanation.because)
    # the same GPU with room to spare decides nothing
    idle = tuple(replace(g, memory_used_bytes=0, processes=()) for g in machine.gpu.gpus)  # type: ignore[union-attr]
    roomy = replace(machine, gpu=replace(machine.gpu, gpus=idle))  # type: ignore[type-var]
    assert cublas(explain(TRACEBACK, roomy)).cause is None


def test_the_index_evidence_wins_over_a_full_gpu() -> None:
    report = explain(OOM + INDEX_ASSERT + TRACEBACK)
    assert cublas(report).cause.id == "index_out_of_range"  # type: ignore[union-attr]


def test_nothing_decides_both_causes_listed_and_the_environment_stays_suspect() -> None:
    report = explain(TRACEBACK)
    explanation = cublas(report)
    assert explanation.cause is None
    assert [c.id for c in explanation.candidates] == ["near_oom", "index_out_of_range"]
    assert "(1)" in explanation.fix and "(2)" in explanation.fix
    assert report.exit_code == 1
