"""Peak memory of reading one huge photo (12000 x 12000 px by default): `load_image`, `load_image_within`
and `load_face_photo` (what ``facerep transfer`` and ``reconstruct`` call), each in a fresh process.

Each reader runs in its own child process; the figure is the child's peak resident memory (``ru_maxrss``)
less that of a child that only imports the same modules, so it is the memory the read itself needed.
``--tree PATH`` reads with another checkout of facerep (e.g. an older commit unpacked with ``git archive``)
for a side-by-side comparison.

    python benchmarks/huge_image_memory.py [--side 12000] [--max-pixels 16000000] [--tree OLD_CHECKOUT]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MAKE = """
import sys
import numpy as np
from PIL import Image
side, path, kind = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ramp = np.linspace(0, 1, side, dtype=np.float32)
noise = np.random.default_rng(0).random((side, 64), dtype=np.float32)  # tiled: cheap to make, not flat
if kind == "grey16":
    grey = np.empty((side, side), np.uint16)
    for i in range(side):
        grey[i] = (ramp * 0.5 + 0.25 + 0.2 * np.tile(noise[i % 64], side // 64 + 1)[:side]) * 65535
    Image.fromarray(grey).save(path)
else:
    image = np.empty((side, side, 3), np.uint8)
    for i in range(side):
        row = ramp * 160 + 40 * np.tile(noise[i % 64], side // 64 + 1)[:side]
        image[i] = row[:, None].astype(np.uint8)
    Image.fromarray(image).save(path, **({"quality": 90} if path.endswith(".jpg") else {}))
"""

READ = """
import resource, sys, time
from facerep.data import imagefile
from facerep.data import photos
what, path, max_pixels = sys.argv[1], sys.argv[2], int(sys.argv[3])
start = time.perf_counter()
size = None
if what == "load_image":
    size = imagefile.load_image(path).size
elif what == "load_image_within":
    size = imagefile.load_image_within(path, max_pixels)[0].size
elif what == "load_face_photo":
    size = tuple(photos.load_face_photo(path, 64, crop="center").image.shape)
seconds = time.perf_counter() - start
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, seconds, size)
"""


def _child(code: str, args: list[str], tree: str | None) -> str:
    env = dict(os.environ)
    if tree:
        env["PYTHONPATH"] = tree + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)
    if done.returncode:
        return "error: " + (done.stderr.strip().splitlines() or ["?"])[-1]
    return done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--side", type=int, default=12000)
    parser.add_argument("--max-pixels", type=int, default=16_000_000)
    parser.add_argument("--tree", default=None, help="another facerep checkout to read with")
    parser.add_argument("--folder", default=None, help="where to make the images (default: a temp folder)")
    args = parser.parse_args()
    folder = Path(args.folder or tempfile.mkdtemp(prefix="huge-image-"))
    folder.mkdir(parents=True, exist_ok=True)
    images = {"RGB JPEG": "rgb.jpg", "RGB PNG": "rgb.png", "16-bit grey PNG": "grey16.png"}
    for kind, name in images.items():
        path = folder / name
        if not path.exists():
            start = time.perf_counter()
            _child(MAKE, [str(args.side), str(path), "grey16" if "16" in kind else "rgb"], None)
            print(f"made {path} ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - start:.0f} s")
    base = _child(READ, ["none", "", "1"], args.tree).split()[0]
    baseline_kib = int(base)
    print(
        f"\nfacerep: {args.tree or 'this checkout'}; {args.side} x {args.side} px; imports alone peak at "
        f"{baseline_kib / 1024:.0f} MiB\n"
    )
    print("| image | reader | peak above imports (MiB) | seconds | result size |")
    print("|---|---|---:|---:|---|")
    for kind, name in images.items():
        for what in ("load_image", "load_image_within", "load_face_photo"):
            out = _child(READ, [what, str(folder / name), str(args.max_pixels)], args.tree)
            if out.startswith("error"):
                print(f"| {kind} | {what} | {out} | | |")
                continue
            peak, seconds, size = out.split(maxsplit=2)
            extra = (int(peak) - baseline_kib) / 1024
            print(f"| {kind} | {what} | {extra:.0f} | {float(seconds):.1f} | {size} |")


if __name__ == "__main__":
    main()
