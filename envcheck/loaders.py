"""Reads the files `--from` accepts into a Snapshot: an envcheck snapshot JSON, the XML of `nvidia-smi -q -x`,
the text of `nvidia-smi -q`, the text of `python -m torch.utils.collect_env`, or the environment table of
detectron2's or OpenMMLab's (mmcv, mmdetection, mmengine) `collect_env`, logged as lines or printed as a dict.
Every failure is an InputError whose one line names the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from envcheck import __version__
from envcheck.facts.common import Unavailable
from envcheck.facts.gpu import GpuFacts
from envcheck.input_files import SNAPSHOT_LIMIT, InputError, read_input_file
from envcheck.snapshot import ProbeRun, Snapshot, SnapshotFormatError, from_json

# InputError lives in input_files; many modules import it from here, its first home.
__all__ = ["InputError", "load_snapshot_file"]

_HOST_SECTIONS = ("system", "cpu", "memory", "storage", "python", "environment", "network", "framework", "toolchain")


def load_snapshot_file(path: Path) -> Snapshot:
    data = read_input_file(path, SNAPSHOT_LIMIT)
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]  # a UTF-8 BOM or blank lines may precede either format
    if head == b"{":
        try:
            return from_json(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise InputError(f"{path}: not UTF-8 text") from None
        except SnapshotFormatError as error:
            raise InputError(f"{path}: {error}") from None
    # Before the XML test: a collect_env paste copied from GitHub may open with <details>.
    if _is_collect_env(data):
        return _snapshot_from_collect_env(path, data)
    if _is_framework_env(data):  # detectron2's or OpenMMLab's table: torch's facts under other labels
        return _snapshot_from_framework_env(path, data)
    # After collect_env, whose torch facts are worth more should a paste hold both; before XML, for a <details> wrapper.
    if _is_nvidia_smi_text(data):
        return _snapshot_from_nvidia_smi_text(path, data)
    if head == b"<":
        return _snapshot_from_nvidia_smi_xml(path, data)
    if not data.strip():
        raise InputError(f"{path}: the file is empty")
    raise InputError(
        f"{path}: unknown format: expected an envcheck snapshot JSON (`envcheck info --json`), "
        "the output of `nvidia-smi -q -x` or `nvidia-smi -q`, the output of `python -m torch.utils.collect_env`, "
        "or detectron2's or mmcv's collect_env table"
    )


def _is_collect_env(data: bytes) -> bool:
    from envcheck.importers.collect_env_text import decode_text, looks_like_collect_env

    return b"<nvidia_smi_log" not in data[:4096] and looks_like_collect_env(decode_text(data[:20000]))


def _snapshot_from_collect_env(path: Path, data: bytes) -> Snapshot:
    from envcheck.importers.collect_env import CollectEnvError, snapshot_from_collect_env

    try:
        return snapshot_from_collect_env(data, path.name)
    except CollectEnvError as error:
        raise InputError(f"{path}: {error}") from None


def _is_framework_env(data: bytes) -> bool:
    from envcheck.importers.collect_env_text import decode_text
    from envcheck.importers.framework_env import format_of

    return b"<nvidia_smi_log" not in data[:4096] and format_of(decode_text(data[:20000])) is not None


def _snapshot_from_framework_env(path: Path, data: bytes) -> Snapshot:
    from envcheck.importers.collect_env import CollectEnvError
    from envcheck.importers.framework_env import FrameworkEnvError, snapshot_from_framework_env

    try:
        return snapshot_from_framework_env(data, path.name)
    except (FrameworkEnvError, CollectEnvError) as error:
        raise InputError(f"{path}: {error}") from None


def _is_nvidia_smi_text(data: bytes) -> bool:
    from envcheck.importers.collect_env_text import decode_text
    from envcheck.importers.nvidia_smi_text import looks_like_nvidia_smi_q

    return looks_like_nvidia_smi_q(decode_text(data[:65536]))


def _snapshot_from_nvidia_smi_text(path: Path, data: bytes) -> Snapshot:
    from envcheck.importers.collect_env_text import decode_text
    from envcheck.importers.nvidia_smi_text import NvidiaSmiTextError, parse_nvidia_smi_text

    source = f"nvidia-smi-q:{path.name}"
    try:
        gpu = parse_nvidia_smi_text(decode_text(data), source)
    except NvidiaSmiTextError as error:
        raise InputError(f"{path}: {error}") from None
    return _gpu_only_snapshot(gpu, source, f"not in an nvidia-smi -q text file ({path.name})")


def _snapshot_from_nvidia_smi_xml(path: Path, data: bytes) -> Snapshot:
    from envcheck.probes.nvidia_smi import NvidiaSmiXmlError, parse_nvidia_smi_xml

    source = f"nvidia-smi-xml:{path.name}"
    try:
        gpu = parse_nvidia_smi_xml(data, source)
    except NvidiaSmiXmlError as error:
        raise InputError(f"{path}: {error}") from None
    return _gpu_only_snapshot(gpu, source, f"not in an nvidia-smi XML file ({path.name})")


def _gpu_only_snapshot(gpu: GpuFacts, source: str, reason: str) -> Snapshot:
    """A snapshot holding only the GPU facts of the file; every other section says it was not in it."""
    absent = Unavailable(reason)
    return Snapshot(
        envcheck_version=__version__,
        created_at="unknown",
        source=source,
        is_redacted=False,
        probes=tuple(ProbeRun(name, "skipped", 0.0, absent.reason) for name in _HOST_SECTIONS),
        gpu=gpu,
        **_absent_sections(absent),
    )


def _absent_sections(absent: Unavailable) -> dict[str, Any]:
    """The host sections an nvidia-smi file cannot fill; typed Any so mypy does not match them to Snapshot.messages."""
    return dict.fromkeys(_HOST_SECTIONS, absent)
