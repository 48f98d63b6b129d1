"""`envcheck bench`: train a CIFAR-10 network on each chosen device, check its numbers, time it, judge the speed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from envcheck.cli.app import app
from envcheck.cli.options import JsonOption, MarkdownOption, OutputOption
from envcheck.cli.output import EXIT_USAGE, console, emit, input_errors
from envcheck.outfile import write_output_file

QUICK_SYNTHETIC_TRAIN_IMAGES = 10240  # --quick cycles through these (~3 epochs of tutorial-cnn's 525 steps)
QUICK_SYNTHETIC_TEST_IMAGES = 256  # --quick never evaluates; a small test split keeps generation cheap


@app.command()
def bench(
    preset: Annotated[
        str, typer.Option("--preset", help="tutorial-cnn (the PyTorch tutorial) or resnet18.")
    ] = "tutorial-cnn",
    device: Annotated[
        str | None,
        typer.Option("--device", help="cpu, cuda, cuda:N, mps or all. Default: the first GPU, else the CPU."),
    ] = None,
    full: Annotated[
        bool, typer.Option("--full/--quick", help="--full: the whole recipe with test accuracy per epoch.")
    ] = False,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Folder holding cifar-10-batches-py (torchvision's format).")
    ] = None,
    download: Annotated[
        bool, typer.Option("--download", help="Fetch CIFAR-10 with torchvision if none is found.")
    ] = False,
    synthetic: Annotated[
        bool, typer.Option("--synthetic", help="Use the synthetic dataset even if CIFAR-10 is found.")
    ] = False,
    loader: Annotated[
        str, typer.Option("--loader", help="device (uint8 data on the device) or dataloader (classic DataLoader).")
    ] = "device",
    workers: Annotated[
        int, typer.Option("--workers", help="DataLoader worker processes (--loader dataloader).", min=0)
    ] = 2,
    steps: Annotated[int | None, typer.Option("--steps", help="Timed steps (default: the preset's).", min=1)] = None,
    warmup: Annotated[
        int | None, typer.Option("--warmup", help="Untimed warm-up steps (default: the preset's).", min=0)
    ] = None,
    windows: Annotated[
        int | None, typer.Option("--windows", help="Timed windows (default: the preset's).", min=1)
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of weights, data order and augmentation.")] = 0,
    calibration: Annotated[
        Path | None,
        typer.Option("--calibration", help="Reference results to compare with (default: the shipped ones)."),
    ] = None,
    save_reference: Annotated[
        Path | None, typer.Option("--save-reference", help="Append this run as a reference to FILE (calibration TOML).")
    ] = None,
    ceiling: Annotated[
        bool,
        typer.Option(
            "--ceiling/--no-ceiling", help="Also measure matmul TFLOP/s and copy GB/s against the spec sheet."
        ),
    ] = True,
    no_save: Annotated[
        bool, typer.Option("--no-save", help="Do not keep the results in the user's data directory for recommend.")
    ] = False,
    as_json: JsonOption = False,
    as_markdown: MarkdownOption = False,
    output: OutputOption = None,
) -> None:
    """Prove this machine trains correctly and say how fast, against what it should do. Exit 1 on wrong numbers."""
    from envcheck.bench.calibration import load_references
    from envcheck.bench.presets import PRESETS
    from envcheck.loaders import InputError
    from envcheck.validation import quoted

    with input_errors():
        chosen = PRESETS.get(preset)
        if chosen is None:
            raise InputError(f"--preset {quoted(preset)}: unknown (known: {', '.join(PRESETS)})")
        if loader not in {"device", "dataloader"}:
            raise InputError(f"--loader {quoted(loader)}: expected device or dataloader")
        if as_json and as_markdown:
            raise InputError("--json and --markdown cannot be used together")
        if calibration is not None:
            load_references(calibration)  # a missing, special or broken file is refused before the run
        if save_reference is not None:
            _existing_references(save_reference)  # a file that is not TOML is refused before the run
        results, flags = _run(
            chosen,
            device,
            full,
            data_dir,
            download,
            synthetic,
            loader,
            workers,
            steps,
            warmup,
            windows,
            seed,
            calibration,
            ceiling,
            show_progress=not (as_json or as_markdown) and sys.stderr.isatty(),
        )
        failures = []
        if save_reference is not None:
            failures.append(_saving_failure(lambda: _save_references(save_reference, results)))
        if not no_save:
            _keep_results(results)
        if output is not None:
            text = _render("markdown", results, flags) if as_markdown else _render("json", results, flags)
            failures.append(_saving_failure(lambda: write_output_file(output, text)))
        # the measured result is printed even when a file could not be written: the run is not lost
        emit(
            as_json,
            as_markdown,
            None,
            lambda: _render("json", results, flags),
            lambda: _render("markdown", results, flags),
            lambda terminal: _render("terminal", results, flags, terminal),
        )
        for failure in failures:
            if failure is not None:
                typer.echo(f"envcheck: error: not saved: {failure}", err=True)
        if any(failures):
            raise typer.Exit(EXIT_USAGE)
    # wrong numbers, or a --full run that ended below its target accuracy: a failure (docs/bench.md)
    raise typer.Exit(0 if all(result.is_passed for result in results) else 1)


def _saving_failure(write: Any) -> str | None:
    from envcheck.loaders import InputError

    try:
        write()
    except InputError as error:
        return str(error)
    return None


def _existing_references(path: Path) -> str:
    """The text --save-reference appends to: the file's, checked to hold references, or a header for a new file."""
    from envcheck.bench.calibration import load_references
    from envcheck.input_files import CONFIG_LIMIT, read_text_file

    if not path.exists():
        return "# envcheck bench reference results\n"
    load_references(path)  # a file that is not TOML, or holds something else, is refused before the run
    return read_text_file(path, CONFIG_LIMIT)


