"""The python probe: the target interpreter and the ML distributions installed in it, from their metadata.

Runs in process when the target is the interpreter envcheck itself runs in (the common case, and fast),
otherwise runs target_script.py in the target interpreter.
"""

from __future__ import annotations

import dataclasses
import os
import sys

from envcheck.facts.python import PythonFacts
from envcheck.probes import target_script
from envcheck.probes.context import ProbeContext
from envcheck.probes.target import decode_result, resolve_interpreter, run_target_script

# Variables that change sys.path or the user site: if the target's differ from ours, our sys.path is not its.
_PATH_VARIABLES = (
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONNOUSERSITE",
    "PYTHONUSERBASE",
    "PYTHONSAFEPATH",
    "PYTHONPLATLIBDIR",
)


def probe_python(context: ProbeContext) -> PythonFacts:
    """PythonFacts of context.python; ProbeError when it cannot be run or answers nonsense.

    Command line equivalent: `PYTHON -m pip list` plus `PYTHON -c "import sys; print(sys.prefix)"`.
    """
    if is_running_interpreter(context):
        data = target_script.collect_interpreter(context.environ)
    else:
        # Reading metadata takes well under a second; half the deadline is for a slow network filesystem,
        # and the other half leaves the collector's deadline for this probe to report a hang itself.
        data = run_target_script(context.python, "interpreter", context.framework_timeout_s / 2, context.environ)
    facts = decode_result(PythonFacts, data, context.python, "interpreter")
    if not facts.executable:  # sys.executable is "" in an embedded interpreter
        facts = dataclasses.replace(facts, executable=context.python)
    return facts


def is_running_interpreter(context: ProbeContext) -> bool:
    """Whether context.python would see exactly the packages this process sees.

    Paths are compared without resolving symlinks: a venv's python is a symlink to the base interpreter,
    yet it is another environment.
    """
    path = resolve_interpreter(context.python, context.environ)
    # abspath, not resolve(): resolving would follow a venv's python to the base interpreter
    if os.path.abspath(path) != os.path.abspath(sys.executable):  # noqa: PTH100
        return False
    if sys.flags.isolated or sys.flags.ignore_environment or sys.flags.no_user_site:
        return False  # envcheck was started with -I, -E or -s: a plain run of the interpreter differs
    return all(context.environ.get(name) == os.environ.get(name) for name in _PATH_VARIABLES)
