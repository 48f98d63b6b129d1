"""Every assumption of the memory model is in `recommend --json`, settable, and moves the figures by exactly what
it changes; docs/recommend.md's table and assumptions[] stay in step; attention follows the GPU's capability."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from envcheck.advise.assumptions import assumptions_of
from envcheck.advise.fit import Seat, judge_fit
from envcheck.advise.memory_model import estimate
from envcheck.advise.workload_spec import (
    DEFAULT_CUDA_CONTEXT_BYTES,
    DEFAULT_MEMORY_OVERHEAD,
    WorkloadSpec,
    on_gpu,
    resolve_spec,
    spec_from_profile,
    with_options,
)
from envcheck.knowledge import load_workload
from tests.test_recommend_cli import recommend_json
from tests.test_validation import one_line_error

DOCS = Path(__file__).parents[1] / "docs" / "recommend.md"
GB = 10**9
A100 = (8, 0)
V100 = (7, 0)


def _seven_b() -> WorkloadSpec:
    return resolve_spec(None, "7B", None, None)


def _subtotal(spec: WorkloadSpec, strategy: str = "single", count: int = 1) -> int:
    result = estimate(spec, strategy, count)
    return result.total_bytes - result.overhead_bytes


@pytest.mark.parametrize(("strategy", "count"), [("single", 1), ("zero3", 8)])
def test_the_cuda_context_moves_the_need_by_exactly_its_change(strategy: str, count: int) -> None:
    spec = _seven_b()
    assert spec.cuda_context_bytes == DEFAULT_CUDA_CONTEXT_BYTES == 500_000_000
    bigger = with_options(spec, cuda_context_gb=1.5)
    none = with_options(spec, cuda_context_gb=0)
    base = estimate(spec, strategy, count).total_bytes
    assert estimate(bigger, strategy, count).total_bytes - base == 1 * GB
    assert base - estimate(none, strategy, count).total_bytes == 500_000_000


def test_the_allocator_overhead_moves_the_need_by_its_share_of_the_rest() -> None:
    spec = _seven_b()
    assert spec.memory_overhead == DEFAULT_MEMORY_OVERHEAD == 0.05
    doubled = with_options(spec, memory_overhead=0.10)
    rest = _subtotal(spec)
    assert _subtotal(doubled) == rest  # the terms themselves do not move
    moved = estimate(doubled).total_bytes - estimate(spec).total_bytes
    assert moved == pytest.approx(0.05 * rest, abs=3)  # five more percent of everything else (terms rounded)
    bare = with_options(spec, memory_overhead=0, cuda_context_gb=0)
    assert estimate(bare).overhead_bytes == 0  # nothing but the terms: one GPU, no gathered layers


def test_the_one_fit_judgement_uses_the_options() -> None:
    """`recommend --here` and `doctor --profile` share judge_fit: the need it reports moves the same way."""
    spec = spec_from_profile(load_workload("llama-7b-lora"))
    seats = (Seat(0, "NVIDIA A100-SXM4-80GB", 80 * GB, 0, A100),)
    base = judge_fit(spec, seats)
    assert base.fits and base.memory is not None
    wider = judge_fit(with_options(spec, cuda_context_gb=2.5), seats)
    assert wider.memory is not None and wider.memory.total_bytes - base.memory.total_bytes == 2 * GB
    assert wider.smallest_need_bytes - base.smallest_need_bytes == 2 * GB


def test_the_options_reach_the_json_and_its_memory() -> None:
    args = ("--params", "7B", "--top", "1")
    base = recommend_json(*args)
    changed = recommend_json(*args, "--cuda-context-gb", "1", "--memory-overhead", "0.1")
    listed = {a["name"]: a for a in changed["assumptions"]}
    assert listed["cuda_context_gb"] == {"name": "cuda_context_gb", "value": 1.0, "option": "--cuda-context-gb"}
    assert listed["memory_overhead"] == {"name": "memory_overhead", "value": 0.1, "option": "--memory-overhead"}
    defaults = {a["name"]: a["value"] for a in base["assumptions"]}
    assert defaults["cuda_context_gb"] == 0.5 and defaults["memory_overhead"] == 0.05
    rest = base["memory"]["total_bytes"] - base["memory"]["overhead_bytes"]
    moved = changed["memory"]["total_bytes"] - base["memory"]["total_bytes"]
    assert moved == pytest.approx(0.5 * GB + 0.05 * rest, abs=3)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--cuda-context-gb", "-1"], "--cuda-context-gb: must not be negative"),
        (["--cuda-context-gb", "nan"], "--cuda-context-gb: expected a finite number"),
        (["--cuda-context-gb", "17"], "--cuda-context-gb: 17.0 is too large (at most 16)"),
        (["--memory-overhead", "-0.01"], "--memory-overhead: must not be negative"),
        (["--memory-overhead", "1.5"], "--memory-overhead: 1.5 is too large (at most 1)"),
        (["--memory-overhead", "inf"], "--memory-overhead: expected a finite number"),
    ],
)
def test_impossible_memory_assumptions_are_one_line_errors(args: list[str], fragment: str) -> None:
    one_line_error(["recommend", "--params", "7B", *args], fragment)


# --- docs/recommend.md's table and assumptions[] in step ---------------------------------------------------------


def _docs_rows() -> dict[str, str]:
    """name -> option cell, from the table under "What envcheck assumes"."""
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## What envcheck assumes", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in ("assumption", "---"):
            continue
        name = re.match(r"`([a-z_]+)`", cells[0])
        assert name is not None, f"docs/recommend.md: assumption row without a `name`: {line}"
        rows[name.group(1)] = cells[2]
    return rows


def _every_kind_of_spec() -> tuple[WorkloadSpec, ...]:
    seven = _seven_b()
    return (
        seven,
        with_options(seven, task="lora"),
        with_options(seven, task="qlora"),
        with_options(resolve_spec(None, "70B", None, None), task="infer", precision="int4"),
        spec_from_profile(load_workload("resnet50-imagenet")),
    )


def test_the_docs_table_and_the_json_list_the_same_assumptions_with_the_same_options() -> None:
    rows = _docs_rows()
    listed = {a.name: a for spec in _every_kind_of_spec() for a in assumptions_of(spec)}
    assert set(rows) == set(listed), "docs/recommend.md#assumptions and envcheck/advise/assumptions.py differ"
    for name, assumption in listed.items():
        assert assumption.option, f"{name}: no option sets it"
        for option in re.findall(r"--[a-z-]+", assumption.option):
            assert f"`{option}" in rows[name] or f"/{option}`" in rows[name], (name, option, rows[name])


# --- attention follows the GPU's compute capability ---------------------------------------------------------------


def _fp16_lora() -> WorkloadSpec:
    """A 1.2 B-parameter model in fp16 LoRA, no recomputation: the attention term is every layer's."""
    spec = resolve_spec(None, "1B", None, None)
    return with_options(spec, task="lora", precision="fp16", is_checkpointing=False, seq_len=1024)


