"""The setup plan against a table of targets whose expected wheel was worked out by hand from profiles/compat.

Each row's comment gives the reasoning (Python range, wheel arch list, driver floor) so a reader can re-derive it.
"""

from __future__ import annotations

import pytest

from envcheck.advise.setup_plan import plan_setup
from envcheck.advise.target import hypothetical_target
from envcheck.knowledge import load_knowledge
from envcheck.loaders import InputError

KNOWLEDGE = load_knowledge()
L4, A100, H100, B200 = "NVIDIA L4", "NVIDIA A100-SXM4-80GB", "NVIDIA H100 80GB HBM3", "NVIDIA B200"
K80, GTX1080, V100, RTX3090, RTX4090, RTX5090 = (
    "Tesla K80",
    "GeForce GTX 1080 Ti",
    "Tesla V100-SXM2-16GB",
    "NVIDIA GeForce RTX 3090",
    "NVIDIA GeForce RTX 4090",
    "NVIDIA GeForce RTX 5090",
)

# (id, gpus, driver, python, os, arch, pin) -> (torch, variant) or None when nothing fits
TARGETS = [
    # 2.15 needs Python >= 3.11; 2.14.1 cu13x need driver 580; cu126 has sm_86, which runs on 8.9
    ("l4-535-py310", (L4,), "535.104.05", "3.10", "linux", "x86_64", None, ("2.14.1", "cu126")),
    # 2.15.0 has only cu130/cu132 (driver 580); 2.14.1 cu126 needs only the 12.x floor 525.60.13
    ("l4-550-py312", (L4,), "550.54.15", "3.12", "linux", "x86_64", None, ("2.14.1", "cu126")),
    # driver 580 meets the 13.x minor-compat floor: the newest release's newest CUDA
    ("h100-580-py312", (H100,), "580.65.06", "3.12", "linux", "x86_64", None, ("2.15.0", "cu132")),
    # Kepler: sm_37 only in cu118 builds, the last is 2.7.1; Python 3.9 is in 2.7.1's 3.9-3.13
    ("k80-470-py39", (K80,), "470.82.01", "3.9", "linux", "x86_64", None, ("2.7.1", "cu118")),
    # Kepler on Python 3.14: releases with 3.14 (2.9+) have no cu118, so no sm_37 kernels
    ("k80-470-py314", (K80,), "470.82.01", "3.14", "linux", "x86_64", None, None),
    # Blackwell consumer (12.0), driver 570: cu13x need 580; 2.14 cu126 lacks sm_120; 2.13 cu129 has it
    ("rtx5090-570-py312", (RTX5090,), "570.86.16", "3.12", "linux", "x86_64", None, ("2.13.0", "cu129")),
    # Blackwell datacenter (10.0): same path, sm_100 in 2.13 cu129
    ("b200-570-py311", (B200,), "570.124.06", "3.11", "linux", "x86_64", None, ("2.13.0", "cu129")),
    # Volta, driver just above the 12.x floor: 2.14.1 cu126 still has sm_70
    ("v100-525-py311", (V100,), "525.85.12", "3.11", "linux", "x86_64", None, ("2.14.1", "cu126")),
    # Volta, driver below 525: only the 11.x floor 450.80.02 is met; cu118's last release is 2.7.1
    ("v100-450-py310", (V100,), "450.80.02", "3.10", "linux", "x86_64", None, ("2.7.1", "cu118")),
    # Pascal, driver 418: cu102 needs 440.33 (no minor compat before 11); cu101 (418.39) last in 1.8.1
    ("gtx1080-418-py39", (GTX1080,), "418.39", "3.9", "linux", "x86_64", None, ("1.8.1", "cu101")),
    # Pascal, new driver: cu13x start at sm_75; 2.14.1 cu126 has sm_60, which runs on 6.1
    ("gtx1080-580-py312", (GTX1080,), "580.65.06", "3.12", "linux", "x86_64", None, ("2.14.1", "cu126")),
    # Ampere, Python 3.13, driver 535: 2.15 cu13x need 580; 2.14.1 cu126
    ("a100-535-py313", (A100,), "535.104.05", "3.13", "linux", "x86_64", None, ("2.14.1", "cu126")),
    # pinned 2.4: 2.4.1 cu124 (12.x floor 525.60.13 met), sm_80
    ("a100-535-pin24", (A100,), "535.104.05", "3.11", "linux", "x86_64", "2.4", ("2.4.1", "cu124")),
    # Ampere, driver 418 on Python 3.12 (torch >= 2.2): every variant needs >= 450.80.02
    ("a100-418-py312", (A100,), "418.39", "3.12", "linux", "x86_64", None, None),
    # Grace Hopper (aarch64): 2.15 aarch64 wheels are cu13x only (580); 2.14.1 aarch64 cu126 has sm_90
    ("h100-aarch64-550-py311", (H100,), "550.54.15", "3.11", "linux", "aarch64", None, ("2.14.1", "cu126")),
    # Windows: 2.15 cu13x have no known Windows floor; 2.14.1 Windows cu126 (527.41) has sm_86
    ("win-rtx4090-560-py312", (RTX4090,), "560.94", "3.12", "windows", "x86_64", None, ("2.14.1", "cu126")),
    # Windows, driver below 527.41: no cu12x wheel; the cu118 wheels (Windows rows to 2.7) need 452.39
    ("win-rtx3090-516-py312", (RTX3090,), "516.94", "3.12", "windows", "x86_64", None, ("2.7.1", "cu118")),
    # the GPUs' own first driver branch (profiles/compat/driver_floors.toml): the 4090 needs R520, the
    # 5090 R570, however little the wheel's CUDA asks (cu126's minor-version floor 525.60.13 on 535)
    ("win-rtx4090-516-py312", (RTX4090,), "516.94", "3.12", "windows", "x86_64", None, None),
    ("rtx5090-535-py311", (RTX5090,), "535.104.05", "3.11", "linux", "x86_64", None, None),
    ("b200-560-py311", (B200,), "560.35.03", "3.11", "linux", "x86_64", None, None),
    # no NVIDIA GPU: newest release for the Python
    ("linux-cpu-py313", (), None, "3.13", "linux", "x86_64", None, ("2.15.0", "cpu")),
    ("linux-aarch64-cpu-py310", (), None, "3.10", "linux", "aarch64", None, ("2.14.1", "cpu")),
    ("windows-cpu-py39", (), None, "3.9", "windows", "x86_64", None, ("2.8.0", "cpu")),
    # Apple silicon: newest release, MPS
    ("macos-arm64-py312", (), None, "3.12", "macos", "arm64", None, ("2.15.0", "cpu")),
    # Intel Mac: wheels end with 2.2.x; 2.2.2 supports 3.8-3.12
    ("macos-x86-py312", (), None, "3.12", "macos", "x86_64", None, ("2.2.2", "cpu")),
    ("macos-x86-py313", (), None, "3.13", "macos", "x86_64", None, None),
]


