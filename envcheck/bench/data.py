"""CIFAR-10 for the benchmark: find torchvision's `cifar-10-batches-py`, verify and load it; or a synthetic stand-in.

The files are pickles, and a folder found in `./data` or a cache may have been put there by anyone: they are
unpickled by an unpickler that builds nothing but numpy arrays, so a crafted batch cannot run code. A folder
found without being asked must also be the official release (md5s shipped here); one named with `--data-dir`
may be a copy of your own (a subset, a re-pack) and is then loaded as "unverified".
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
IMAGE_BYTES = 3 * 32 * 32
CLASSES = 10
# The official files as torchvision lists them (torchvision/datasets/cifar.py: CIFAR10.train_list, test_list,
# meta); a test compares this with the installed torchvision so the two cannot drift apart.
OFFICIAL_MD5S = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}
# An official batch is 31 MB; a copy of your own may hold more images, but not a whole disk
MAX_BATCH_BYTES = 1 << 30
# What a CIFAR batch pickle may build: numpy arrays and their dtypes (numpy 2 moved `core` to `_core`), and
# `_codecs.encode`, which Python 3 writes for bytes in protocol 2 (a re-pack of your own); it only encodes text.
_ALLOWED_GLOBALS = frozenset(
    {
        ("_codecs", "encode"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }
)
# pickle.load on damaged bytes raises any of these (truncation: EOFError/UnpicklingError; garbage: the rest)
_UNPICKLE_ERRORS = (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, TypeError, ValueError)


@dataclass(frozen=True, slots=True)
class Dataset:
    """Images as uint8 arrays N x 3 x 32 x 32 (numpy), labels int64; `kind` is "cifar10" or "synthetic"."""

    kind: str
    source: str  # the folder read, or how the synthetic set was made
    checksums: str | None  # "official-md5" or "unverified" (a --data-dir copy); None for synthetic data
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


def _check_files(folder: Path) -> None:
    """Every file is there, a regular file (a FIFO would block the read) and of a size a batch can have."""
    for name in OFFICIAL_MD5S:
        path = folder / name
        if not path.exists():
            raise InputError(f"{path}: missing from the CIFAR-10 folder")
        if not path.is_file():
            raise InputError(f"{path}: not a regular file")
        if path.stat().st_size > MAX_BATCH_BYTES:
            raise InputError(f"{path}: larger than {MAX_BATCH_BYTES >> 30} GiB, not a CIFAR-10 batch")


def first_mismatch(folder: Path, expected: dict[str, str]) -> tuple[Path, str, str] | None:
    """The first file whose md5 differs from `expected`, as (path, actual, expected); None when all match."""
    for name, md5 in expected.items():
        actual = _md5(folder / name)
        if actual != md5:
            return folder / name, actual, md5
    return None


def verify_checksums(folder: Path, expected: dict[str, str] = OFFICIAL_MD5S) -> None:
    """Raise InputError naming the first missing file or the first that is not the official one."""
    _check_files(folder)
    mismatch = first_mismatch(folder, expected)
    if mismatch is not None:
        path, actual, md5 = mismatch
        raise InputError(
            f"{path}: corrupt, truncated or not the official file (md5 {actual}, expected {md5}); "
            "re-fetch it with --download, or name a copy of your own with --data-dir"
        )


class _CifarUnpickler(pickle.Unpickler):
    """Builds numpy arrays, lists, dicts and strings only: any other global a pickle names is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}: a CIFAR-10 batch holds only arrays")
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict[Any, Any]:
    try:
        with path.open("rb") as stream:
            loaded = _CifarUnpickler(stream, encoding="latin1").load()  # latin1 as torchvision
    except (*_UNPICKLE_ERRORS, MemoryError, RecursionError) as error:
        raise InputError(f"{path}: corrupt or not a CIFAR-10 batch ({type(error).__name__}: {error})") from None
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
    if not all(type(label) is int and 0 <= label < CLASSES for label in labels):
        raise InputError(f"{path}: 'labels' holds values other than the integers 0..{CLASSES - 1}")
    return data.reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64)


def load_cifar10(folder: Path, is_official_required: bool = True) -> Dataset:
    """Load a `cifar-10-batches-py` folder; unless `is_official_required`, a copy that is not the official
    release is loaded too and marked "unverified" (the unpickler is restricted either way)."""
    import numpy as np

    if is_official_required:
        verify_checksums(folder)
        checksums = "official-md5"
    else:
        _check_files(folder)
        checksums = "official-md5" if first_mismatch(folder, OFFICIAL_MD5S) is None else "unverified"
    meta = _unpickle(folder / META_FILE)
    names = meta.get("label_names")
    if not isinstance(names, list) or len(names) != CLASSES:
        raise InputError(f"{folder / META_FILE}: expected {CLASSES} label_names")
    parts = [read_batch(folder / name) for name in TRAIN_FILES]
    test_images, test_labels = read_batch(folder / TEST_FILE)
    return Dataset(
        kind="cifar10",
        source=str(folder),
        checksums=checksums,
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
        # a folder found in ./data or a cache was not chosen by the user: only the official files are trusted
        return load_cifar10(folder, is_official_required=data_dir is None)
    if data_dir is not None:
        raise InputError(f"{data_dir}: no {FOLDER} folder (fetch it with --download, or drop --data-dir)")
    return synthetic_cifar10(*synthetic_sizes)


def write_cifar10(folder: Path, dataset: Dataset) -> None:
    """Write `dataset` in torchvision's on-disk format (5 train batches, test_batch, batches.meta).

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
