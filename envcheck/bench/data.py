"""CIFAR-10 for the benchmark: find torchvision's `cifar-10-batches-py`, verify and load it; or a synthetic stand-in.

The real data is verified before it is unpickled: against torchvision's own md5 list, or, for a copy someone
made themselves (tests, a re-packed subset), against an `md5sums.txt` manifest next to the batches.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envcheck.loaders import InputError

FOLDER = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{n}" for n in range(1, 6))
TEST_FILE = "test_batch"
META_FILE = "batches.meta"
MANIFEST = "md5sums.txt"  # `md5sum data_batch_* test_batch batches.meta > md5sums.txt` writes this format
IMAGE_BYTES = 3 * 32 * 32
CLASSES = 10
# pickle.load on damaged bytes raises any of these (truncation: EOFError/UnpicklingError; garbage: the rest)
_UNPICKLE_ERRORS = (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, TypeError, ValueError)


@dataclass(frozen=True, slots=True)
class Dataset:
    """Images as uint8 arrays N x 3 x 32 x 32 (numpy), labels int64; `kind` is "cifar10" or "synthetic"."""

    kind: str
    source: str  # the folder read, or how the synthetic set was made
    checksums: str | None  # "torchvision-md5", "manifest-md5"; None for synthetic data
    train_images: Any
    train_labels: Any
    test_images: Any
    test_labels: Any


def candidate_roots(
    data_dir: Path | None, environ: dict[str, str] | None = None, home: Path | None = None
) -> list[Path]:
    """Where to look, in order: --data-dir, ~/.cache/envcheck, $TORCH_HOME (and its datasets/), ./data."""
    if data_dir is not None:
        return [data_dir]
    environ = dict(os.environ) if environ is None else environ
    home = Path.home() if home is None else home
    roots = [home / ".cache" / "envcheck"]
    if environ.get("TORCH_HOME"):
        roots += [Path(environ["TORCH_HOME"]), Path(environ["TORCH_HOME"]) / "datasets"]
    roots.append(Path("data"))
    return roots


def find_cifar10(roots: list[Path]) -> Path | None:
    """The first `cifar-10-batches-py` folder under (or equal to) one of `roots`."""
    for root in roots:
        for folder in (root / FOLDER, root):
            if folder.name == FOLDER and (folder / META_FILE).is_file():
                return folder
    return None


def download_cifar10(root: Path) -> Path:
    """Fetch through torchvision's downloader (it checks the archive's md5 itself)."""
    from torchvision.datasets import CIFAR10  # type: ignore[import-untyped]

    try:
        CIFAR10(root=str(root), train=True, download=True)
    except (OSError, RuntimeError) as error:  # URLError is an OSError; torchvision raises RuntimeError on md5
        raise InputError(f"{root}: cannot download CIFAR-10: {error}") from None
    return root / FOLDER


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def torchvision_md5s() -> dict[str, str]:
    """torchvision's checksums of the official files (torchvision/datasets/cifar.py, CIFAR10.train_list...)."""
    from torchvision.datasets import CIFAR10

    pairs = [*CIFAR10.train_list, *CIFAR10.test_list, [CIFAR10.meta["filename"], CIFAR10.meta["md5"]]]
    return {str(name): str(md5) for name, md5 in pairs}


def read_manifest(folder: Path) -> dict[str, str]:
    path = folder / MANIFEST
    expected: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or len(parts[0]) != 32:  # "<32 hex digits>  <name>"
            raise InputError(f"{path}:{number}: expected '<md5>  <file name>'")
        expected[parts[1].lstrip("*")] = parts[0].lower()
    return expected


def verify_checksums(folder: Path, reference: dict[str, str] | None = None) -> str:
    """Check every file's md5; raise InputError naming the first missing or damaged file. Returns the method."""
    has_manifest = (folder / MANIFEST).is_file()
    if has_manifest:
        expected, method, hint = read_manifest(folder), "manifest-md5", f"listed in {folder / MANIFEST}"
    else:
        expected = torchvision_md5s() if reference is None else reference
        method, hint = "torchvision-md5", "of the official file (torchvision); re-fetch with --download"
    for name in (*TRAIN_FILES, TEST_FILE, META_FILE):
        path = folder / name
        if not path.is_file():
            raise InputError(f"{path}: missing from the CIFAR-10 folder")
        if name not in expected:
            raise InputError(f"{folder / MANIFEST}: no checksum for {name}")
        actual = _md5(path)
        if actual != expected[name]:
            raise InputError(f"{path}: corrupt or truncated (md5 {actual}, expected {expected[name]} {hint})")
    return method


def _unpickle(path: Path) -> dict[Any, Any]:
    try:
        with path.open("rb") as stream:
            loaded = pickle.load(stream, encoding="latin1")  # md5-verified just before; latin1 as torchvision
    except (*_UNPICKLE_ERRORS, MemoryError) as error:
        raise InputError(f"{path}: not a CIFAR-10 batch ({type(error).__name__}: {error})") from None
    if not isinstance(loaded, dict):
        raise InputError(f"{path}: not a CIFAR-10 batch (a pickled {type(loaded).__name__}, not a dict)")
    return loaded


