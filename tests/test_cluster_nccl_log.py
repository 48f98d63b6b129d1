"""The parser of NCCL's NCCL_DEBUG=INFO lines, on lines in their real format: each quoted from a public log (the
issue it was pasted in is named beside it), with only the host names of the lines shortened."""

from __future__ import annotations

from pathlib import Path

import pytest

from envcheck.cluster.group import prepare_nccl, read_nccl_transport
from envcheck.cluster.nccl_log import MAX_LINES, describe_transport, parse_nccl_lines, transport_kinds

# NVIDIA/nccl#226 (NCCL 2.4, AWS): IB absent, sockets on ens3
SOCKET_FALLBACK = """\
ip-172-31-12-21:45361:45361 [0] NCCL INFO NET/IB : No device found.
ip-172-31-12-21:45361:45361 [0] NCCL INFO NET/Socket : Using [0]ens3:172.31.12.210<0>
"""
# Mellanox/nv_peer_memory#56 (NCCL 2.5.6): one HCA, OOB on ib0
IB_ONE_HCA = "master_node:24570:24907 [0] NCCL INFO NET/IB : Using [0]mlx5_0:1/IB ; OOB ib0:192.168.11.1<0>\n"
# NVIDIA/nccl#988 (NCCL 2.12.9 with the SHARP plugin): eight HCAs, the network named after the plugin
IB_SHARP = (
    "ad5b8ae33076:28331:28331 [0] NCCL INFO NET/IB : Using [0]mlx5_0:1/IB/SHARP [1]mlx5_1:1/IB/SHARP"
    " [2]mlx5_2:1/IB/SHARP ; OOB eth0:10.0.1.2<0>\n"
    "ad5b8ae33076:28331:28331 [0] NCCL INFO Using network IBext\n"
)
# NVIDIA/nccl#1052 (NCCL 2.18.5): RoCE with relaxed ordering
ROCE = "node2:14159:14168 [0] NCCL INFO NET/IB : Using [0]mlx5_4:1/RoCE [RO]; OOB enp24s0np0:10.10.10.1<0>\n"
# NVIDIA/nccl#952 (NCCL 2.18, 2 nodes x 8 GPUs): P2P inside the node, sockets between nodes
CHANNELS = """\
cluster:919:1150 [0] NCCL INFO Channel 01/0 : 8[0] -> 15[7] via P2P/IPC/read
cluster:919:1150 [0] NCCL INFO Channel 02/0 : 8[0] -> 15[7] via P2P/IPC/read
cluster:926:1151 [7] NCCL INFO Channel 03/0 : 15[7] -> 6[6] [send] via NET/Socket/3
cluster:919:1150 [0] NCCL INFO Connected all rings
"""
# NVIDIA/nccl#1609 (H800): SHM between two GPUs; NVIDIA/nccl#1538 (NCCL 2.22.3): P2P over cuMem
SHM = "dev01:533:1765 [2] NCCL INFO Channel 07 : 2[6] -> 3[7] via SHM/direct/direct\n"
CUMEM = "worker-0:5670:5810 [7] NCCL INFO Channel 02/0 : 7[7] -> 0[0] via P2P/CUMEM\n"
# NVIDIA/nccl#429 (older NCCL): GPUDirect RDMA over IB, bus ids in the brackets; NVIDIA/nccl#367 (NCCL 2.4): Ring
GDR = "machine-1:16194:18586 [6] NCCL INFO Channel 03 : 7[b2000] -> 14[b1000] [receive] via NET/IB/0/GDRDMA\n"
OLD_RING = "c6ad99331184:117291:117389 [0] NCCL INFO Ring 00 : 2[0] -> 3[0] via direct shared memory\n"
# NVIDIA/nccl#1358: NCCL 2.20's P2P within one process
DIRECT = "LIUCC13-AC-01:106:121 [1] NCCL INFO Channel 00/0 : 1[1] -> 0[0] via P2P/direct pointer\n"


