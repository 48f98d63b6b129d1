"""A SkyPilot task YAML for a recommended instance, so that ``sky launch task.yaml`` provisions exactly it.

Written by hand (PyYAML is not a dependency): every scalar is a JSON string, which is valid YAML 1.2.
Fields: https://docs.skypilot.co/en/latest/reference/yaml-spec.html (resources: cloud, region,
instance_type, accelerators, use_spot; num_nodes).
"""

from __future__ import annotations

import json
import re

from envcheck.advise.memory_model import STRATEGY_TITLES
from envcheck.advise.recommend import Option
from envcheck.advise.workload_spec import WorkloadSpec


def task_name(spec: WorkloadSpec) -> str:
    """SkyPilot task names: lower-case letters, digits and dashes."""
    slug = re.sub(r"[^a-z0-9]+", "-", spec.name.casefold()).strip("-")
    return f"envcheck-{slug or 'job'}"


def render_skypilot_task(spec: WorkloadSpec, option: Option) -> str:
    instance = option.instance
    memory_gb = option.memory.total_bytes / 1e9
    lines = [
        f"# SkyPilot task for {spec.name}, written by `envcheck recommend`.",
        f"# {instance.gpu_count} x {instance.gpu} ({instance.gpu_memory_gb:g} GB each), "
        f"{STRATEGY_TITLES[option.memory.strategy]}: ~{memory_gb:.1f} GB needed per GPU.",
        f"# Price at recommendation: ${option.price_per_hour:g}/h ({'spot' if option.is_spot else 'on-demand'}, "
        f"catalog {instance.as_of}). Add your own setup: and run: sections, then: sky launch THIS_FILE",
        f"name: {json.dumps(task_name(spec))}",
        "resources:",
        f"  cloud: {json.dumps(instance.cloud)}",
        f"  region: {json.dumps(instance.region)}",
        f"  instance_type: {json.dumps(instance.instance_type)}",
        f"  accelerators: {json.dumps(f'{instance.gpu}:{instance.gpu_count}')}",
        f"  use_spot: {'true' if option.is_spot else 'false'}",
        "num_nodes: 1",
    ]
    return "\n".join(lines) + "\n"
