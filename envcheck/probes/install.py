"""The install probe: after `setup --apply` (and in `--check`), import torch and torchvision in the target
interpreter and run a matmul and torchvision.ops.nms on the device the plan is for.

Out of process like the framework probe (DESIGN.md): a torchvision built for another torch can fail at import.
"""

from __future__ import annotations

from collections.abc import Mapping

from envcheck.facts.framework import InstallFacts
from envcheck.probes.target import decode_result, run_target_script

DEVICES = ("cpu", "cuda", "mps")


def probe_install(python: str, device: str, timeout_s: float, environ: Mapping[str, str]) -> InstallFacts:
    """`PYTHON target_script.py install-DEVICE` under ``timeout_s``, decoded into InstallFacts.

    Command line equivalent: `PYTHON -c "import torch, torchvision; print(torchvision.ops.nms(
    torch.rand(3, 4), torch.rand(3), 0.5))"`. Raises ProbeError when the script hangs, crashes, or prints
    no readable result.
    """
    if device not in DEVICES:
        raise ValueError(f"device {device!r} is not one of {DEVICES}")
    mode = f"install-{device}"
    return decode_result(InstallFacts, run_target_script(python, mode, timeout_s, environ), python, mode)
