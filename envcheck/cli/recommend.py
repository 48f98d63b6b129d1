"""`envcheck recommend`: what to rent (or buy) for a workload: memory, time and cost of the whole job."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from envcheck.cli.app import app
from envcheck.cli.options import DebugOption, FromOption, JsonOption, MarkdownOption, OutputOption, VerboseOption
from envcheck.cli.output import emit, input_errors
from envcheck.outfile import write_output_file

if TYPE_CHECKING:  # the command imports its layers when it runs, so that `envcheck --help` stays fast
    from envcheck.advise.time_model import BenchMeasurement
    from envcheck.advise.workload_spec import WorkloadSpec


@app.command()
def recommend(
    workload: Annotated[str | None, typer.Option("--workload", help="A profile name or TOML file.")] = None,
    params: Annotated[str | None, typer.Option("--params", help="Parameter count: 7B, 350M, ...")] = None,
    layers: Annotated[int | None, typer.Option("--layers", min=1, help="Transformer layers.")] = None,
    hidden: Annotated[int | None, typer.Option("--hidden", min=1, help="Hidden size.")] = None,
    heads: Annotated[int | None, typer.Option("--heads", min=1, help="Attention heads.")] = None,
    kv_heads: Annotated[int | None, typer.Option("--kv-heads", min=1, help="KV heads (GQA); default --heads.")] = None,
    vocab: Annotated[int | None, typer.Option("--vocab", min=1, help="Vocabulary size.")] = None,
    intermediate: Annotated[
        int | None, typer.Option("--intermediate", min=1, help="MLP width; default 4 x hidden.")
    ] = None,
    hf_config: Annotated[
        Path | None, typer.Option("--hf-config", help="A Hugging Face config.json (read offline).")
    ] = None,
    task: Annotated[str | None, typer.Option("--task", help="train, finetune, lora, qlora or infer.")] = None,
    precision: Annotated[str | None, typer.Option("--precision", help="fp32, bf16, fp16, int8 or int4.")] = None,
    seq_len: Annotated[int | None, typer.Option("--seq-len", min=1, help="Training sequence length.")] = None,
    batch: Annotated[int | None, typer.Option("--batch", min=1, help="Micro-batch per GPU.")] = None,
    optimizer: Annotated[str | None, typer.Option("--optimizer", help="adamw, adam8bit or sgd.")] = None,
    checkpointing: Annotated[
        bool | None, typer.Option("--checkpointing/--no-checkpointing", help="Recompute activations.")
    ] = None,
    tokens: Annotated[str | None, typer.Option("--tokens", help="Tokens (or CNN samples) of the job: 2B, ...")] = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", min=1, help="Serving: sequences in flight.")
    ] = None,
    context: Annotated[int | None, typer.Option("--context", min=1, help="Serving: tokens per sequence.")] = None,
    lora_rank: Annotated[int | None, typer.Option("--lora-rank", min=1, help="LoRA rank (16; QLoRA 64).")] = None,
    mfu: Annotated[
        float | None, typer.Option("--mfu", help="Model FLOPs utilisation, 0.01-1 (default by GPU segment: 0.4/0.3).")
    ] = None,
    overlap: Annotated[
        float | None, typer.Option("--overlap", help="Share of data-parallel comms hidden by compute, 0-1 (0.5).")
    ] = None,
    decode_efficiency: Annotated[
        float | None,
        typer.Option("--decode-efficiency", help="Serving: share of memory bandwidth decode reaches, 0.05-1 (0.7)."),
    ] = None,
    flash_attention: Annotated[
        bool | None,
        typer.Option(
            "--flash-attention/--no-flash-attention",
            help="Attention without stored scores on compute capability 8.0+ (default for transformers).",
        ),
    ] = None,
    cuda_context_gb: Annotated[
        float | None,
        typer.Option("--cuda-context-gb", help="GB each GPU loses to the CUDA context, 0-16 (0.5)."),
    ] = None,
    memory_overhead: Annotated[
        float | None,
        typer.Option("--memory-overhead", help="Allocator overhead, a share of the rest of the memory, 0-1 (0.05)."),
    ] = None,
    skip_modules: Annotated[
        str | None,
        typer.Option(
            "--skip-modules",
            help="4-/8-bit base: parts kept bf16, as bitsandbytes' llm_int8_skip_modules: "
            "embeddings,lm_head (default), lm_head, embeddings or none.",
        ),
    ] = None,
    catalog: Annotated[Path | None, typer.Option("--catalog", help="A TOML catalog or a SkyPilot vms.csv.")] = None,
    cloud: Annotated[str | None, typer.Option("--cloud", help="Only this cloud (aws, gcp, azure, ...).")] = None,
    region: Annotated[str | None, typer.Option("--region", help="Only regions starting with this.")] = None,
    spot: Annotated[bool, typer.Option("--spot", help="Price spot instances.")] = False,
    max_price: Annotated[float | None, typer.Option("--max-price", min=0.0, help="Max $/h per instance.")] = None,
    min_gpus: Annotated[int | None, typer.Option("--min-gpus", min=1, help="At least this many GPUs.")] = None,
    sort: Annotated[str, typer.Option("--sort", help="cost (whole job), hourly or time.")] = "cost",
    top: Annotated[int, typer.Option("--top", min=1, help="Show this many options.")] = 10,
    buy: Annotated[bool, typer.Option("--buy", help="Also: GPUs to buy and their break-even.")] = False,
    power_price: Annotated[
        float | None, typer.Option("--power-price", help="Electricity $/kWh (default 0.15).")
    ] = None,
    here: Annotated[bool, typer.Option("--here", help="Also: does it fit on this machine (or --from)?")] = False,
    source: FromOption = None,
    bench_results: Annotated[
        Path | None, typer.Option("--bench-results", help="An `envcheck bench --json` result to scale from.")
    ] = None,
    no_bench_results: Annotated[
        bool, typer.Option("--no-bench-results", help="Ignore the bench results saved in the user's data directory.")
    ] = False,
    emit_format: Annotated[
        str | None, typer.Option("--emit", help="skypilot: write a task YAML for the top option.")
    ] = None,
    emit_file: Annotated[Path, typer.Option("--emit-file", help="Where --emit writes.")] = Path("envcheck-sky.yaml"),
    as_json: JsonOption = False,
    as_markdown: MarkdownOption = False,
    output: OutputOption = None,
    verbose: VerboseOption = False,
    debug: DebugOption = False,
) -> None:
    """Size a workload (memory, time) and rank cloud instances by the cost of the whole job."""
    from envcheck.advise.architecture import TransformerShape
    from envcheck.advise.buy import DEFAULT_POWER_PRICE_USD_KWH, load_gpu_prices, recommend_purchases
    from envcheck.advise.catalog import load_catalog
    from envcheck.advise.recommend import Filters, recommend_instances
    from envcheck.advise.workload_spec import parse_count, parse_parts, resolve_spec, with_options
    from envcheck.knowledge import KnowledgeError, load_knowledge
    from envcheck.render.recommend import (
        RecommendReport,
        render_recommend,
        render_recommend_json,
        render_recommend_markdown,
    )
    from envcheck.validation import quoted

    with input_errors():
        shape = None
        if any(v is not None for v in (layers, hidden, heads, kv_heads, vocab, intermediate)):
            if layers is None or hidden is None or heads is None or vocab is None:
                raise KnowledgeError("a transformer shape needs --layers, --hidden, --heads and --vocab")
            if hidden % heads:
                raise KnowledgeError(f"--hidden {hidden} is not a multiple of --heads {heads}")
            shape = TransformerShape(layers, hidden, heads, kv_heads or heads, vocab, intermediate or 4 * hidden)
        spec = with_options(
            resolve_spec(workload, params, shape, hf_config),
            task=task,
            precision=precision,
            seq_len=seq_len,
            batch=batch,
            optimizer=optimizer,
            is_checkpointing=checkpointing,
            tokens=None if tokens is None else parse_count(tokens, "--tokens"),
            concurrency=concurrency,
            context=context,
            lora_rank=lora_rank,
            mfu=mfu,
            overlap=overlap,
            decode_efficiency=decode_efficiency,
            is_flash_attention=flash_attention,
            cuda_context_gb=cuda_context_gb,
            memory_overhead=memory_overhead,
            unquantised_parts=None if skip_modules is None else parse_parts(skip_modules),
        )
        if hf_config is not None:
            spec = _crosschecked(spec, hf_config)
        if emit_format not in (None, "skypilot"):
            raise KnowledgeError(f"--emit: {quoted(emit_format)} is not a known format (known: skypilot)")
        knowledge = load_knowledge()
        measured = _measurements(bench_results, no_bench_results)
        filters = Filters(cloud, region, spot, max_price, min_gpus, sort, top)
        recommendation = recommend_instances(spec, load_catalog(catalog, knowledge), filters, measured)
        power = DEFAULT_POWER_PRICE_USD_KWH if power_price is None else power_price
        purchases = None
        if buy:
            prices = load_gpu_prices(knowledge)
            purchases = recommend_purchases(spec, prices, recommendation.best_value, power, measured)
        here_result = None
        if here or source is not None:
            from envcheck.advise.here import recommend_here
            from envcheck.cli.snapshots import load_or_collect

            snapshot = load_or_collect(source, None, None, False, 60.0, debug, skip=("framework",))
            here_result = recommend_here(spec, snapshot, knowledge, measured)
        emitted = None
        if emit_format == "skypilot":
            from envcheck.advise.skypilot import render_skypilot_task

            chosen = recommendation.best_value or (recommendation.options[0] if recommendation.options else None)
            if chosen is None:
                raise KnowledgeError("--emit skypilot: no instance fits, so there is nothing to launch")
            write_output_file(emit_file, render_skypilot_task(spec, chosen))
            emitted = str(emit_file)
        report = RecommendReport(recommendation, purchases, power, here_result, emitted)
        emit(
            as_json,
            as_markdown,
            output,
            lambda: render_recommend_json(report),
            lambda: render_recommend_markdown(report),
            lambda console: render_recommend(report, console, verbose),
        )


def _crosschecked(spec: WorkloadSpec, hf_config: Path) -> WorkloadSpec:
    """Where transformers is installed, its count of the model built on the meta device; else the formula's."""
    from envcheck.advise.workload_spec import with_transformers_count
    from envcheck.facts.common import Unavailable
    from envcheck.probes.meta_count import is_transformers_installed, probe_meta_count

    if not is_transformers_installed():
        return spec
    counted = probe_meta_count(hf_config)
    if isinstance(counted, Unavailable):
        typer.echo(f"envcheck: warning: no transformers cross-check of {hf_config}: {counted.reason}", err=True)
        return spec
    return with_transformers_count(spec, counted.parameters)


def _measurements(path: Path | None, is_ignoring_saved: bool) -> tuple[BenchMeasurement, ...]:
    """--bench-results FILE; else the newest saved result per GPU model (a broken file is a warning, not an error)."""
    from envcheck.advise.time_model import load_bench_results

    if path is not None:
        return (load_bench_results(path),)
    if is_ignoring_saved:
        return ()
    from envcheck.advise.saved_benches import newest_saved_measurements
    from envcheck.bench.store import bench_results_dir

    try:
        directory = bench_results_dir()
    except RuntimeError:  # no home directory: nothing can have been saved
        return ()
    measurements, warnings = newest_saved_measurements(directory)
    for warning in warnings:
        typer.echo(f"envcheck: warning: {warning}", err=True)
    return measurements
