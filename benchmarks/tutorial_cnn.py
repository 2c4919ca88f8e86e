"""The tutorial way to embed a folder of photos with a frozen CNN: the baseline of bench_process.py.

Usage::

    python benchmarks/tutorial_cnn.py PHOTO_FOLDER OUT.npy

PIL decode, torchvision Resize(256, bicubic) / CenterCrop(224) / ToTensor / Normalize(0.5), eager timm
``tf_efficientnet_lite0`` with the ImageNet weights catdog_sk bundles (the tutorial would download the same
ones), batches of 64 under ``torch.inference_mode``; the embeddings are saved with ``np.save``.
"""

import sys
from pathlib import Path

import numpy as np


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        raise SystemExit(__doc__)
    folder, out = argv
    paths = sorted(str(p) for p in Path(folder).rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_cnn import naive_embeddings

    np.save(out, naive_embeddings(paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
