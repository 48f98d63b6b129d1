"""A benchmark verdict as doctor findings (`envcheck doctor --bench`): correctness, speed against the reference."""

from __future__ import annotations

from envcheck.bench.result import BenchResult, SiblingFlag
from envcheck.finding import Finding, Severity

_FIX_SLOW = "Check the reasons listed; rerun on an idle machine with `envcheck bench --device {device}`"


def bench_findings(result: BenchResult, slow_siblings: tuple[SiblingFlag, ...] = ()) -> list[Finding]:
    correctness, calibration = result.correctness, result.calibration
    where = f"{result.preset} on {result.device} ({result.device_name}, {result.data} data)"
    findings = [
        Finding(
            "bench.correctness",
            Severity.OK if correctness.passed else Severity.FAIL,
            f"training computes correct numbers: loss within {correctness.max_rel_deviation:.1e} of float64"
            if correctness.passed
            else f"training computes wrong numbers: loss {correctness.max_rel_deviation:.1e} away from float64"
            f" (tolerance {correctness.tolerance:.0e} for {correctness.precision})",
            detail=f"{correctness.steps} steps of {where}; device losses {correctness.device_losses},"
            f" float64 {correctness.reference_losses}",
            fix=None
            if correctness.passed
            else "Update the GPU driver and reinstall torch; if it persists, test this GPU with NVIDIA's diagnostics"
            " (`dcgmi diag -r 3`)",
            evidence=("bench.correctness",),
        )
    ]
    rate = f"{result.timing.images_per_s:,.0f} images/s"
    if calibration.score is None:
        findings.append(
            Finding(
                "bench.speed",
                Severity.INFO,
                f"{rate} (speed {calibration.verdict}: {calibration.basis})",
                detail=where,
                evidence=("bench.images_per_s",),
            )
        )
    else:
        severity = {"as expected": Severity.OK, "slower than expected": Severity.WARN}.get(
            calibration.verdict, Severity.FAIL
        )
        label = "" if calibration.kind == "measured" else f" {calibration.kind}"
        findings.append(
            Finding(
                "bench.speed",
                severity,
                f"{rate}, {calibration.score:.0%} of the{label} {calibration.reference_images_per_s:,.0f}:"
                f" {calibration.verdict}",
                detail=f"{where}; {calibration.basis}"
                + ("; likely: " + "; ".join(calibration.reasons) if calibration.reasons else ""),
                fix=None if severity is Severity.OK else _FIX_SLOW.format(device=result.device),
                evidence=("bench.images_per_s", "bench.calibration"),
            )
        )
    findings += [
        Finding(
            "bench.slow_sibling",
            Severity.WARN,
            f"{flag.device} ({flag.device_name}) is {flag.slower_fraction:.0%} slower than its identical siblings",
            detail=f"{flag.images_per_s:,.0f} images/s against a median of {flag.siblings_median_images_per_s:,.0f}",
            fix=f"Check cooling, power and PCIe link of {flag.device}:"
            " `nvidia-smi -q -d PERFORMANCE,POWER,TEMPERATURE`",
            evidence=("bench.images_per_s",),
        )
        for flag in slow_siblings
    ]
    return findings