def _scores_bytes(spec: WorkloadSpec) -> int:
    """Korthikanti et al. 2022, eq. 1: 5*a*s^2*b bytes per layer for the scores, softmax and dropout mask."""
    assert spec.shape is not None
    return spec.shape.layers * 5 * spec.shape.heads * spec.seq_len**2 * spec.batch


def test_a_v100_stores_the_attention_scores_and_an_a100_does_not() -> None:
    spec = _fp16_lora()
    assert spec.is_flash_attention  # described ad hoc: flash attention, where the GPU runs it
    on_a100, on_v100 = on_gpu(spec, A100), on_gpu(spec, V100)
    assert on_a100 is spec and not on_v100.is_flash_attention
    assert on_gpu(spec, None) is spec  # a GPU of unknown capability keeps the spec's
    moved = estimate(on_v100).activations_bytes - estimate(on_a100).activations_bytes
    assert moved == _scores_bytes(spec)
    assert not on_gpu(with_options(spec, is_flash_attention=False), A100).is_flash_attention  # --no-flash-attention


def test_the_fit_judgement_sizes_each_gpu_with_its_own_attention() -> None:
    spec = _fp16_lora()
    v100 = judge_fit(spec, (Seat(0, "Tesla V100-SXM2-32GB", 32 * GB, 0, V100),))
    a100 = judge_fit(spec, (Seat(0, "NVIDIA A100-SXM4-40GB", 40 * GB, 0, A100),))
    assert v100.memory is not None and a100.memory is not None
    extra = v100.memory.activations_bytes - a100.memory.activations_bytes
    assert extra == _scores_bytes(spec)
    mixed = judge_fit(spec, (*a100.seats, replace(v100.seats[0], index=1)))  # one V100 rank: no rank has flash
    assert mixed.smallest_need_bytes > a100.smallest_need_bytes


def test_recommend_prices_a_v100_with_the_scores_and_an_a100_without() -> None:
    spec = _fp16_lora()
    assert spec.shape is not None
    args = ("--params", "1B", "--task", "lora", "--precision", "fp16", "--no-checkpointing", "--seq-len", "1024")
    data = recommend_json(*args, "--top", "500")
    single = {o["gpu"]: o["memory_per_gpu_bytes"] for o in data["options"] if o["gpu_count"] == 1}
    v100 = next(need for gpu, need in single.items() if "V100" in gpu)
    a100 = next(need for gpu, need in single.items() if "A100" in gpu)
    # the scores, and the allocator's 5% of them
    assert v100 - a100 == pytest.approx(_scores_bytes(spec) * (1 + DEFAULT_MEMORY_OVERHEAD), abs=3)
    attention = next(a for a in data["assumptions"] if a["name"] == "attention")
    assert attention == {"name": "attention", "value": "flash", "option": "--flash-attention / --no-flash-attention"}
