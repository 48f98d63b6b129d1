"""`nvidia-smi -q` text pasted with its indentation stripped or collapsed (GitHub renders a log outside a code
block that way) is read into the same facts as the indented log, through the table of what each section holds."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from envcheck.codec import encode
from envcheck.importers.nvidia_smi_layout import SECTIONS
from envcheck.importers.nvidia_smi_text import parse_nvidia_smi_text
from tests.test_nvidia_smi_text import DRIVER_570, MIG_DEVICE_460, MIG_GPU

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TEXTS = sorted([*FIXTURES.glob("nvidia-smi-q/*.txt"), *FIXTURES.glob("reports/*-q*.txt")])
MIB = 1024 * 1024
NESTED_MIG = (
    MIG_GPU
    + "    MIG Devices\n"
    + "".join("    " + line + "\n" for line in MIG_DEVICE_460.format(index=0, instance=1).splitlines())
)
IN_TESTS = {"driver570": DRIVER_570, "mig460": MIG_GPU + MIG_DEVICE_460.format(index=0, instance=7), "mig": NESTED_MIG}


def stripped(text: str) -> str:
    return "\n".join(line.strip() for line in text.splitlines())


def collapsed(text: str) -> str:
    """Every line of a GPU's block one space in, as an HTML renderer collapsing runs of spaces leaves it."""
    return "\n".join(
        line.strip() if not line.startswith(" ") else " " + " ".join(line.split()) for line in text.splitlines()
    )


def facts_json(text: str) -> object:
    return encode(parse_nvidia_smi_text(text, "nvidia-smi-q:paste"))


@pytest.mark.parametrize("path", TEXTS, ids=lambda path: path.stem)
@pytest.mark.parametrize("mangle", [stripped, collapsed])
def test_every_fixture_without_its_indentation_gives_the_same_facts(path: Path, mangle: object) -> None:
    text = path.read_text(encoding="utf-8")
    assert callable(mangle)
    assert facts_json(mangle(text)) == facts_json(text)


@pytest.mark.parametrize("name", sorted(IN_TESTS))
def test_the_layouts_written_in_the_tests_read_alike_when_flat(name: str) -> None:
    assert facts_json(stripped(IN_TESTS[name])) == facts_json(IN_TESTS[name])


def test_a_flat_driver570_paste_keeps_each_field_in_its_section() -> None:
    """BAR1's "Total" must not overwrite FB memory's, nor "Max Clocks" the current ones, nor a PCIe "Max" the
    current link: each is only right if the sections were found again without indentation."""
    gpu = parse_nvidia_smi_text(stripped(DRIVER_570), "x").gpus[0]
    assert (gpu.name, gpu.pci_bus_id) == ("NVIDIA GeForce RTX 5090", "00000000:41:00.0")
    assert (gpu.memory_total_bytes, gpu.memory_used_bytes) == (32607 * MIB, 3 * MIB)
    assert (gpu.pcie_generation, gpu.pcie_generation_max, gpu.pcie_width, gpu.pcie_width_max) == (1, 5, 16, 16)
    assert (gpu.sm_clock_mhz, gpu.sm_clock_max_mhz, gpu.memory_clock_max_mhz) == (22, 3090, 14001)
    assert gpu.clock_event_reasons == ("sw_power_cap",)
    assert (gpu.temperature_c, gpu.power_draw_watts, gpu.processes) == (27, 22.41, ())


def test_the_layout_table_holds_every_section_of_every_fixture() -> None:
    """Regenerates the table from the fixtures: a fixture with a section or field the table lacks fails here
    (run tests/fixtures/nvidia-smi-q/make_layout.py and commit the table)."""
    spec = importlib.util.spec_from_file_location("make_layout", FIXTURES / "nvidia-smi-q" / "make_layout.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    learned = module.fixture_layout()
    lacking = {section: sorted(tags - SECTIONS.get(section, frozenset())) for section, tags in learned.items()}
    assert {section: tags for section, tags in lacking.items() if tags} == {}
