"""torch's, NVML's and NumPy's own words in a pasted report, read into RuntimeMessages (issue 11 item 2): each
parser on the lines in their real format (wrapped as torch prints them, or flattened by the paste), and the
collect_env import carrying them into the snapshot and its JSON."""

from __future__ import annotations

from envcheck.facts.common import Unavailable
from envcheck.facts.framework import FrameworkFacts
from envcheck.facts.gpu import GpuFacts
from envcheck.facts.messages import NO_MESSAGES
from envcheck.importers.collect_env import snapshot_from_collect_env
from envcheck.importers.runtime_messages import MAX_SOURCE_CHARS, decode_cuda_version, read_messages, source_line
from envcheck.snapshot import from_json, to_json

# torch 1.12 (c10/cuda/CUDAFunctions.cpp via torch/cuda/__init__.py), as printed above collect_env's block
DRIVER_TOO_OLD = (
    "/root/anaconda3/envs/foo/lib/python3.8/site-packages/torch/cuda/__init__.py:83: UserWarning: CUDA "
    "initialization: The NVIDIA driver on your system is too old (found version 11040). Please update your GPU "
    "driver by downloading and installing a new version from the URL: http://www.nvidia.com/Download/index.aspx "
    "Alternatively, go to: https://pytorch.org to install a PyTorch version that has been compiled with your "
    "version of the CUDA driver. (Triggered internally at  ../c10/cuda/CUDAFunctions.cpp:109.)\n"
    "  return torch._C._cuda_getDeviceCount() > 0\n"
)
NO_DRIVER = (
    "/venv/lib/python3.6/site-packages/torch/cuda/__init__.py:52: UserWarning: CUDA initialization: Found no NVIDIA "
    "driver on your system. Please check that you have an NVIDIA GPU and installed a driver from "
    "http://www.nvidia.com/Download/index.aspx (Triggered internally at  /pytorch/c10/cuda/CUDAFunctions.cpp:100.)\n"
)
# torch 2.6 (_check_capability): the warning starts on its own line under "UserWarning: "
UNSUPPORTED_ARCH = (
    "/home/mm/envs/py312/lib/python3.12/site-packages/torch/cuda/__init__.py:235: UserWarning: \n"
    "NVIDIA GeForce RTX 5090 D with CUDA capability sm_120 is not compatible with the current PyTorch installation.\n"
    "The current PyTorch install supports CUDA capabilities sm_50 sm_60 sm_70 sm_75 sm_80 sm_86 sm_90.\n"
    "If you want to use the NVIDIA GeForce RTX 5090 D GPU with PyTorch, please check the instructions at "
    "https://pytorch.org/get-started/locally/\n\n  warnings.warn(\n"
)
GPU_TOO_OLD = (
    "/usr/local/lib/python3.12/dist-packages/torch/cuda/__init__.py:262: UserWarning: \n"
    "    Found GPU0 NVIDIA TITAN V which is of cuda capability 7.0.\n"
    "    PyTorch no longer supports this GPU because it is too old.\n"
    "    The minimum cuda capability supported by this library is 7.5.\n    \n  warnings.warn(\n"
)
# torch 2.8-2.10 (_check_capability): one minimum and one maximum instead of a list
MIN_MAX = (
    "/opt/venv/lib/python3.12/site-packages/torch/cuda/__init__.py:283: UserWarning: \n"
    "    Found GPU0 NVIDIA GeForce GTX 1080 Ti which is of cuda capability 6.1.\n"
    "    Minimum and Maximum cuda capability supported by this version of PyTorch is\n"
    "    (7.0) - (12.0)\n    \n  warnings.warn(\n"
)
# torch 2.11+ (_warn_unsupported_code): the CCs the wheel was built for, each with the hardware it runs on
CC_LIST = (
    "/usr/local/lib/python3.12/dist-packages/torch/cuda/__init__.py:484: UserWarning: Found GPU0 Tesla V100-PCIE-32GB "
    "which is of compute capability (CC) 7.0.\n"
    "The following list shows the CCs this version of PyTorch was built for and the hardware CCs it supports:\n"
    "- 7.5 which supports hardware CC >=7.5,<8.0\n"
    "- 8.0 which supports hardware CC >=8.0,<9.0 except {8.7}\n"
    "- 8.6 which supports hardware CC >=8.6,<9.0 except {8.7}\n"
    "- 9.0 which supports hardware CC >=9.0,<10.0\n"
    "- 10.0 which supports hardware CC >=10.0,<11.0 except {10.1}\n"
    "- 12.0 which supports hardware CC >=12.0,<13.0\n"
    "Please follow the instructions at https://pytorch.org/get-started/locally/ to install a PyTorch release that "
    "supports one of these CUDA versions: 12.6\n"
    "  _warn_unsupported_code(d, device_cc, code_ccs)\n"
)
NUMPY_2 = (
    "A module that was compiled using NumPy 1.x cannot be run in\n"
    "NumPy 2.0.1 as it may crash. To support both 1.x and 2.x\n"
    "versions of NumPy, modules must be compiled with NumPy 2.0.\n"
)
NUMPY_INIT = (
    "/venv/lib/python3.10/site-packages/torch/nn/modules/transformer.py:20: UserWarning: Failed to initialize "
    "NumPy: _ARRAY_API not found (Triggered internally at ../torch/csrc/utils/tensor_numpy.cpp:84.)\n"
)
NVML = (
    "GPU models and configuration: Failed to initialize NVML: Driver/library version mismatch\n"
    "NVML library version: 550.54\n"
)
CUDNN = (
    "RuntimeError: cuDNN version incompatibility: PyTorch was compiled  against (9, 20, 0) but found runtime "
    "version (9, 13, 1). PyTorch already comes bundled with cuDNN.\n"
)


