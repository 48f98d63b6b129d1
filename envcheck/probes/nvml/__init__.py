"""NVML, behind a narrow backend interface: live (pynvml), recording and replaying; and the GPU probe over it."""

from envcheck.probes.nvml.probe import probe_gpu
from envcheck.probes.nvml.recording import record_nvml

__all__ = ["probe_gpu", "record_nvml"]
