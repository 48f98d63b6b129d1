"""The last driver branch of retired GPU architectures (profiles/compat/driver_branches.toml): loading, the rule,
and the fixes that must not tell a Kepler owner to install a driver that does not exist for the card."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from envcheck.advise.setup_plan import plan_setup
from envcheck.advise.target import hypothetical_target
from envcheck.checks.registry import CheckInput, all_checks
from envcheck.facts.common import Unavailable
from envcheck.finding import Finding, Severity
from envcheck.knowledge import DriverCeiling, Knowledge, KnowledgeError, load_knowledge, profiles_root
from envcheck.knowledge.model import Provenance
from envcheck.loaders import load_snapshot_file
from envcheck.snapshot import Snapshot
from tests import factories

KNOWLEDGE = load_knowledge()
K80_PASTE = Path(__file__).parent / "fixtures" / "collect_env" / "linux-torch2.1-cu121-tesla-k80-sm37.txt"


def only(check_id: str, snapshot: Snapshot, knowledge: Knowledge = KNOWLEDGE) -> Finding:
    (registered,) = [c for c in all_checks() if c.id == check_id]
    (finding,) = registered.run(CheckInput(snapshot, knowledge=knowledge))
    return finding


def test_kepler_ends_at_r470_and_maxwell_to_volta_at_r580() -> None:
    kepler = KNOWLEDGE.driver_ceiling(((3, 7),))
    assert kepler is not None and kepler.architecture == "Kepler" and kepler.last_branch == 470
    assert kepler.newest_driver == "470.256.02"
    for cc in ((5, 2), (6, 1), (7, 0)):
        ceiling = KNOWLEDGE.driver_ceiling((cc,))
        assert ceiling is not None and ceiling.last_branch == 580 and isinstance(ceiling.newest_driver, Unavailable)
    # Turing and newer: no ceiling known; Jetson's Tegra chips (7.2) run L4T drivers, not these branches
    assert KNOWLEDGE.driver_ceiling(((7, 5), (8, 0), (9, 0), (7, 2))) is None
    # a K80 next to an A100: the machine's driver is bounded by the K80
    mixed = KNOWLEDGE.driver_ceiling(((8, 0), (3, 7)))
    assert mixed is not None and mixed.architecture == "Kepler"


def test_a_minimum_inside_the_last_branch_is_reachable_and_one_past_it_is_not() -> None:
    kepler = KNOWLEDGE.driver_ceiling(((3, 5),))
    assert kepler is not None
    assert kepler.allows("470.42.01") is True  # CUDA 11.4 GA on Linux
    assert kepler.allows("450.80.02") is True  # the 11.x minor-version-compatibility floor
    assert kepler.allows("525.60.13") is False  # the 12.x floor
    # Windows numbers R470 releases 471.xx-474.xx: CUDA 11.4's Windows minimum 471.11 is still R470
    assert kepler.allows("471.11", "windows") is True
    assert kepler.allows("527.41", "windows") is False
    assert kepler.allows("not a version") is None


@pytest.fixture
def profiles(tmp_path: Path) -> Path:
    root = tmp_path / "profiles"
    shutil.copytree(profiles_root(), root)
    return root


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('newest_driver = "470.256.02"', 'newest_driver = "535.54.03"', r"newest_driver: .* not a release of branch"),
        ('compute_capability_max = "3.7"', 'compute_capability_max = "2.9"', r"compute_capability_max: is below"),
        ("last_branch = 470", 'last_branch = "R470"', r"last_branch: expected a whole number"),
        ('architecture = "Kepler"', 'architecture = "Kepler"\nbranch = 470', r"branch: unknown field"),
    ],
)
def test_bad_rows_name_the_file_and_field(profiles: Path, old: str, new: str, message: str) -> None:
    path = profiles / "compat" / "driver_branches.toml"
    path.write_text(path.read_text().replace(old, new, 1))
    with pytest.raises(KnowledgeError, match=r"^profiles/compat/driver_branches\.toml: architecture\[1\]\." + message):
        load_knowledge(profiles)


def test_kepler_paste_is_told_to_install_an_older_torch_not_to_upgrade_the_driver() -> None:
    finding = only("cuda.driver_too_old", load_snapshot_file(K80_PASTE))
    assert finding.severity is Severity.FAIL and "525.60.13" in finding.title
    assert "Kepler GPUs get no driver newer than branch R470" in finding.detail
    assert finding.fix is not None
    assert "No driver upgrade helps" in finding.fix and "Upgrade the NVIDIA driver" not in finding.fix
    # sm_37 was last built into the cu118 wheels (2.7.1); driver 470.182.03 already meets cu118's 450.80.02
    assert "torch 2.7.1+cu118" in finding.fix and "--index-url https://download.pytorch.org/whl/cu118" in finding.fix
    assert "after upgrading" not in finding.fix


def test_kepler_on_a_driver_older_than_the_wheel_it_can_run_upgrades_within_r470() -> None:
    k80 = factories.nvidia_smi_gpu("k80x4-driver430.26-ecc-dbe-retired")  # CUDA 10.1 driver, no compute_cap field
    kepler = factories.torch(  # torch 2.3.1+cu121, which driver 430 cannot start
        devices=(), device_count=0, is_cuda_available=False, arch_list=Unavailable("pasted collect_env")
    )
    finding = only("cuda.driver_too_old", factories.gpu_machine(k80, kepler))
    assert finding.severity is Severity.FAIL and finding.fix is not None
    assert "No driver upgrade helps" in finding.fix
    assert "torch 2.7.1+cu118" in finding.fix and "after upgrading the driver to 450.80.02 or newer (within R470)" in (
        finding.fix
    )


def test_gpus_whose_last_branch_is_new_enough_still_get_the_upgrade_advice() -> None:
    # Volta's last branch R580 is past the 12.x floor: a driver upgrade is the honest first fix
    v100 = factories.nvidia_smi_gpu("v100-sxm2-16gb-x2-driver418.87.01-dbe-pending-retirement")
    no_cuda = factories.torch(is_cuda_available=False, device_count=0, devices=())  # driver 418 cannot start 12.1
    finding = only("cuda.driver_too_old", factories.gpu_machine(v100, no_cuda))
    assert finding.severity is Severity.FAIL and finding.fix is not None
    assert finding.fix.startswith("Upgrade the NVIDIA driver to 525.60.13 or newer")
    assert "No driver upgrade helps" not in finding.fix and "R580" not in finding.detail
    # Turing has no ceiling at all
    t4 = factories.nvml_gpu("t4-driver515.105.01")
    finding = only("cuda.driver_too_old", factories.gpu_machine(t4, no_cuda))
    assert finding.fix is not None and finding.fix.startswith("Upgrade the NVIDIA driver")


def test_arch_fix_for_kepler_names_the_newest_wheel_its_last_branch_runs() -> None:
    finding = only("cuda.arch_support", load_snapshot_file(K80_PASTE))
    assert finding.severity is Severity.FAIL and finding.fix is not None
    assert "to torch 2.7.1+cu118" in finding.fix and "torch==2.7.1" in finding.fix


def _with_ceiling(architecture: str, low: tuple[int, int], high: tuple[int, int], branch: int) -> Knowledge:
    """The shipped knowledge plus a hypothetical ceiling, to exercise the rule where today's tables never bind."""
    hypothetical = DriverCeiling(
        architecture,
        low,
        high,
        branch,
        Unavailable("hypothetical"),
        Provenance("test", KNOWLEDGE.gpus[0].provenance.as_of),
    )
    return dataclasses.replace(KNOWLEDGE, driver_ceilings=(hypothetical,))


