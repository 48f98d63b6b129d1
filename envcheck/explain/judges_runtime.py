"""Judges of the install, library, process and network signatures: compiled extensions and companion packages
against torch, shared memory and file limits, the C library, multi-process and multi-node starts."""

from __future__ import annotations

from packaging.version import Version

from envcheck.explain import decode
from envcheck.explain.context import Context
from envcheck.explain.judges import (
    judge,
    shm_of,
    system_value,
    torch_of,
    version_of,
)
from envcheck.explain.model import Verdict
from envcheck.facts.common import Unavailable
from envcheck.units import format_bytes


@judge("extension.undefined_symbol")
def _undefined_symbol(context: Context) -> Verdict:
    library = decode.library_with_missing_symbol(context.match.context)
    decoded = (f"the library missing the symbol: {library}",) if library else ()
    torch = torch_of(context)
    if torch is None:
        return Verdict(decoded=decoded)
    package = _package_of(library) if library else None
    cuda = f"CUDA {torch.cuda_version}" if torch.cuda_version else "CPU"
    fix = (
        f"Install the {package or 'extension'} build made for torch {torch.version} ({cuda}), or rebuild it against "
        f"this torch: pip install --no-build-isolation --no-cache-dir --force-reinstall {package or '<package>'}"
    )
    return Verdict(because=(f"the installed torch is {torch.version} ({cuda})",), fix=fix, decoded=decoded)


def _package_of(library: str) -> str | None:
    """The distribution a library file belongs to: the folder under site-packages (torch_scatter, flash_attn)."""
    parts = library.replace("\\", "/").split("/")
    for marker in ("site-packages", "dist-packages"):
        if marker in parts and parts.index(marker) + 1 < len(parts):
            top = parts[parts.index(marker) + 1]
            return top.split(".")[0].removesuffix("_2_cuda").replace("_", "-") if top else None
    name = parts[-1].split(".")[0].lstrip("_")
    return name.removesuffix("_2_cuda").replace("_", "-") or None


@judge("install.torchvision_operator_missing")
def _torchvision_operator(context: Context) -> Verdict:
    torch, vision = context.package("torch"), context.package("torchvision")
    if torch is None or vision is None:
        return Verdict()
    decoded = (f"installed: torch {torch}, torchvision {vision}",)
    problem = context.problem("install.companion_versions")
    torch_tag, vision_tag = _local_tag(torch), _local_tag(vision)
    # the companion check also fails a CPU/CUDA variant pair of matching releases: the tags name that cause
    if torch_tag and vision_tag and torch_tag != vision_tag:
        because = (f"torch is a {torch_tag} build and torchvision a {vision_tag} build",)
        if problem is None:
            return Verdict("variant_mismatch", because, None, decoded, ("python.packages",))
        return Verdict("variant_mismatch", (*because, problem.title), problem.fix, decoded, problem.evidence)
    if problem is not None:
        return Verdict("version_mismatch", (problem.title,), problem.fix, decoded, problem.evidence)
    return Verdict(decoded=decoded)


def _local_tag(version: str) -> str | None:
    """ "2.3.1+cu121" -> "cu121"; None without a local tag."""
    return version.split("+", 1)[1] if "+" in version else None


@judge("install.numpy_abi")
def _numpy(context: Context) -> Verdict:
    numpy, torch = context.package("numpy"), context.package("torch")
    if numpy is None or torch is None:
        return Verdict()
    decoded = (f"installed: numpy {numpy}, torch {torch}",)
    numpy_v, torch_v = version_of(numpy), version_of(torch)
    if numpy_v is None or torch_v is None or numpy_v.major < 2:
        return Verdict(decoded=decoded)
    problem = context.problem("install.numpy_abi")
    if problem is not None:
        return Verdict("old_torch", (problem.title,), problem.fix, decoded, problem.evidence)
    because = (f"torch {torch} works with NumPy 2, so another compiled package in the traceback was built for 1.x",)
    return Verdict("other_extension", because, None, decoded, ("python.packages",))


