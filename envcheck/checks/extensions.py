"""Compiled extensions beside torch (flash-attn, xformers, torch-scatter, ...): built for this torch, CUDA and C++ ABI,
and importable. What each declares is read from its metadata facts against profiles/compat/extensions.toml.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from envcheck.checks.common import skipped
from envcheck.checks.registry import CheckInput, check
from envcheck.checks.wheels import knowledge_of, missing_of, variant_of
from envcheck.facts.common import Unavailable, known
from envcheck.facts.framework import Extension, TorchFacts
from envcheck.finding import Finding, Severity
from envcheck.knowledge.model import ExtensionRule, ImportSignature, Knowledge

# Local labels: flash-attn's release wheels "cu123torch2.4cxx11abiFALSE", PyG's "pt23cu121" / "pt23cpu", vLLM's and
# detectron2's "cu118"
_PYG = re.compile(r"pt(\d)(\d+)(cu\d+|cpu)")
_CUDA = re.compile(r"cu(\d{2,4})")
_TORCH = re.compile(r"torch(\d+)\.(\d+)")
_ABI = re.compile(r"cxx11abi(true|false)")
_WHEEL_NAME = re.compile(r"^[^-]+-([^-]+)-")  # name-version-python-abi-platform.whl
_MAX_QUOTED = 300  # a printed line quoted in a title: bitsandbytes's warning is ~150 characters


@dataclass(frozen=True, slots=True)
class Declared:
    """What one declaration (a local label, a pin) says an extension was built for; None where it says nothing."""

    said_by: str  # "its version tag", "the wheel it came from (URL)"
    torch: tuple[int, int] | None = None
    cuda_major: int | None = None  # None: not said; 0: built for the CPU
    abi: bool | None = None


def parse_local_label(label: str, said_by: str) -> Declared | None:
    """What a version's local label says: '+pt23cu121' -> torch 2.3, CUDA 12; None when it says nothing."""
    text = label.lower()
    torch: tuple[int, int] | None = None
    cuda_major: int | None = None
    if match := _PYG.search(text):
        torch = (int(match.group(1)), int(match.group(2)))
        cuda_major = 0 if match.group(3) == "cpu" else _cuda_major(match.group(3)[2:])
    else:
        if match := _TORCH.search(text):
            torch = (int(match.group(1)), int(match.group(2)))
        if match := _CUDA.search(text):
            cuda_major = _cuda_major(match.group(1))
        elif re.search(r"(^|[^a-z])cpu", text):
            cuda_major = 0
    abi_match = _ABI.search(text)
    abi = None if abi_match is None else abi_match.group(1) == "true"
    if torch is None and cuda_major is None and abi is None:
        return None
    return Declared(said_by, torch, cuda_major, abi)


def _cuda_major(digits: str) -> int:
    """'121' -> 12, '118' -> 11, '92' -> 9 (the last digit is the minor version), but flash-attn's release wheels
    since 2.7 name the major alone: 'cu12' -> 12 (no CUDA 1.x was ever a wheel variant)."""
    if len(digits) == 2 and digits.startswith("1"):
        return int(digits)
    return int(digits[:-1])


def declarations(extension: Extension, rule: ExtensionRule) -> list[Declared]:
    """Every build declaration the rule says this extension makes, that its metadata holds."""
    found = []
    for kind in rule.declares:
        if kind == "local_tag" and "+" in extension.version:
            declared = parse_local_label(extension.version.split("+", 1)[1], "its version tag")
            found.append(declared)
        elif kind == "origin_url" and extension.origin_url and (name := _wheel_version(extension.origin_url)):
            found.append(parse_local_label(name.split("+", 1)[1], f"the wheel it came from ({extension.origin_url})"))
    return [declared for declared in found if declared is not None]


def _wheel_version(url: str) -> str | None:
    match = _WHEEL_NAME.match(url.rsplit("/", 1)[-1])
    version = match.group(1) if match else None
    return version if version and "+" in version else None


def _release(version: str) -> tuple[int, int] | None:
    try:
        parsed = Version(version)
    except InvalidVersion:
        return None
    return parsed.major, parsed.minor


def _requirement_spec(line: str) -> tuple[str, SpecifierSet] | None:
    """('==2.4.1', SpecifierSet) from 'torch==2.4.1; platform_system == "Linux"'; None for an extra's requirement
    (it applies only when the extra is asked for) or a line without a version range."""
    requirement, _, marker = line.partition(";")
    if "extra" in marker:
        return None
    spec = re.sub(r"^\s*[A-Za-z0-9][A-Za-z0-9._-]*\s*(\[[^\]]*\])?", "", requirement).strip().strip("()")
    if not spec:
        return None
    try:
        return spec, SpecifierSet(spec)
    except InvalidSpecifier:
        return None