def test_the_driver_version_number_is_decoded_as_cuda_encodes_it() -> None:
    assert [decode_cuda_version(n) for n in (9010, 10020, 11040, 12020, 12080)] == [
        "9.1",
        "10.2",
        "11.4",
        "12.2",
        "12.8",
    ]


def test_driver_too_old_gives_the_cuda_version_the_driver_serves_and_its_line() -> None:
    message = read_messages(DRIVER_TOO_OLD).driver_too_old
    assert message is not None and message.driver_cuda_version == "11.4"
    assert message.source_line == "The NVIDIA driver on your system is too old (found version 11040)."
    assert read_messages(DRIVER_TOO_OLD).is_cuda_init_failure


def test_no_driver_is_read_even_when_the_paste_lost_its_first_character() -> None:
    messages = read_messages(NO_DRIVER.lstrip("/"))
    assert messages.no_driver is not None and messages.no_driver.source_line.startswith("Found no NVIDIA driver")
    assert messages.driver_too_old is None and messages.is_cuda_init_failure


def test_the_capability_warning_gives_the_gpu_its_capability_and_the_wheel_its_archs() -> None:
    (message,) = read_messages(UNSUPPORTED_ARCH).unsupported_archs
    assert message.gpu_name == "NVIDIA GeForce RTX 5090 D" and message.compute_capability == "12.0"
    assert message.arch_list == ("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90")
    assert message.source_line.startswith("NVIDIA GeForce RTX 5090 D with CUDA capability sm_120 is not compatible")


def test_the_capability_warning_flattened_onto_one_line_and_of_older_torch() -> None:
    text = (
        "/x/torch/cuda/__init__.py:104: UserWarning: GeForce RTX 3090 with CUDA capability sm_86 is not compatible "
        "with the current PyTorch installation. The current PyTorch install supports CUDA capabilities sm_37 sm_50 "
        "sm_60 sm_70. If you want to use the GeForce RTX 3090 GPU with PyTorch, please check the instructions"
    )
    (message,) = read_messages(text + "\n" + text).unsupported_archs  # one GPU warned twice is one message
    assert (message.gpu_name, message.compute_capability) == ("GeForce RTX 3090", "8.6")
    assert message.arch_list == ("sm_37", "sm_50", "sm_60", "sm_70")


def test_gpu_too_old_gives_the_capability_and_the_minimum() -> None:
    (message,) = read_messages(GPU_TOO_OLD).gpus_too_old
    assert (message.gpu_index, message.gpu_name, message.compute_capability) == (0, "NVIDIA TITAN V", "7.0")
    assert message.minimum_capability == "7.5"
    assert "PyTorch no longer supports this GPU because it is too old" in message.source_line


def test_the_minimum_and_maximum_of_torch_2_8_flag_only_a_gpu_below_the_minimum() -> None:
    (message,) = read_messages(MIN_MAX).gpus_too_old
    assert (message.gpu_index, message.gpu_name, message.compute_capability) == (0, "NVIDIA GeForce GTX 1080 Ti", "6.1")
    assert message.minimum_capability == "7.0"
    above = MIN_MAX.replace("GeForce GTX 1080 Ti", "GB10").replace("capability 6.1", "capability 12.1")
    assert read_messages(above) == NO_MESSAGES  # 12.1 runs the 12.0 code: torch warned for it all the same


def test_the_list_of_built_ccs_of_torch_2_11_flags_a_gpu_no_range_holds() -> None:
    (message,) = read_messages(CC_LIST).unsupported_archs
    assert (message.gpu_name, message.compute_capability) == ("Tesla V100-PCIE-32GB", "7.0")
    assert message.arch_list == ("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120")
    assert message.source_line.startswith("Found GPU0 Tesla V100-PCIE-32GB which is of compute capability (CC) 7.0.")
    flattened = " ".join(CC_LIST.lstrip("/").split("\n"))
    (one_line,) = read_messages(flattened).unsupported_archs
    assert (one_line.gpu_name, one_line.compute_capability, one_line.arch_list) == (
        message.gpu_name,
        message.compute_capability,
        message.arch_list,
    )


