"""What multi-GPU jobs spend talking between GPUs of one node: bytes per step, link bandwidth, hidden share.

Formulas and sources: docs/recommend.md#communication. Every catalog instance is one node, so only intra-node
links (NVLink or PCIe) are modelled.
"""

from __future__ import annotations

from dataclasses import dataclass

from envcheck.advise.memory_model import model_states
from envcheck.advise.workload_spec import WorkloadSpec
from envcheck.facts.common import Unavailable
from envcheck.knowledge import GpuSpec

# Usable x16 bandwidth per direction by PCIe generation: 8 / 16 / 32 GT/s per lane with 128b/130b encoding
# (PCI-SIG PCIe 3.0-5.0 base specifications); 16 lanes x 8 GT/s x 128/130 / 8 bits = 15.75 GB/s for gen 3.
PCIE_X16_GB_S_PER_DIRECTION = {3: 15.75, 4: 31.5, 5: 63.0}
# Where a GPU's PCIe generation is not recorded, PCIe 3.0 is assumed: the slowest link of the shipped catalogs.
ASSUMED_PCIE_GENERATION = 3
# Megatron-style tensor parallelism all-reduces the activations twice per layer in the forward pass (after
# attention and after the MLP; Shoeybi et al. 2019, section 3) on the critical path: nothing is hidden.
TENSOR_PARALLEL_ALLREDUCES_PER_LAYER = 2
ACTIVATION_BYTES = 2  # 16-bit activations
DATA_PARALLEL = ("ddp", "zero1", "zero2", "zero3")


@dataclass(frozen=True, slots=True)
class Link:
    """The GPU-to-GPU link collectives run over: bandwidth per GPU and direction, and what it is."""

    gb_s_per_direction: float
    label: str  # "NVLink 900 GB/s", "PCIe 4.0 x16"


def gpu_link(gpu: GpuSpec) -> Link:
    """NVLink where every GPU of the node has it; otherwise the host PCIe link (peer traffic crosses it).

    NVIDIA quotes NVLink bandwidth for both directions together (H100 SXM: 18 links x 50 GB/s = 900 GB/s), and a
    ring all-reduce sends and receives at once, so half the quoted figure is the rate per direction.
    """
    nvlink = gpu.nvlink_gb_s
    if isinstance(nvlink, float) and nvlink > 0:
        return Link(nvlink / 2, f"NVLink {nvlink:g} GB/s")
    generation = gpu.pcie_gen
    if isinstance(generation, Unavailable) or generation not in PCIE_X16_GB_S_PER_DIRECTION:
        generation, label = ASSUMED_PCIE_GENERATION, f"PCIe {ASSUMED_PCIE_GENERATION}.0 x16 (assumed)"
    else:
        label = f"PCIe {generation}.0 x16"
    if not has_peer_to_peer(gpu):
        # each byte goes GPU -> host memory -> GPU (NCCL's SHM transport), crossing the host link twice
        return Link(PCIE_X16_GB_S_PER_DIRECTION[generation] / 2, f"{label} via host memory (GeForce: no P2P)")
    return Link(PCIE_X16_GB_S_PER_DIRECTION[generation], label)


def has_peer_to_peer(gpu: GpuSpec) -> bool:
    """GeForce cards do not do PCIe peer-to-peer: NVIDIA's driver reports no P2P between GeForce RTX 40-series
    GPUs (cudaDeviceCanAccessPeer is 0; NVIDIA developer forum, 2022-2023), and NCCL then stages every transfer
    through host memory. Datacenter and workstation cards keep P2P over PCIe."""
    return gpu.segment != "consumer"


def ring_factor(gpu_count: int) -> float:
    """Bytes each GPU sends per byte reduced, for a ring reduce-scatter or all-gather: (N-1)/N (nccl-tests
    PERFORMANCE.md: an all-reduce is both, 2(N-1)/N)."""
    return (gpu_count - 1) / gpu_count


def data_parallel_bytes_per_step(spec: WorkloadSpec, strategy: str, gpu_count: int) -> float:
    """Bytes each GPU sends per optimizer step.

    DDP / ZeRO-1 / ZeRO-2 all-reduce (or reduce-scatter, then all-gather the updated parameters) the gradients:
    2(N-1)/N x gradient bytes. ZeRO-3 / FSDP also all-gathers the parameters in forward and again in backward
    and reduce-scatters the gradients: (N-1)/N x (2 x parameter bytes + gradient bytes), 1.5x DDP for mixed
    precision (Rajbhandari et al. 2020, ZeRO, section 7). LoRA / QLoRA gradients are the adapters' only.
    """
    if strategy not in DATA_PARALLEL or gpu_count < 2:
        return 0.0
    states = model_states(spec)
    if strategy == "zero3":
        return ring_factor(gpu_count) * (2 * states.weights + states.gradients)
    return 2 * ring_factor(gpu_count) * states.gradients


def optimizer_steps(spec: WorkloadSpec, job_units: float, data_parallel: int) -> float:
    """Steps of the job: tokens / (batch x sequence length x GPUs); CNNs: samples / (batch x GPUs)."""
    per_step = spec.batch * data_parallel * (spec.seq_len if spec.shape is not None else 1)
    return job_units / per_step


def training_communication_s(
    spec: WorkloadSpec, strategy: str, gpu_count: int, gpu: GpuSpec, job_units: float
) -> float:
    """Communication time of the whole job that compute does not hide."""
    volume = data_parallel_bytes_per_step(spec, strategy, gpu_count)
    if volume == 0:
        return 0.0
    per_step_s = volume / (gpu_link(gpu).gb_s_per_direction * 1e9)
    return (1 - spec.overlap) * per_step_s * optimizer_steps(spec, job_units, gpu_count)


def tensor_parallel_bytes_per_token_step(spec: WorkloadSpec, gpu_count: int) -> float:
    """Bytes each GPU sends per decode step: 2 all-reduces per layer of the step's activations (one token for
    each of ``concurrency`` sequences, hidden-size wide, 16-bit), 2(N-1)/N each."""
    if gpu_count < 2 or spec.shape is None:
        return 0.0
    activations = spec.concurrency * spec.shape.hidden * ACTIVATION_BYTES
    allreduces = TENSOR_PARALLEL_ALLREDUCES_PER_LAYER * spec.shape.layers
    return allreduces * 2 * ring_factor(gpu_count) * activations
