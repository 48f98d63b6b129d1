"""The framework probe: torch's build, its view of the GPUs and a smoke test, from the target interpreter.

Always out of process (DESIGN.md): importing a broken torch can crash or hang, and envcheck must survive
that to report it. The work happens in target_script.py; this module runs it and checks what came back.
"""

from __future__ import annotations

import dataclasses

from envcheck.facts.framework import FrameworkFacts
from envcheck.probes.context import ProbeContext
from envcheck.probes.target import decode_result, run_target_script


def probe_framework(context: ProbeContext) -> FrameworkFacts:
    """`PYTHON target_script.py framework` under context.framework_timeout_s, decoded into FrameworkFacts.

    Command line equivalent: `PYTHON -c "import torch; print(torch.__version__, torch.cuda.is_available())"`.
    Raises ProbeError when the script hangs, crashes, or prints no readable result.
    """
    data = run_target_script(context.python, "framework", context.framework_timeout_s, context.environ)
    facts = decode_result(FrameworkFacts, data, context.python, "framework")
    if not facts.interpreter:  # sys.executable is "" in an embedded interpreter
        facts = dataclasses.replace(facts, interpreter=context.python)
    return facts