def _plan(gpus: tuple[str, ...], driver: str | None, python: str, os: str, arch: str, pin: str | None):  # type: ignore[no-untyped-def]
    target = hypothetical_target(KNOWLEDGE, gpus=gpus, driver=driver, python=python, os=os, arch=arch)
    return plan_setup(KNOWLEDGE, target, pin)


@pytest.mark.parametrize(
    ("gpus", "driver", "python", "os", "arch", "pin", "expected"),
    [row[1:] for row in TARGETS],
    ids=[row[0] for row in TARGETS],
)
def test_plan_table(
    gpus: tuple[str, ...],
    driver: str | None,
    python: str,
    os: str,
    arch: str,
    pin: str | None,
    expected: tuple[str, str] | None,
) -> None:
    plan = _plan(gpus, driver, python, os, arch, pin)
    if expected is None:
        assert not plan.fits
        assert plan.torch is None and plan.variant is None
        assert plan.upgrades, "a plan that does not fit must say what to change"
        return
    assert plan.fits, plan.upgrades
    assert (plan.torch, plan.variant) == expected
    release = KNOWLEDGE.torch_release(expected[0])
    assert release is not None
    assert plan.torchvision == release.torchvision
    assert plan.torchaudio == release.torchaudio


def test_table_covers_the_range_the_issue_asks_for() -> None:
    pythons = {row[3] for row in TARGETS}
    assert {"3.9", "3.10", "3.11", "3.12", "3.13"} <= pythons
    assert {(row[4], row[5]) for row in TARGETS} >= {
        ("linux", "x86_64"),
        ("linux", "aarch64"),
        ("windows", "x86_64"),
        ("macos", "arm64"),
        ("macos", "x86_64"),
    }
    assert len(TARGETS) >= 15
    assert sum(row[-1] is None for row in TARGETS) >= 3