def _run(preset: Any, device: str | None, full: bool, data_dir: Path | None, download: bool, synthetic: bool,
         loader: str, workers: int, steps: int | None, warmup: int | None, windows: int | None, seed: int,
         calibration: Path | None, ceiling: bool,
         show_progress: bool) -> tuple[tuple[Any, ...], tuple[Any, ...]]:  # fmt: skip
    from envcheck.bench.calibration import slow_siblings
    from envcheck.bench.data import resolve_dataset
    from envcheck.bench.runner import RunOptions, resolve_devices, run_bench
    from envcheck.knowledge import load_knowledge
    from envcheck.loaders import InputError
    from envcheck.render.bench import progress_bars

    try:
        devices = resolve_devices(device)
    except ImportError as error:  # envcheck installed without its bench extra: torch is optional elsewhere
        raise InputError(
            f"envcheck bench needs torch and torchvision, which this interpreter cannot import ({error}); "
            "install them for your machine (`envcheck setup` prints the command)"
        ) from None
    steps_needed = (steps or preset.quick_steps) + (preset.warmup_steps if warmup is None else warmup) + 5
    # --quick cycles through a small synthetic set (generating it costs ~70 ms per 1000 images on 2 cores);
    # --full trains on CIFAR-10's sizes
    train_images = min(QUICK_SYNTHETIC_TRAIN_IMAGES, max(16, steps_needed) * preset.batch_size)
    sizes = (50000, 10000) if full else (train_images, QUICK_SYNTHETIC_TEST_IMAGES)
    dataset = resolve_dataset(data_dir, download, synthetic, sizes)
    knowledge = load_knowledge()
    results = []
    with progress_bars(console(sys.stderr) if show_progress else None) as on_progress:
        for name in devices:
            options = RunOptions(
                preset, name, full, loader, workers, seed, steps, windows, warmup, calibration, ceiling
            )
            results.append(run_bench(options, dataset, knowledge, on_progress))
    return tuple(results), slow_siblings(tuple(results))


def _render(kind: str, results: Any, flags: Any, terminal: Any = None) -> Any:
    from envcheck.render.bench import render_bench, render_bench_json, render_bench_markdown

    if kind == "json":
        return render_bench_json(results, flags)
    if kind == "markdown":
        return render_bench_markdown(results, flags)
    return render_bench(results, flags, terminal)


def _keep_results(results: Any) -> None:
    """Save each run whose numbers were right to the user's data directory, for `envcheck recommend`.

    The result is still printed when this fails: a read-only or missing home is one warning, never an error.
    """
    import json

    from envcheck.bench.result import result_to_json
    from envcheck.bench.store import bench_results_dir, free_path, result_file_name
    from envcheck.loaders import InputError

    try:
        directory = bench_results_dir()
    except RuntimeError as error:  # Path.home() when no home directory can be determined
        typer.echo(f"envcheck: warning: bench results not saved: {error}", err=True)
        return
    for result in results:
        if not result.correctness.passed:
            continue
        document = result_to_json(result)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            write_output_file(
                free_path(directory, result_file_name(document)), json.dumps(document, indent=2, allow_nan=False) + "\n"
            )
        except (OSError, InputError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            typer.echo(f"envcheck: warning: bench result not saved to {directory}: {reason}", err=True)
            return


def _save_references(path: Path, results: Any) -> None:
    """Append one reference per run to `path`, atomically (an interrupted write leaves the old file intact)."""
    import datetime

    from envcheck.bench.calibration import Reference, reference_toml

    existing = _existing_references(path)
    entries = [
        reference_toml(
            Reference(
                preset=r.preset,
                device=r.device_name,
                loader=r.loader,
                images_per_s=r.timing.images_per_s,
                spread_cv=r.timing.cv,
                torch=dict(r.versions)["torch"],
                envcheck=dict(r.versions)["envcheck"],
                date=datetime.date.fromisoformat(r.date[:10]),
                method=f"envcheck bench --{r.mode} --device {r.device} --loader {r.loader}: median of"
                f" {len(r.timing.window_images_per_s)} windows,"
                f" {r.timing.timed_steps} timed steps"
                f" steps after {r.timing.warmup_steps} warm-up steps, {r.data} data,"
                f" load average {r.load_average_before} on {r.cpu_count} CPUs before the run",
            )
        )
        for r in results
    ]
    write_output_file(path, existing + "".join(entries))