def test_the_list_of_built_ccs_does_not_flag_a_gpu_inside_a_range_even_one_it_excepts() -> None:
    for name, capability in (("NVIDIA GB10", "12.1"), ("Orin", "8.7"), ("NVIDIA GeForce RTX 3060", "8.6")):
        text = CC_LIST.replace("Tesla V100-PCIE-32GB", name).replace("(CC) 7.0", f"(CC) {capability}")
        assert read_messages(text).unsupported_archs == (), name


def test_numpy_failures_in_their_three_wordings() -> None:
    numpy_2 = read_messages(NUMPY_2).numpy_failure
    assert numpy_2 is not None and numpy_2.numpy_version == "2.0.1"
    init = read_messages(NUMPY_INIT).numpy_failure
    assert init is not None and init.source_line == "Failed to initialize NumPy: _ARRAY_API not found"
    unavailable = read_messages("RuntimeError: Numpy is not available\n").numpy_failure
    assert unavailable is not None and unavailable.numpy_version is None


def test_nvml_mismatch_with_the_library_version_nvidia_smi_prints() -> None:
    message = read_messages(NVML).nvml_mismatch
    assert message is not None and message.library_version == "550.54"


def test_cudnn_mismatch_as_tuples_and_as_the_integers_of_older_torch() -> None:
    message = read_messages(CUDNN).cudnn_mismatch
    assert message is not None and (message.compiled_version, message.runtime_version) == ("9.20.0", "9.13.1")
    old = read_messages("cuDNN version incompatibility: PyTorch was compiled against 7102 but linked against 7005")
    assert old.cudnn_mismatch is not None
    assert (old.cudnn_mismatch.compiled_version, old.cudnn_mismatch.runtime_version) == ("7.1.2", "7.0.5")


def test_healthy_text_has_no_messages_and_a_cited_line_is_one_escaped_bounded_line() -> None:
    assert read_messages("PyTorch version: 2.3.1+cu121\nIs CUDA available: True\n") == NO_MESSAGES
    assert source_line("a\x1b[2J  b\n c") == "a\\x1b[2J b c"
    assert len(source_line("x" * 1000)) == MAX_SOURCE_CHARS


def test_the_import_carries_the_messages_into_the_snapshot_and_its_json() -> None:
    text = UNSUPPORTED_ARCH + (
        "PyTorch version: 2.6.0+cu126\nIs debug build: False\nCUDA used to build PyTorch: 12.6\n"
        "Python version: 3.12.9 (64-bit runtime)\nIs CUDA available: True\n"
        "GPU models and configuration: GPU 0: NVIDIA GeForce RTX 5090 D\nNvidia driver version: 570.124.04\n"
    )
    snapshot = snapshot_from_collect_env(text.encode(), "sm120.txt")
    assert snapshot.messages.unsupported_archs[0].compute_capability == "12.0"
    assert isinstance(snapshot.gpu, GpuFacts) and snapshot.gpu.gpus[0].compute_capability == "12.0"
    assert from_json(to_json(snapshot)) == snapshot


def test_a_cut_off_paste_gets_cuda_availability_from_what_implies_it() -> None:
    head = (
        "PyTorch version: {}\nIs debug build: False\nCUDA used to build PyTorch: {}\nROCM used to build PyTorch: N/A\n"
    )
    cpu = snapshot_from_collect_env(head.format("1.7.1+cpu", "Could not collect").encode(), "cpu.txt").framework
    assert isinstance(cpu, FrameworkFacts) and cpu.torch is not None and cpu.torch.is_cuda_available is False
    assert isinstance(cpu.python_version, Unavailable)  # the paste stops before `Python version`: said, not guessed
    warned = snapshot_from_collect_env((DRIVER_TOO_OLD + head.format("1.12.1+cu102", "10.2")).encode(), "old.txt")
    assert isinstance(warned.framework, FrameworkFacts) and warned.framework.torch is not None
    assert warned.framework.torch.is_cuda_available is False
    silent = snapshot_from_collect_env(head.format("1.12.1+cu102", "10.2").encode(), "cut.txt").framework
    assert isinstance(silent, Unavailable) and "Is CUDA available" in silent.reason


def test_a_cut_arch_list_keeps_only_whole_arch_names() -> None:
    text = (
        "UserWarning: NVIDIA GeForce RTX 3090 with CUDA capability sm_86 is not compatible with the current PyTorch "
        "installation. The current PyTorch install supports CUDA capabilities sm_37 sm_50 sm_6f sm_6 sm_"
    )
    (message,) = read_messages(text).unsupported_archs
    assert message.compute_capability == "8.6"
    assert message.arch_list == ("sm_37", "sm_50")