def test_sockets_after_ib_found_no_device() -> None:
    transport = parse_nccl_lines(SOCKET_FALLBACK.splitlines())
    assert transport is not None
    assert transport.is_ib_missing
    assert transport.network == "Socket"
    assert transport.interfaces == ("ens3:172.31.12.210",)
    assert describe_transport(transport) == "network Socket (ens3:172.31.12.210); channels not logged"


def test_ib_devices_are_listed_and_using_network_names_the_choice() -> None:
    one = parse_nccl_lines([IB_ONE_HCA])
    assert one is not None and one.network == "IB" and one.interfaces == ("mlx5_0:1/IB",)
    sharp = parse_nccl_lines(IB_SHARP.splitlines())
    assert sharp is not None
    assert sharp.network == "IBext"  # "Using network IBext" settles what NET/IB's list started
    assert sharp.interfaces == ("mlx5_0:1/IB/SHARP", "mlx5_1:1/IB/SHARP", "mlx5_2:1/IB/SHARP")
    roce = parse_nccl_lines([ROCE])
    assert roce is not None and roce.interfaces == ("mlx5_4:1/RoCE",)


def test_channels_keep_one_line_per_path_and_name_their_kinds() -> None:
    transport = parse_nccl_lines([*CHANNELS.splitlines(), SHM, CUMEM, GDR, OLD_RING, DIRECT])
    assert transport is not None
    assert transport.channels == (
        "P2P/IPC/read", "NET/Socket/3", "SHM/direct/direct", "P2P/CUMEM", "NET/IB/0/GDRDMA",
        "direct shared memory", "P2P/direct pointer",
    )  # fmt: skip
    assert transport_kinds(transport) == ("P2P", "NET/Socket", "SHM", "NET/IB")
    assert "Connected all rings" not in "\n".join(transport.lines)
    assert transport.lines[0] == CHANNELS.splitlines()[0]


def test_a_log_without_transport_lines_is_none_and_lines_are_capped() -> None:
    assert parse_nccl_lines(["cluster:919:1150 [0] NCCL INFO Connected all rings", "garbage", ""]) is None
    many = [f"h:1:2 [0] NCCL INFO Channel 00/0 : 0[0] -> 1[1] via P2P/IPC/path{n}" for n in range(100)]
    transport = parse_nccl_lines(many)
    assert transport is not None and len(transport.lines) == MAX_LINES and len(transport.channels) == 100


def test_nccl_runs_log_into_a_file_per_rank_and_switch_the_flight_recorder_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    environ: dict[str, str] = {}
    files = prepare_nccl(environ, 3, str(tmp_path))
    assert files.debug_file == str(tmp_path / "envcheck-nccl-debug-rank3.log")
    assert environ["NCCL_DEBUG"] == "INFO" and environ["NCCL_DEBUG_FILE"] == files.debug_file
    assert environ["NCCL_DEBUG_SUBSYS"] == "INIT,NET"
    assert environ["TORCH_NCCL_DUMP_ON_TIMEOUT"] == "1" and environ["TORCH_NCCL_TRACE_BUFFER_SIZE"] == "2000"
    assert (
        files.trace_prefix == environ["TORCH_NCCL_DEBUG_INFO_TEMP_FILE"] == str(tmp_path / "envcheck_nccl_trace_rank_")
    )
    warning = "host:1:2 [0] misc/socket.cc:441 NCCL WARN socketFinalizeAccept: wrong type 4 != 3"
    Path(files.debug_file).write_text(SOCKET_FALLBACK + warning + "\n")
    transport = read_nccl_transport(files)
    assert transport is not None and transport.network == "Socket"
    assert capsys.readouterr().err == warning + "\n"  # NCCL's warnings still reach the rank's stderr


def test_the_users_own_nccl_debug_settings_are_left_alone(tmp_path: Path) -> None:
    environ = {"NCCL_DEBUG": "WARN", "TORCH_NCCL_DEBUG_INFO_TEMP_FILE": "/scratch/fr_"}
    files = prepare_nccl(environ, 0, str(tmp_path))
    assert files.debug_file is None and environ["NCCL_DEBUG"] == "WARN" and "NCCL_DEBUG_FILE" not in environ
    assert files.trace_prefix == "/scratch/fr_"
    assert read_nccl_transport(files) is None