@judge("nccl.watchdog_timeout")
def _watchdog(context: Context) -> Verdict:
    found = decode.watchdog(context.match.context)
    if found is None:
        return Verdict()
    sequence, operation, timeout_ms = found
    decoded = (f"collective #{sequence} ({operation}) waited {timeout_ms / 1000:g} s, the timeout",)
    return Verdict(decoded=decoded)


@judge("nccl.shm_exhausted")
def _nccl_shm(context: Context) -> Verdict:
    segment = decode.shm_segment(context.match.context)
    decoded = (f"NCCL asked for {format_bytes(segment[1])} at {segment[0]}",) if segment else ()
    total, free = shm_of(context)
    problem = context.problem("system.shm_size")
    if problem is not None:
        return Verdict("shm_too_small", (problem.title,), problem.fix, decoded, problem.evidence)
    if segment and free is not None and free < segment[1]:
        because = (f"/dev/shm has {format_bytes(free)} free, less than the segment",)
        return Verdict("shm_too_small", because, None, decoded, ("storage.shm_free_bytes",))
    if total is not None:
        because = (
            f"/dev/shm here is {format_bytes(total)} ({format_bytes(free or 0)} free): "
            "if the job ran here, its size is not the cause",
        )
        return Verdict(because=because, decoded=decoded, evidence=("storage.shm_total_bytes",))
    return Verdict(decoded=decoded)


@judge("dataloader.bus_error")
def _bus_error(context: Context) -> Verdict:
    problem = context.problem("system.shm_size")
    if problem is not None:
        return Verdict("shm_too_small", (problem.title,), problem.fix, (), problem.evidence)
    total, _ = shm_of(context)
    if total is not None:
        because = (f"/dev/shm here is {format_bytes(total)}, past the usual need: if the job ran here, the workers' "
                   "batches outgrew it",)  # fmt: skip
        return Verdict("too_many_workers", because, evidence=("storage.shm_total_bytes",))
    return Verdict()


@judge("windows.dll_load_failed")
def _dll(context: Context) -> Verdict:
    dll = decode.dll_named(context.match.context)
    decoded = (f"the DLL: {dll}",) if dll else ()
    torch = torch_of(context)
    if torch is not None and torch.version.startswith("2.4."):
        return Verdict(
            "msvc_runtime_missing", (f"torch {torch.version} is the 2.4 release with that regression",), None, decoded
        )
    return Verdict("msvc_runtime_missing", decoded=decoded)


@judge("cuda.nvjitlink_symbol")
def _nvjitlink(context: Context) -> Verdict:
    needed = decode.nvjitlink_needed(context.match.context)
    decoded = (f"{needed[0]} of nvJitLink {needed[1]} is needed",) if needed else ()
    problem = context.problem("cuda.ld_library_path")
    if problem is not None:
        return Verdict("ld_library_path", (problem.title,), problem.fix, decoded, problem.evidence)
    installed = context.package("nvidia-nvjitlink-cu12")
    if needed and installed and (version_of(installed) or Version("0")) < Version(needed[1]):
        because = (f"nvidia-nvjitlink-cu12 {installed} is older than {needed[1]}",)
        fix = f"pip install -U 'nvidia-nvjitlink-cu12>={needed[1]}'"
        return Verdict("nvjitlink_wheel", because, fix, decoded, ("python.packages",))
    path = context.variable("LD_LIBRARY_PATH")
    if path and "cuda" in path.lower():
        return Verdict("ld_library_path", (f"LD_LIBRARY_PATH={path}",), None, decoded, ("environment.variables",))
    return Verdict(decoded=decoded)


