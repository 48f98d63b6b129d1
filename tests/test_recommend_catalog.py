"""Cloud catalogs: the shipped TOML, a user's TOML with rows that cannot be right, and SkyPilot vms.csv files."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

import pytest

from envcheck.advise.catalog import load_catalog, load_shipped_catalog, match_gpu
from envcheck.knowledge import KnowledgeError, load_knowledge
from envcheck.loaders import InputError

KNOWLEDGE = load_knowledge()
HEADER = ["InstanceType", "AcceleratorName", "AcceleratorCount", "vCPUs", "MemoryGiB", "GpuInfo", "Price",
          "SpotPrice", "Region", "AvailabilityZone"]  # fmt: skip
A10G_INFO = (
    '{"Gpus": [{"Name": "A10G", "Manufacturer": "NVIDIA", "Count": 1.0, "MemoryInfo": {"SizeInMiB": 22888}}],'
    ' "TotalGpuMemoryInMiB": 22888}'
)


def test_shipped_catalog_loads_with_provenance_and_drops_what_cannot_be_right() -> None:
    catalog = load_shipped_catalog(KNOWLEDGE)
    assert len(catalog.instances) > 70
    assert all(i.source and i.as_of and i.price_on_demand_usd_h > 0 for i in catalog.instances)
    assert {i.cloud for i in catalog.instances} >= {"aws", "gcp", "azure", "lambda", "runpod"}
    dropped = "\n".join(catalog.dropped)
    assert "p5e.48xlarge): dropped: no on-demand price" in dropped
    assert "TPU-v6e" in dropped  # not an NVIDIA GPU
    azure_nvl = next(i for i in catalog.instances if i.instance_type == "Standard_NC40ads_H100_v5")
    assert azure_nvl.gpu_spec.name == "H100 NVL" and azure_nvl.price_spot_usd_h is None  # spot == on-demand


def test_gpu_names_resolve_to_the_spec_variant_with_that_memory() -> None:
    assert match_gpu(KNOWLEDGE, "A100-80GB", 80).name == "A100 80GB"  # type: ignore[union-attr]
    assert match_gpu(KNOWLEDGE, "V100-32GB", 32).variant == "SXM2 32GB"  # type: ignore[union-attr]
    assert match_gpu(KNOWLEDGE, "H100", 80, "gpu_1x_h100_pcie").variant == "PCIe 80GB"  # type: ignore[union-attr]
    assert match_gpu(KNOWLEDGE, "TPU-v5e", 16) is None


def write_toml(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(f"[[instance]]\n{row}\n" for row in rows))
    return path


ROW = ('cloud = "x"\ninstance_type = "{name}"\ngpu = "{gpu}"\ngpu_count = {count}\ngpu_memory_gb = {memory}\n'
       'price_on_demand_usd_h = {price}\n{spot}region = "r1"\nsource = "test"\nas_of = 2026-11-01')  # fmt: skip


def row(name: str, gpu: str = "L4", count: int = 1, memory: float = 24, price: float = 1.0, spot: str = "") -> str:
    return ROW.format(name=name, gpu=gpu, count=count, memory=memory, price=price, spot=spot)


def test_toml_rows_that_cannot_be_right_are_dropped_with_a_reason(tmp_path: Path) -> None:
    path = write_toml(
        tmp_path / "mine.toml",
        [
            row("good"),
            row("spot-above", spot="price_spot_usd_h = 2.0\n"),
            row("placeholder", price=700.0),
            row("wrong-count", gpu="H100", count=12, memory=53.3),
            row("no-price", price=0),
            'cloud = "x"\ninstance_type = "broken"',
        ],
    )
    catalog = load_catalog(path, KNOWLEDGE)
    assert [i.instance_type for i in catalog.instances] == ["good"]
    assert catalog.instances[0].as_of == "2026-11-01"
    reasons = "\n".join(catalog.dropped)
    assert "spot $2/h is above on-demand $1/h" in reasons
    assert "placeholder price" in reasons
    assert "contradicts the 80 GB" in reasons
    assert "no on-demand price" in reasons
    assert "instance[5]: dropped: gpu: expected text" in reasons


def test_a_catalog_that_is_not_toml_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[[instance]\n")
    with pytest.raises(InputError, match="not valid TOML"):
        load_catalog(path, KNOWLEDGE)


def skypilot_csv(path: Path, rows: list[dict[str, str]], *, seed: int = 7) -> Path:
    columns = HEADER[:]
    random.Random(seed).shuffle(columns)  # columns are found by name, in any order
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    for values in rows:
        writer.writerow({key: values.get(key, "") for key in columns})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(buffer.getvalue())
    return path


def aws_row(name: str, price: str, zone: str = "us-east-1a", **changes: str) -> dict[str, str]:
    values = {"InstanceType": name, "AcceleratorName": "A10G", "AcceleratorCount": "1.0", "vCPUs": "4",
              "MemoryGiB": "16", "GpuInfo": A10G_INFO, "Price": price, "SpotPrice": "0.4",
              "Region": "us-east-1", "AvailabilityZone": zone}  # fmt: skip
    return values | changes


def test_skypilot_csv_with_shuffled_columns_and_broken_rows_loads(tmp_path: Path) -> None:
    path = skypilot_csv(
        tmp_path / "aws" / "vms.csv",
        [
            aws_row("g5.xlarge", "1.006"),
            aws_row("g5.xlarge", "1.10", zone="us-east-1b"),  # another zone, dearer: the cheapest is kept
            aws_row("g5.2xlarge", "not-a-price"),
            aws_row("g5.4xlarge", "1.624", AcceleratorCount="two"),
            aws_row("g5.8xlarge", "2.0", SpotPrice="3.0"),
            aws_row("m5.large", "0.096", AcceleratorName="", AcceleratorCount="", GpuInfo=""),  # no GPU: ignored
        ],
    )
    catalog = load_catalog(path, KNOWLEDGE)
    assert [(i.instance_type, i.price_on_demand_usd_h) for i in catalog.instances] == [("g5.xlarge", 1.006)]
    only = catalog.instances[0]
    assert only.cloud == "aws" and only.gpu_spec.name == "A10G" and only.gpu_memory_gb == 24.0
    assert only.as_of.startswith("file date ")
    reasons = "\n".join(catalog.dropped)
    assert "line 4: dropped:" in reasons and "not-a-price" in reasons
    assert "line 5: dropped:" in reasons
    assert "spot $3/h is above on-demand $2/h" in reasons


def test_gcp_gpu_only_rows_are_joined_to_their_host_vm(tmp_path: Path) -> None:
    def gcp(name: str, accelerator: str, count: str, price: str, spot: str, info: str = "") -> dict[str, str]:
        return {"InstanceType": name, "AcceleratorName": accelerator, "AcceleratorCount": count, "vCPUs": "12",
                "MemoryGiB": "85", "GpuInfo": info, "Price": price, "SpotPrice": spot, "Region": "us-central1",
                "AvailabilityZone": "us-central1-a"}  # fmt: skip

    path = skypilot_csv(
        tmp_path / "gcp" / "vms.csv",
        [
            gcp("a2-highgpu-1g", "A100", "1", "0.748", "0.3"),  # host VM priced without its GPU
            gcp("", "A100", "1", "2.925", "1.5"),  # the GPU alone
            gcp("n1-highmem-8", "", "", "0.473", "0.1"),
            gcp("", "T4", "1", "0.35", "0.175"),  # attachable: joined to the default n1 host
            gcp("", "L4", "1", "0.7", "0.3"),  # built-in to g2 VMs, but no g2 row here: reported
            gcp("g2-standard-4", "L4", "2", "0.5", "0.2"),
        ],
    )
    catalog = load_catalog(path, KNOWLEDGE)
    prices = {i.instance_type: round(i.price_on_demand_usd_h, 3) for i in catalog.instances}
    assert prices["a2-highgpu-1g"] == round(0.748 + 2.925, 3)
    assert prices["n1-highmem-8+1xT4"] == round(0.473 + 0.35, 3)
    assert "no host VM to join" in "\n".join(catalog.dropped)
    assert "g2-standard-4 has no GPU-only row to price its GPUs" in "\n".join(catalog.dropped)
    assert "g2-standard-4" not in prices


def test_a_csv_without_the_skypilot_columns_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "vms.csv"
    path.write_text("name,price\nx,1\n")
    with pytest.raises(KnowledgeError, match=r"not a SkyPilot vms\.csv"):
        load_catalog(path, KNOWLEDGE)