def test_a_ceiling_caps_the_range_the_arch_fix_names() -> None:
    # a Turing T4 under a wheel without sm_75: were Turing's last branch R470, no cu12x/cu13x wheel may be named
    t4 = factories.nvml_gpu("t4-driver515.105.01")
    wrong = factories.torch_on(t4, arch_list=("sm_80", "sm_90"))
    unbounded = only("cuda.arch_support", factories.gpu_machine(t4, wrong))
    assert unbounded.fix is not None and "to torch 2.15.0+cu132." in unbounded.fix
    capped = only("cuda.arch_support", factories.gpu_machine(t4, wrong), _with_ceiling("Turing", (7, 5), (7, 5), 470))
    assert capped.fix is not None and "to torch 2.7.1+cu118." in capped.fix


def test_setup_plan_never_advises_a_driver_past_the_ceiling() -> None:
    volta = ("Tesla V100-SXM2-16GB",)
    target = hypothetical_target(KNOWLEDGE, gpus=volta, driver="418.39", python="3.12", os="linux", arch="x86_64")
    shipped = plan_setup(KNOWLEDGE, target)
    assert not shipped.fits and shipped.upgrades[0].startswith("upgrade the NVIDIA driver to >= 525.60.13")
    # were Volta's last branch R470, the only honest upgrade is to the 11.x floor (cu118 wheels)
    capped = plan_setup(_with_ceiling("Volta", (7, 0), (7, 0), 470), target)
    assert not capped.fits and capped.upgrades[0].startswith("upgrade the NVIDIA driver to >= 450.80.02")
    assert "525.60.13" not in capped.upgrades[0]
    assert any("Volta GPUs get no driver newer than branch R470" in r.reason for r in capped.ruled_out)