@judge("cudnn.version_mismatch")
def _cudnn(context: Context) -> Verdict:
    message = context.messages.cudnn_mismatch
    decoded = (
        (f"compiled against cuDNN {message.compiled_version}, loaded {message.runtime_version}",) if message else ()
    )
    problem = context.problem("cuda.ld_library_path")
    if problem is not None:
        return Verdict("ld_library_path", (problem.title,), problem.fix, decoded, problem.evidence)
    path = context.variable("LD_LIBRARY_PATH")
    if path and any(word in path.lower() for word in ("cudnn", "cuda", "conda")):
        return Verdict("ld_library_path", (f"LD_LIBRARY_PATH={path}",), None, decoded, ("environment.variables",))
    return Verdict(decoded=decoded)


@judge("system.glibc_too_old")
def _glibc(context: Context) -> Verdict:
    needed = decode.glibc_needed(context.match.context)
    if needed is None:
        return Verdict("old_distribution")
    decoded = (f"glibc {needed[0]} is needed" + (f" by {needed[1]}" if needed[1] else ""),)
    libc = system_value(context, "libc")
    distribution = system_value(context, "distribution")
    if isinstance(libc, str) and libc.startswith("glibc "):
        have = version_of(libc.removeprefix("glibc "))
        if have is not None and have < Version(needed[0]):
            because = (f"this system has {libc}" + (f" ({distribution})" if distribution else ""),)
            return Verdict("old_distribution", because, None, decoded, ("system.libc",))
    return Verdict("old_distribution", decoded=decoded)


@judge("bitsandbytes.cuda_setup")
def _bitsandbytes(context: Context) -> Verdict:
    installed = context.package("bitsandbytes")
    decoded = (f"bitsandbytes {installed} is installed",) if installed else ()
    override = context.variable("BNB_CUDA_VERSION")
    if override:
        because = (f"BNB_CUDA_VERSION={override} makes bitsandbytes look for that CUDA's libcudart",)
        return Verdict("cuda_library_not_found", because, None, decoded, ("environment.variables",))
    return Verdict(decoded=decoded)


@judge("multiprocessing.cuda_fork")
def _fork(context: Context) -> Verdict:
    os_name = system_value(context, "os_name")
    because = ("Linux starts multiprocessing workers by fork unless told otherwise",) if os_name == "Linux" else ()
    return Verdict("fork_after_cuda", because)


@judge("multiprocessing.fd_sharing")
def _fd_sharing(context: Context) -> Verdict:
    problem = context.problem("system.open_files")
    if problem is not None:
        return Verdict("open_files_limit", (problem.title,), problem.fix, (), problem.evidence)
    limit = system_value(context, "open_files_limit")
    if isinstance(limit, int):
        because = (f"the open-file limit here is {limit}: the sharing strategy is the lever left",)
        return Verdict("sharing_strategy", because, evidence=("system.open_files_limit",))
    return Verdict()


@judge("lightning.ddp_member_hang")
def _lightning(context: Context) -> Verdict:
    members = decode.lightning_members(context.match.context)
    if members is None:
        return Verdict("slurm_tasks_mismatch")
    world, seen = members
    decoded = (f"the Trainer expects {world} processes; the text shows member(s) {', '.join(map(str, sorted(seen)))}",)
    tasks = context.variable("SLURM_NTASKS")
    if tasks and tasks.isdigit() and int(tasks) != world:
        because = (f"SLURM_NTASKS={tasks}, but the Trainer's world size is {world}",)
        return Verdict("slurm_tasks_mismatch", because, None, decoded, ("environment.variables",))
    return Verdict("slurm_tasks_mismatch", decoded=decoded)


@judge("nccl.remote_peer")
def _remote_peer(context: Context) -> Verdict:
    interface = context.variable("NCCL_SOCKET_IFNAME")
    if context.is_collected and not isinstance(context.snapshot.environment, Unavailable) and interface is None:
        return Verdict(because=("NCCL_SOCKET_IFNAME is not set: NCCL picks the interface itself",))
    return Verdict()
