"""GPU health facts: ECC counters, retired pages, remapped rows, NVLink links and peer topology.

Each field notes where nvidia-smi shows it (`nvidia-smi -q -x` path) so anyone can check it by hand;
NVML fills the same fields from the calls named alongside.
"""

from __future__ import annotations

from dataclasses import dataclass

from envcheck.facts.common import Unavailable

# Link types between two GPUs, from the closest to the farthest (nvidia-smi topo -m legend).
LINK_NVLINK = "nvlink"  # NV#: a bonded set of NVLinks (direct or through NVSwitch)
LINK_PCIE_SWITCH = "pcie_switch"  # PIX / PXB: PCIe bridges only, not through the host bridge
LINK_HOST_BRIDGE = "host_bridge"  # PHB: through the CPU's PCIe host bridge
LINK_SAME_SOCKET = "same_socket"  # NODE: between host bridges within one NUMA node
LINK_ACROSS_SOCKETS = "across_sockets"  # SYS: over the inter-socket link (QPI/UPI/xGMI)


@dataclass(frozen=True, slots=True)
class EccCounts:
    """ECC error totals over all memory locations (device memory, SRAM, caches, register file)."""

    # new layout: sram_correctable + dram_correctable; old layout: single_bit/total
    corrected: int | Unavailable
    # new layout: sram_uncorrectable(_parity + _secded) + dram_uncorrectable; old layout: double_bit/total
    uncorrected: int | Unavailable


@dataclass(frozen=True, slots=True)
class EccFacts:
    is_enabled: bool | Unavailable  # ecc_mode/current_ecc (nvmlDeviceGetEccMode)
    is_enabled_pending: bool | Unavailable  # ecc_mode/pending_ecc: what the next reboot applies
    volatile: EccCounts  # ecc_errors/volatile: since the driver loaded
    aggregate: EccCounts  # ecc_errors/aggregate: over the GPU's lifetime (InfoROM)


@dataclass(frozen=True, slots=True)
class RetiredPages:
    """Dynamic page retirement, the pre-Ampere way to take bad device memory out of use."""

    single_bit_count: int | Unavailable  # retired_pages/multiple_single_bit_retirement/retired_count
    double_bit_count: int | Unavailable  # retired_pages/double_bit_retirement/retired_count
    # retired_pages/pending_retirement (pending_blacklist before ~driver 450): needs a GPU reset to apply
    is_pending: bool | Unavailable


@dataclass(frozen=True, slots=True)
class RemappedRows:
    """Row remapping, Ampere's successor to page retirement (nvmlDeviceGetRemappedRows)."""

    correctable: int | Unavailable  # remapped_rows/remapped_row_corr
    uncorrectable: int | Unavailable  # remapped_rows/remapped_row_unc
    is_pending: bool | Unavailable  # remapped_rows/remapped_row_pending: a GPU reset applies it
    has_failure: bool | Unavailable  # remapped_rows/remapped_row_failure: no spare rows left, RMA


@dataclass(frozen=True, slots=True)
class NvLink:
    """One NVLink of a GPU (nvmlDeviceGetNvLinkState / Version; `nvidia-smi nvlink --status`)."""

    index: int
    is_active: bool | Unavailable
    version: int | Unavailable
    speed_mbps: int | Unavailable  # per-link data rate (NVML_FI_DEV_NVLINK_SPEED_MBPS_L*)


@dataclass(frozen=True, slots=True)
class GpuLink:
    """How two GPUs reach each other (nvmlDeviceGetTopologyCommonAncestor; `nvidia-smi topo -m`)."""

    gpu_a: int  # GPU index
    gpu_b: int
    link: str  # one of the LINK_* names above
    nvlink_count: int | None  # bonded NVLinks when link is "nvlink", else None