def test_ruled_out_says_the_driver_needed() -> None:
    plan = _plan((L4,), "535.104.05", "3.10", "linux", "x86_64", None)
    assert "torch 2.14.1 cu130: needs driver >= 580, you have 535.104.05" in [str(r) for r in plan.ruled_out]
    assert any("Python 3.11-3.15" in r.reason for r in plan.ruled_out if r.torch == "2.15.0")


def test_kepler_rule_out_names_the_missing_kernels() -> None:
    plan = _plan((K80,), "470.82.01", "3.9", "linux", "x86_64", None)
    reasons = [str(r) for r in plan.ruled_out if r.torch == "2.8.0"]
    assert any("no kernels for Tesla K80 (sm_37)" in reason for reason in reasons)


def test_nothing_fits_says_what_to_upgrade() -> None:
    driver = _plan((V100,), "418.39", "3.12", "linux", "x86_64", None)
    # a newer driver gets the newest torch with sm_70; Python 3.9 would get the newest torch with a cu101 wheel
    assert driver.upgrades == (
        "upgrade the NVIDIA driver to >= 525.60.13 to run torch 2.14.1 cu126; "
        ">= 450.80.02 is enough for torch 2.7.1 cu118",
        "use Python 3.6-3.9 (torch 1.8.1 runs here)",
    )
    # an A100 on 418: no Python helps, R418 does not drive it (driver_floors.toml: R450); the wheel's minimum
    # above the branch is the driver to install
    a100 = _plan((A100,), "418.39", "3.12", "linux", "x86_64", None)
    assert not a100.fits and "Ampere (A100 / A30) GPUs need driver branch R450" in a100.reasons[0]
    assert a100.upgrades == (
        "upgrade the NVIDIA driver to >= 580 to run torch 2.15.0 cu130; >= 450.80.02 is enough for torch 2.7.1 cu118",
    )
    kepler = _plan((K80,), "470.82.01", "3.14", "linux", "x86_64", None)
    assert kepler.upgrades[0] == "use Python 3.9-3.13 (torch 2.7.1 runs here)"
    intel_mac = _plan((), None, "3.13", "macos", "x86_64", None)
    assert intel_mac.upgrades == ("use Python 3.8-3.12 (torch 2.2.2 runs here)",)


def test_accelerator_and_index() -> None:
    mac = _plan((), None, "3.12", "macos", "arm64", None)
    assert (mac.accelerator, mac.index_url) == ("mps", None)
    cpu = _plan((), None, "3.12", "linux", "x86_64", None)
    assert (cpu.accelerator, cpu.index_url) == ("cpu", "https://download.pytorch.org/whl/cpu")
    cuda = _plan((L4,), "535.104.05", "3.10", "linux", "x86_64", None)
    assert (cuda.accelerator, cuda.index_url, cuda.cuda) == ("cuda", "https://download.pytorch.org/whl/cu126", "12.6")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"gpus": ("No Such GPU",), "driver": "535.1"}, "--gpu No Such GPU: not in profiles/gpus.toml"),
        ({"gpus": (L4,), "driver": "abc"}, "--driver abc"),
        ({"gpus": (L4,), "driver": None}, "--gpu needs --driver"),
        ({"python": "three"}, "--python three"),
        ({"os": "plan9"}, "--os plan9"),
        ({"arch": "mips"}, "--arch mips"),
    ],
)
def test_bad_hypothetical_target_is_an_input_error(changes: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"gpus": (), "driver": None, "python": "3.11", "os": "linux", "arch": "x86_64"}
    arguments.update(changes)
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        hypothetical_target(KNOWLEDGE, **arguments)  # type: ignore[arg-type]


def test_unknown_pin_is_an_input_error() -> None:
    with pytest.raises(InputError, match=r"--torch 9\.9"):
        _plan((), None, "3.11", "linux", "x86_64", "9.9")


def test_pinned_old_release_on_apple_silicon_is_not_offered() -> None:
    plan = _plan((), None, "3.8", "macos", "arm64", "1.10")
    assert not plan.fits
    assert "no MPS backend before torch 1.12" in plan.ruled_out[0].reason


def test_ptx_only_gpu_is_named_in_the_reasons() -> None:
    # the Windows cu118 wheels of torch 2.0-2.7 have no sm_90 code: CUDA 11.8 knows Hopper, so an H100 runs
    # their compute_37 PTX; cu117 (CUDA 11.7 predates Hopper) is ruled out
    plan = _plan(("NVIDIA H100 PCIe",), "537.13", "3.10", "windows", "x86_64", "2.0")
    assert (plan.torch, plan.variant) == ("2.0.1", "cu118")
    assert any("JIT-compiles compute_37 PTX" in reason for reason in plan.reasons)


