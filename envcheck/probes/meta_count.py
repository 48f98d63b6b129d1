"""transformers' parameter count of a Hugging Face config, built on the meta device in a bounded child process.

`recommend --hf-config` compares it with envcheck's formula when transformers is installed; without it, the
formula alone. The child is the target interpreter running meta_count_script.py (importing transformers and
torch can take seconds and must not happen inside envcheck).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from envcheck.facts.common import Unavailable
from envcheck.probes.bounded import one_line_tail, run_bounded

SCRIPT = Path(__file__).with_name("meta_count_script.py")
TIMEOUT_S = 120.0  # importing transformers and torch cold takes 5-20 s; building on meta is fast


@dataclass(frozen=True, slots=True)
class MetaCount:
    parameters: int
    model_class: str  # the transformers class that was built ("MixtralForCausalLM")


def is_transformers_installed() -> bool:
    """Without importing it: the probe runs only where it can answer."""
    return importlib.util.find_spec("transformers") is not None


def probe_meta_count(
    config: Path, python: str = sys.executable, timeout_s: float = TIMEOUT_S
) -> MetaCount | Unavailable:
    """Command line equivalent: python -c "import torch, transformers; c = transformers.AutoConfig.for_model(
    **json.load(open(CONFIG))); with torch.device('meta'): m = transformers.AutoModelForCausalLM.from_config(c);
    print(sum(p.numel() for p in m.parameters()))"."""
    try:
        finished = run_bounded([python, str(SCRIPT), str(config)], timeout_s, dict(os.environ))
    except OSError as error:
        return Unavailable(f"cannot run {python}: {error.strerror or error}")
    if finished.returncode is None:
        return Unavailable(f"transformers did not build the model within {timeout_s:g} s")
    return parse_meta_count(finished.returncode, finished.stdout, finished.stderr)


def parse_meta_count(returncode: int, stdout: bytes, stderr: bytes) -> MetaCount | Unavailable:
    lines = stdout.decode("utf-8", "replace").strip().splitlines()
    if returncode != 0 or not lines:
        return Unavailable(f"transformers count failed (status {returncode}): {one_line_tail(stderr, 300)}")
    try:
        data = json.loads(lines[-1])
    except json.JSONDecodeError:
        return Unavailable(f"transformers count printed no result: {lines[-1][:200]!r}")
    if not isinstance(data, dict):
        return Unavailable("transformers count printed no result object")
    parameters, model_class = data.get("parameters"), data.get("class")
    if isinstance(parameters, int) and not isinstance(parameters, bool) and parameters > 0:
        return MetaCount(parameters, str(model_class))
    return Unavailable(str(data.get("unavailable") or "transformers count printed no parameter count")[:400])
