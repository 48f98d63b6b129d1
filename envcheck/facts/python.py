"""Facts about the target Python interpreter and the ML packages installed in it."""

from __future__ import annotations

from dataclasses import dataclass

from envcheck.facts.common import Unavailable


@dataclass(frozen=True, slots=True)
class InstalledPackage:
    name: str  # normalised distribution name, e.g. torch, nvidia-cudnn-cu12
    version: str  # verbatim, e.g. 2.3.1+cu121
    location: str  # the sys.path entry it was found in: two entries for one name = two installs
    # conda's record of this install (`conda list`): its build string (py3.10_cuda11.7_cudnn8.5.0_0, py39_cu117,
    # cuda118_py310h..., cpu_py310h...) and channel (pytorch, conda-forge); None where conda did not list it
    build: str | None = None
    channel: str | None = None


@dataclass(frozen=True, slots=True)
class PythonFacts:
    # Fields a collect_env import cannot know are Unavailable there; a live probe always fills them.
    executable: str
    version: str  # 3.11.7
    implementation: str | Unavailable  # CPython, PyPy
    prefix: str | Unavailable
    virtualenv: str | Unavailable | None  # path of the active venv, None outside one
    conda_env: str | Unavailable | None  # name of the conda environment, None outside one
    pip_version: str | Unavailable
    packages: tuple[InstalledPackage, ...]  # the ML packages present, from importlib.metadata
    is_user_site_enabled: bool | Unavailable