def test_a_gpu_newer_than_the_wheels_cuda_is_ruled_out_though_the_wheel_has_ptx() -> None:
    # torch 1.5 has compute_37 PTX, but CUDA 10.2 predates Ampere: torch calls an A100 incompatible with it
    plan = _plan(("NVIDIA A100-SXM4-80GB",), "450.80.02", "3.8", "linux", "x86_64", "1.5")
    assert not plan.fits
    assert plan.ruled_out[0].variant == "cu102" and "CUDA 10.2, which the wheel was built with, predates" in (
        plan.ruled_out[0].reason
    )


def test_a_driver_below_the_gpus_own_branch_is_nothing_fits_with_the_driver_to_install() -> None:
    plan = _plan((RTX5090,), "535.104.05", "3.11", "linux", "x86_64", None)
    assert not plan.fits and plan.ruled_out == ()
    assert plan.reasons == (
        "driver 535.104.05 cannot drive NVIDIA GeForce RTX 5090: Blackwell (GeForce RTX 50 / RTX PRO) GPUs need "
        "driver branch R570 or newer, so no PyTorch wheel runs there whatever its CUDA version",
    )
    # cu129 on driver 535 would pass the wheel's own minor-compat floor (525.60.13): the GPU's branch is advised,
    # and no older Python is offered (no wheel runs on this driver at all)
    assert plan.upgrades == (
        "upgrade the NVIDIA driver to >= 580 to run torch 2.15.0 cu130; >= 570 is enough for torch 2.13.0 cu129",
    )


def test_plans_pin_the_local_tag_of_their_wheels() -> None:
    cuda = _plan((L4,), "535.104.05", "3.10", "linux", "x86_64", None)
    assert cuda.pins == (("torch", "2.14.1+cu126"), ("torchvision", "0.29.1+cu126"))
    assert _plan((), None, "3.13", "linux", "x86_64", None).pins[1][1].endswith("+cpu")
    assert _plan((), None, "3.12", "windows", "x86_64", "2.5").pins[0] == ("torch", "2.5.1+cpu")
    # PyPI's macOS wheels and the index's Linux aarch64 CPU wheels carry no tag
    assert "+" not in "".join(v for _, v in _plan((), None, "3.12", "macos", "arm64", None).pins)
    assert "+" not in "".join(v for _, v in _plan((), None, "3.10", "linux", "aarch64", None).pins)
    # torchaudio's wheels carry the tag from 2.0; torch 1.x plans pin it untagged, as pytorch.org's own commands do
    kepler = _plan((K80,), "470.82.01", "3.9", "linux", "x86_64", None)
    assert kepler.pins == (("torch", "2.7.1+cu118"), ("torchvision", "0.22.1+cu118"), ("torchaudio", "2.7.1+cu118"))
    pascal = _plan((GTX1080,), "418.39", "3.9", "linux", "x86_64", None)
    assert pascal.pins[0] == ("torch", "1.8.1+cu101") and "+" not in pascal.pins[2][1]


def test_a_pin_that_rules_the_gpu_out_names_the_first_release_that_has_it() -> None:
    # an A100 with torch 1.5 pinned: no 1.5 wheel has sm_80, but 1.7.0+cu110 does (wheel_arch.toml)
    plan = _plan((A100,), "550.54.15", "3.8", "linux", "x86_64", "1.5")
    assert not plan.fits
    (closing,) = plan.upgrades
    assert closing.startswith("torch 1.5 has no official linux-x86_64 CUDA wheel with kernels for NVIDIA A100")
    assert "the first that has them is torch 1.7.0+cu110" in closing and "pin --torch 1.7.0 to " in closing
    assert "build PyTorch from source" not in closing
    first = KNOWLEDGE.arch_list("1.7.0", "cu110")
    older = KNOWLEDGE.arch_list("1.6.0", "cu102")
    assert first is not None and "sm_80" in first.sass
    assert older is not None and "sm_80" not in older.sass
    # a retired architecture: the range ends at the last wheel with sm_37, older than the pin
    kepler = _plan((K80,), "470.82.01", "3.10", "linux", "x86_64", "2.8")
    assert "the first that has them is torch 1.0.0+cu80 (the newest torch 2.7.1+cu118)" in kepler.upgrades[-1]
    # without the pin the same target fits: the pin alone ruled the A100 out
    unpinned = _plan((A100,), "550.54.15", "3.8", "linux", "x86_64", None)
    assert unpinned.fits