def mismatches(extension: Extension, rule: ExtensionRule, torch: TorchFacts) -> list[str]:
    """Why this extension was built for another torch, CUDA or C++ ABI than the installed torch; [] when it fits or
    declares nothing."""
    reasons = []
    release = _release(torch.version)
    torch_cuda = int(torch.cuda_version.split(".")[0]) if torch.cuda_version else 0
    torch_abi = known(torch.cxx11_abi)
    for declared in declarations(extension, rule):
        if declared.torch is not None and release is not None and declared.torch != release:
            reasons.append(f"{declared.said_by} says torch {declared.torch[0]}.{declared.torch[1]}")
        if declared.cuda_major is not None and torch.hip_version is None and declared.cuda_major != torch_cuda:
            built = "the CPU" if declared.cuda_major == 0 else f"CUDA {declared.cuda_major}"
            reasons.append(f"{declared.said_by} says {built}")
        if declared.abi is not None and torch_abi is not None and declared.abi != torch_abi:
            reasons.append(f"{declared.said_by} says the {'new' if declared.abi else 'pre'}-C++11 ABI")
    if "requires_torch" in rule.declares:
        for line in extension.requires_torch:
            parsed = _requirement_spec(line)
            if parsed is not None and not _satisfies(parsed[1], torch.version):
                reasons.append(f"it requires torch{parsed[0]}")
    if "pinned_by_torch" in rule.declares and extension.pinned_by_torch:
        parsed = _requirement_spec(extension.pinned_by_torch)
        if parsed is not None and not _satisfies(parsed[1], extension.version):
            reasons.append(f"torch {torch.version} requires {extension.name}{parsed[0]}")
    return reasons


def _satisfies(spec: SpecifierSet, version: str) -> bool:
    try:
        return spec.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return True  # an unreadable version cannot be judged; the import test still runs


def fix_for(rule: ExtensionRule, extension: Extension, torch: TorchFacts, python: str) -> str:
    release = _release(torch.version)
    abi = known(torch.cxx11_abi)
    pin = (extension.pinned_by_torch or extension.name).split(";", 1)[0].strip()
    return rule.fix.format(
        python=python,
        torch_release=Version(torch.version).public if release else torch.version,
        torch_mm=f"{release[0]}.{release[1]}" if release else "X.Y",
        variant=variant_of(torch) or ("cpu" if torch.cuda_version is None else "cuXYZ"),
        cuda_major=torch.cuda_version.split(".")[0] if torch.cuda_version else "XY",
        abi="TRUE|FALSE" if abi is None else str(abi).upper(),
        pin=pin,
    )


_BUILD_EVIDENCE = (
    "framework.extensions",
    "framework.torch.version",
    "framework.torch.cuda_version",
    "framework.torch.cxx11_abi",
)


@dataclass(frozen=True, slots=True)
class _Inputs:
    torch: TorchFacts
    extensions: tuple[Extension, ...]
    knowledge: Knowledge
    python: str


def _inputs(given: CheckInput, check_id: str, what: str) -> _Inputs | Finding:
    framework, knowledge = given.snapshot.framework, knowledge_of(given)
    if isinstance(framework, Unavailable) or knowledge is None:
        return skipped(check_id, what, missing_of(framework))
    if isinstance(framework.extensions, Unavailable):
        return skipped(check_id, what, framework.extensions)
    if framework.torch is None:
        why = framework.import_error or "torch is not installed"
        return Finding(check_id, Severity.SKIP, f"{what} not checked", detail=f"torch did not import: {why}")
    return _Inputs(framework.torch, framework.extensions, knowledge, framework.interpreter)


def installed_extensions(given: CheckInput) -> list[tuple[Extension, ExtensionRule]]:
    """The extensions the snapshot lists that the knowledge base knows, with their rules."""
    framework, knowledge = given.snapshot.framework, knowledge_of(given)
    if isinstance(framework, Unavailable) or knowledge is None or isinstance(framework.extensions, Unavailable):
        return []
    return [(e, rule) for e in framework.extensions if (rule := knowledge.extension(e.name)) is not None]


@check(
    "install.extension_build",
    "Compiled extensions (flash-attn, xformers, torch-scatter, ...) were built for the installed torch, CUDA and ABI.",
)
def check_extension_build(given: CheckInput) -> Iterator[Finding]:
    check_id = "install.extension_build"
    inputs = _inputs(given, check_id, "extension builds")
    if isinstance(inputs, Finding):
        yield inputs
        return
    torch = inputs.torch
    fitting: list[str] = []
    silent: list[str] = []
    for extension, rule in installed_extensions(given):
        reasons = mismatches(extension, rule, torch)
        if not reasons:
            (fitting if declarations(extension, rule) or extension.requires_torch else silent).append(extension.name)
            continue
        yield Finding(
            check_id,
            Severity.FAIL,
            f"{extension.name} {extension.version} was built for another torch build than {torch.version}: "
            + reasons[0],
            detail="; ".join(reasons)
            + ". A compiled extension links to torch's C++ symbols and CUDA runtime: built for another release, CUDA "
            f"major or C++ ABI it fails to import (undefined symbol) or crashes. Prebuilt wheels: {rule.wheels}.",
            fix=fix_for(rule, extension, torch, inputs.python),
            evidence=_BUILD_EVIDENCE,
        )
    if not inputs.extensions:
        yield Finding(check_id, Severity.OK, "no compiled extensions beside torch")
        return
    said = [f"built for torch {torch.version}: {', '.join(fitting)}"] if fitting else []
    said += [f"declaring nothing (their import test decides): {', '.join(silent)}"] if silent else []
    if said:
        yield Finding(check_id, Severity.OK, "; ".join(said))


