"""The environment variables that change how ML code behaves (secrets redacted), the CUDA toolkit they point at and
the NVSwitch fabric manager's state."""

from __future__ import annotations

from collections.abc import Mapping

from envcheck.facts.environment import EnvironmentFacts, EnvironmentVariable
from envcheck.probes.context import ProbeContext
from envcheck.probes.cuda_toolkit import probe_cuda_toolkit
from envcheck.probes.fabric import probe_fabric
from envcheck.redaction import redact_value

# Variables read by CUDA, NCCL, PyTorch, the OpenMP/MKL runtimes, Hugging Face and the NVIDIA
# container runtime. Exact names first, then whole families by prefix.
_EXACT_NAMES = frozenset(
    {
        "CUDA_VISIBLE_DEVICES",
        "CUDA_DEVICE_ORDER",
        "CUDA_HOME",
        "CUDA_PATH",
        "CUDA_LAUNCH_BLOCKING",
        "CUDA_MODULE_LOADING",
        "CUDNN_PATH",
        "LD_LIBRARY_PATH",
        "LD_PRELOAD",
        "PATH",
        "PYTHONPATH",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "NVIDIA_VISIBLE_DEVICES",
        "NVIDIA_DRIVER_CAPABILITIES",
        "VIRTUAL_ENV",
        "CONDA_PREFIX",
        "CONDA_DEFAULT_ENV",
        "XDG_CACHE_HOME",
        "TMPDIR",
        "WORLD_SIZE",
        "RANK",
        "LOCAL_RANK",
        "MASTER_ADDR",
        "MASTER_PORT",
    }
)
_PREFIXES = ("NCCL_", "PYTORCH_", "TORCH_", "HF_", "HUGGINGFACE_", "TRANSFORMERS_", "KMP_", "MKL_", "OMP_")


def is_relevant(name: str) -> bool:
    return name in _EXACT_NAMES or name.startswith(_PREFIXES)


def collect_variables(environ: Mapping[str, str], is_redacting: bool) -> tuple[EnvironmentVariable, ...]:
    variables = []
    for name in sorted(name for name in environ if is_relevant(name)):
        value, is_redacted = redact_value(name, environ[name]) if is_redacting else (environ[name], False)
        variables.append(EnvironmentVariable(name=name, value=value, is_redacted=is_redacted))
    return tuple(variables)


def probe_environment(context: ProbeContext) -> EnvironmentFacts:
    return EnvironmentFacts(
        variables=collect_variables(context.environ, context.is_redacting),
        cuda_toolkit=probe_cuda_toolkit(context),
        fabric=probe_fabric(context),
    )
