"""The environment probe keeps the variables that change ML behaviour and never leaks a secret."""

from __future__ import annotations

from envcheck.probes.context import ProbeContext
from envcheck.probes.environment import probe_environment
from envcheck.redaction import REDACTED

ENVIRON = {
    "CUDA_VISIBLE_DEVICES": "0,1",
    "NCCL_DEBUG": "INFO",
    "NCCL_IB_PASSWORD": "hunter2",
    "HF_TOKEN": "hf_abcdefghijklmnopqrstuvwxyz",
    "HF_HOME": "/scratch/hf",
    "PIP_INDEX_URL": "https://user:s3cret@pypi.example.com/simple",
    "HF_ENDPOINT": "https://alice:pa55@hf-mirror.example.com",
    "TORCH_HOME": "/scratch/torch",
    "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True",
    "OMP_NUM_THREADS": "8",
    "AWS_SECRET_ACCESS_KEY": "not-collected-at-all",
    "EDITOR": "vim",
}


def values(redact: bool) -> dict[str, str]:
    facts = probe_environment(ProbeContext(environ=ENVIRON, is_redacting=redact))
    return {variable.name: variable.value for variable in facts.variables}


def test_keeps_ml_variables_and_drops_unrelated_ones() -> None:
    seen = values(redact=True)
    assert seen["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert seen["PYTORCH_CUDA_ALLOC_CONF"] == "expandable_segments:True"
    assert seen["OMP_NUM_THREADS"] == "8"
    assert "EDITOR" not in seen
    assert "AWS_SECRET_ACCESS_KEY" not in seen


def test_redacts_secret_names_and_url_credentials() -> None:
    seen = values(redact=True)
    assert seen["HF_TOKEN"] == REDACTED
    assert seen["NCCL_IB_PASSWORD"] == REDACTED
    assert seen["HF_ENDPOINT"] == f"https://{REDACTED}@hf-mirror.example.com"
    assert seen["HF_HOME"] == "/scratch/hf"
    assert not any(secret in value for value in seen.values() for secret in ("hunter2", "hf_abc", "pa55"))


def test_no_redact_keeps_values() -> None:
    seen = values(redact=False)
    assert seen["HF_TOKEN"] == "hf_abcdefghijklmnopqrstuvwxyz"
    assert seen["HF_ENDPOINT"] == "https://alice:pa55@hf-mirror.example.com"