@check("install.extension_import", "Every compiled extension beside torch imports.")
def check_extension_import(given: CheckInput) -> Iterator[Finding]:
    check_id = "install.extension_import"
    inputs = _inputs(given, check_id, "extension imports")
    if isinstance(inputs, Finding):
        yield inputs
        return
    torch, knowledge = inputs.torch, inputs.knowledge
    imported: list[str] = []
    untried: list[Unavailable] = []
    failed = 0
    for extension in inputs.extensions:
        error = extension.import_error
        rule = knowledge.extension(extension.name)
        if (
            rule is not None and not rule.is_imported
        ):  # listed, not imported (triton): install.extension_build judges it
            continue
        if isinstance(error, Unavailable):
            untried.append(error)
            continue
        if error is None:
            printed = _printed_failure(knowledge, extension)
            if printed is None:
                imported.append(extension.name)
                continue
            failed += 1
            yield _printed_finding(check_id, inputs, extension, rule, *printed)
            continue
        failed += 1
        signature = knowledge.import_cause(error)
        built = mismatches(extension, rule, torch) if rule else []
        cause = signature.cause if signature else "not a known signature: the error line is all there is"
        yield Finding(
            check_id,
            Severity.FAIL,
            f"{extension.name} {extension.version} fails to import beside torch {torch.version}: {error}",
            detail=f"Cause: {cause}."
            + (f" Its metadata agrees: {'; '.join(built)}." if built else "")
            + (f" Prebuilt wheels: {rule.wheels}." if rule else ""),
            fix=fix_for(rule, extension, torch, inputs.python) if rule else None,
            evidence=("framework.extensions", "framework.torch.version"),
        )
    if imported:
        yield Finding(check_id, Severity.OK, f"import beside torch {torch.version}: {', '.join(imported)}")
    elif untried and not failed:
        yield Finding(check_id, Severity.SKIP, "extension imports not checked", detail=untried[0].reason)
    elif not failed:
        yield Finding(check_id, Severity.OK, "no compiled extensions beside torch to import")


def _printed_failure(knowledge: Knowledge, extension: Extension) -> tuple[str, ImportSignature] | None:
    """The first line an import that succeeded printed or warned that a `printed` signature says means it cannot
    work (bitsandbytes: "compiled without GPU support"), with that signature; None when there is none."""
    for line in known(extension.import_output) or ():
        signature = knowledge.import_cause(line, is_printed=True)
        if signature is not None:
            return line, signature
    return None


def _printed_finding(
    check_id: str,
    inputs: _Inputs,
    extension: Extension,
    rule: ExtensionRule | None,
    line: str,
    signature: ImportSignature,
) -> Finding:
    # torch with no usable GPU here: an extension that says it has no GPU support is what this machine allows
    torch = inputs.torch
    severity = Severity.FAIL if torch.is_cuda_available else Severity.WARN
    said = line if len(line) <= _MAX_QUOTED else line[: _MAX_QUOTED - 1] + "…"
    return Finding(
        check_id,
        severity,
        f"{extension.name} {extension.version} imports beside torch {torch.version} but says it cannot work: {said}",
        detail=f"Cause: {signature.cause}. Its import printed this and went on, so nothing fails until it is used."
        + ("" if torch.is_cuda_available else " torch sees no usable GPU here: this matters where it does.")
        + (f" Prebuilt wheels: {rule.wheels}." if rule else ""),
        fix=fix_for(rule, extension, torch, inputs.python) if rule else None,
        evidence=("framework.extensions", "framework.torch.is_cuda_available"),
    )


def extensions_needing_build(given: CheckInput) -> list[str]:
    """What makes nvcc matter on this machine, one phrase each: an extension that compiles CUDA code when used
    (DeepSpeed's ops), or one built for another torch or failing to import whose fix compiles it here (pip builds it
    from source). Empty: everything installed came prebuilt and fits, so no toolkit is needed."""
    framework = given.snapshot.framework
    torch = framework.torch if not isinstance(framework, Unavailable) else None
    needing = []
    for extension, rule in installed_extensions(given):
        if rule.compiles_at_runtime:
            needing.append(f"{extension.name} (compiles its CUDA ops with nvcc when used)")
        elif rule.builds_from_source and torch is not None:
            if mismatches(extension, rule, torch):
                needing.append(f"{extension.name} (built for another torch; reinstalling compiles it)")
            elif isinstance(extension.import_error, str):
                needing.append(f"{extension.name} (fails to import; reinstalling compiles it)")
    return needing
