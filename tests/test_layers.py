"""The layering of DESIGN.md, enforced: who may import what, and nothing heavy at start-up."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "envcheck"
HARDWARE = ("pynvml", "psutil", "torch", "torchvision")

# layer (path prefix inside the package) -> imports it must not make
RULES: dict[str, tuple[str, ...]] = {
    "facts/": ("envcheck.probes", "envcheck.checks", "envcheck.render", "envcheck.knowledge", "rich", *HARDWARE),
    "snapshot.py": ("envcheck.probes", "envcheck.checks", "envcheck.render", "rich", *HARDWARE),
    "codec.py": ("envcheck.probes", "envcheck.checks", "envcheck.render", "rich", *HARDWARE),
    "finding.py": ("envcheck.probes", "envcheck.checks", "envcheck.render", "rich", *HARDWARE),
    "probes/": ("envcheck.checks", "envcheck.render", "rich"),
    "checks/": ("envcheck.probes", "envcheck.render", "rich", *HARDWARE),
    "knowledge/": ("envcheck.probes", "envcheck.render", "envcheck.checks", "rich", *HARDWARE),
    "render/": ("envcheck.probes", "envcheck.checks", *HARDWARE),
    "advise/": ("envcheck.probes", "envcheck.render", "rich", *HARDWARE),
    # bench/ imports torch inside functions only (ruff TID253) and reports progress through a callback
    "bench/": ("envcheck.render", "rich"),
    # the cluster's facts and checks are pure (torch only in collectives.py, group.py and probe.py, inside functions)
    **{
        f"cluster/{name}.py": ("envcheck.probes", "envcheck.render", "envcheck.collect", "rich", *HARDWARE)
        for name in (
            "facts",
            "consistency",
            "timing",
            "report",
            "bandwidth",
            "ranks",
            "options",
            "fabric",
            "nccl_log",
            "network",
        )
    },
    # explain matches and judges text against a Snapshot it is given: it reads, probes and prints nothing
    "explain/": ("envcheck.probes", "envcheck.render", "envcheck.collect", "envcheck.cli", "rich", *HARDWARE),
    # the one reader of input files is used by every layer, so it uses none
    "input_files.py": ("envcheck", "rich", *HARDWARE),
}


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_layer_imports(path: Path) -> None:
    relative = str(path.relative_to(PACKAGE))
    for prefix, banned in RULES.items():
        if relative.startswith(prefix):
            bad = {
                name for name in imported_modules(path) for ban in banned if name == ban or name.startswith(ban + ".")
            }
            assert not bad, f"{relative} imports {sorted(bad)}, which its layer must not"


def test_help_and_import_touch_no_hardware_library() -> None:
    code = (
        "import sys; from typer.testing import CliRunner; import envcheck.cli as c;"
        "r = CliRunner().invoke(c.app, ['--help']); assert r.exit_code == 0, r.output;"
        f"print(sorted(m for m in {HARDWARE!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