def read_batch(path: Path) -> tuple[Any, Any]:
    """One batch file as (uint8 N x 3 x 32 x 32, int64 N); its structure is checked, errors name the file."""
    import numpy as np

    batch = _unpickle(path)
    data, labels = batch.get("data"), batch.get("labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != IMAGE_BYTES:
        raise InputError(f"{path}: 'data' is not a uint8 N x {IMAGE_BYTES} array")
    if not isinstance(labels, list) or len(labels) != data.shape[0]:
        raise InputError(f"{path}: 'labels' is not a list of {data.shape[0]} labels")
    label_array = np.asarray(labels, dtype=np.int64)
    if label_array.size and (label_array.min() < 0 or label_array.max() >= CLASSES):
        raise InputError(f"{path}: labels outside 0..{CLASSES - 1}")
    return data.reshape(-1, 3, 32, 32), label_array


def load_cifar10(folder: Path, reference_md5s: dict[str, str] | None = None) -> Dataset:
    import numpy as np

    method = verify_checksums(folder, reference_md5s)
    meta = _unpickle(folder / META_FILE)
    if len(meta.get("label_names", ())) != CLASSES:
        raise InputError(f"{folder / META_FILE}: expected {CLASSES} label_names")
    parts = [read_batch(folder / name) for name in TRAIN_FILES]
    test_images, test_labels = read_batch(folder / TEST_FILE)
    return Dataset(
        kind="cifar10",
        source=str(folder),
        checksums=method,
        train_images=np.concatenate([images for images, _ in parts]),
        train_labels=np.concatenate([labels for _, labels in parts]),
        test_images=test_images,
        test_labels=test_labels,
    )


def synthetic_cifar10(train_size: int, test_size: int, seed: int = 0) -> Dataset:
    """A learnable CIFAR-shaped set: each class a fixed low-frequency colour pattern, each image that plus noise."""
    import numpy as np

    generator = np.random.default_rng(seed)
    # 4x4 colour blocks per class, blown up to 32x32: structure a small CNN learns within a few hundred steps
    templates = 128.0 + 40.0 * np.kron(generator.normal(0.0, 1.0, (CLASSES, 3, 4, 4)), np.ones((1, 1, 8, 8)))
    templates = templates.astype(np.float32)

    def draw(count: int) -> tuple[Any, Any]:
        labels = generator.integers(0, CLASSES, count, dtype=np.int64)
        images = generator.standard_normal((count, 3, 32, 32), dtype=np.float32)
        images *= 48.0
        images += templates[labels]
        np.clip(images, 0.0, 255.0, out=images)
        return images.astype(np.uint8), labels

    train_images, train_labels = draw(train_size)
    test_images, test_labels = draw(test_size)
    return Dataset(
        kind="synthetic",
        source=f"synthetic: {train_size} + {test_size} images, seed {seed}",
        checksums=None,
        train_images=train_images,
        train_labels=train_labels,
        test_images=test_images,
        test_labels=test_labels,
    )


def resolve_dataset(
    data_dir: Path | None, download: bool, force_synthetic: bool, synthetic_sizes: tuple[int, int]
) -> Dataset:
    """Real CIFAR-10 when found (or downloaded), else the synthetic set; --data-dir that holds none is an error."""
    if force_synthetic:
        return synthetic_cifar10(*synthetic_sizes)
    folder = find_cifar10(candidate_roots(data_dir))
    if folder is None and download:
        folder = download_cifar10(data_dir or Path.home() / ".cache" / "envcheck")
    if folder is not None:
        return load_cifar10(folder)
    if data_dir is not None:
        raise InputError(f"{data_dir}: no {FOLDER} folder (fetch it with --download, or drop --data-dir)")
    return synthetic_cifar10(*synthetic_sizes)


def write_cifar10(folder: Path, dataset: Dataset, with_manifest: bool = True) -> None:
    """Write `dataset` in torchvision's on-disk format (5 train batches, test_batch, batches.meta, md5sums.txt).

    For tests and benchmarks that must go through the real loading code without the real 163 MB download.
    """
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    names = [f"class_{n}" for n in range(CLASSES)]
    splits = np.array_split(np.arange(len(dataset.train_labels)), len(TRAIN_FILES))
    batches = [
        (name, dataset.train_images[rows], dataset.train_labels[rows])
        for name, rows in zip(TRAIN_FILES, splits, strict=True)
    ]
    batches.append((TEST_FILE, dataset.test_images, dataset.test_labels))
    for name, images, labels in batches:
        content = {
            "batch_label": name,
            "labels": [int(v) for v in labels],
            "data": images.reshape(len(labels), IMAGE_BYTES),
            "filenames": ["x.png"] * len(labels),
        }
        (folder / name).write_bytes(python2_pickle(content))
    (folder / META_FILE).write_bytes(python2_pickle({"label_names": names, "num_cases_per_batch": len(splits[0])}))
    if with_manifest:
        files = (*TRAIN_FILES, TEST_FILE, META_FILE)
        (folder / MANIFEST).write_text("".join(f"{_md5(folder / name)}  {name}\n" for name in files), encoding="utf-8")


def python2_pickle(value: object) -> bytes:
    """Pickle as Python 2's cPickle wrote the official files: protocol 2, str and bytes as 8-bit STRING opcodes.

    Python 3 would write bytes as a `_codecs.encode` call and str as unicode, which torchvision's
    `pickle.load(f, encoding="latin1")` reads differently from the real files; numpy arrays pickle their
    buffer as bytes, so they go through the same opcode and load under latin1 exactly like the originals.
    """
    import io
    import struct

    def save_string(pickler: Any, text: str | bytes) -> None:
        raw = text.encode("latin1") if isinstance(text, str) else text
        if len(raw) < 256:  # SHORT_BINSTRING carries a one-byte length
            pickler.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            pickler.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        pickler.memoize(text)

    class Python2Pickler(pickle._Pickler):  # the pure-Python pickler: its dispatch table can be overridden
        dispatch = dict(pickle._Pickler.dispatch)
        dispatch[str] = save_string
        dispatch[bytes] = save_string

    buffer = io.BytesIO()
    Python2Pickler(buffer, protocol=2).dump(value)
    return buffer.getvalue()
