"""Whole processes: ``python -m catdog_sk.extract --features cnn`` vs a tutorial script, marginal rate.

Usage::

    python benchmarks/bench_process.py [--small 64] [--large 512] [--repeat 2]
        [--json-out artifacts/bench/process.json]

Each side runs as a fresh process on the same shared ``train/`` photos (a seeded sample, half cats, half
dogs, linked into a temporary folder), once on ``--small`` photos and once on ``--large``:

* catdog_sk: ``python -m catdog_sk.extract --features cnn --backbone efficientnet_lite0 --cache <empty>``
  (its defaults otherwise: OpenVINO float32, the ImageNet head's columns, written to a new feature cache);
* the tutorial: ``benchmarks/tutorial_cnn.py`` (PIL decode, torchvision Resize(256, bicubic) /
  CenterCrop(224) / ToTensor / Normalize, eager timm ``tf_efficientnet_lite0`` with the same weights,
  batches of 64, the embeddings saved with ``np.save``).

The marginal rate, ``(large - small) / (seconds(large) - seconds(small))``, is what each extra photo costs
once the process has started (imports, building or loading the network): the issue-28 bar is catdog_sk's
marginal rate at least 8x the tutorial's. Runs are interleaved, ``--repeat`` times each, the fastest counts;
the start-up seconds (the intercept) are printed too.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from _report import BENCH_DIR, HERE, SHARED, write_report


def sample_folder(root, n, seed=0):
    """A folder of ``n`` shared train photos (symbolic links, ``cats/`` and ``dogs/``), half of each."""
    folder = os.path.join(root, f"photos-{n}")
    for cls in ("cats", "dogs"):
        names = sorted(os.listdir(SHARED / "train" / cls))
        chosen = np.random.RandomState(seed).choice(len(names), size=n // 2, replace=False)
        os.makedirs(os.path.join(folder, cls))
        for i in sorted(chosen):
            os.symlink(SHARED / "train" / cls / names[i], os.path.join(folder, cls, names[i]))
    return folder


def ours_command(folder, cache):
    return [sys.executable, "-m", "catdog_sk.extract", "--data", folder, "--features", "cnn",
            "--backbone", "efficientnet_lite0", "--cache", cache, "-q"]


def tutorial_command(folder, out):
    return [sys.executable, str(HERE / "tutorial_cnn.py"), folder, out]


def run_seconds(command):
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=64, help="photos in the small run (default 64)")
    parser.add_argument("--large", type=int, default=512, help="photos in the large run (default 512)")
    parser.add_argument("--repeat", type=int, default=2, metavar="N",
                        help="runs of each process, interleaved; the fastest counts (default 2)")
    parser.add_argument("--json-out", default=str(BENCH_DIR / "process.json"))
    args = parser.parse_args(argv)
    if not 2 <= args.small < args.large <= 2000:
        parser.error(f"need 2 <= --small < --large <= 2000; got {args.small} and {args.large}")

    with tempfile.TemporaryDirectory(prefix="catdog-bench-process-") as root:
        folders = {n: sample_folder(root, n) for n in (args.small, args.large)}
        # One run each beforehand, untimed: the OpenVINO model file is converted once per machine.
        run_seconds(ours_command(folders[args.small], os.path.join(root, "warm-cache")))
        run_seconds(tutorial_command(folders[args.small], os.path.join(root, "warm.npy")))
        best = {}
        for k in range(args.repeat):
            for n, folder in folders.items():
                for side, command in (("catdog_sk", ours_command(folder, os.path.join(root, f"cache-{n}-{k}"))),
                                      ("tutorial", tutorial_command(folder, os.path.join(root, f"t-{n}-{k}.npy")))):
                    seconds = run_seconds(command)
                    best[side, n] = min(best.get((side, n), float("inf")), seconds)
    rows = {}
    extra = args.large - args.small
    for side in ("tutorial", "catdog_sk"):
        small, large = best[side, args.small], best[side, args.large]
        marginal = extra / (large - small)
        rows[side] = {"small_s": small, "large_s": large, "marginal_img_s": marginal,
                      "startup_s": small - args.small / marginal}
    ratio = rows["catdog_sk"]["marginal_img_s"] / rows["tutorial"]["marginal_img_s"]
    print(f"{'process':<12}{args.small:>6} photos{args.large:>6} photos{'marginal img/s':>16}{'start-up s':>12}")
    for side, r in rows.items():
        print(f"{side:<12}{r['small_s']:>12.1f} s{r['large_s']:>12.1f} s{r['marginal_img_s']:>16.1f}"
              f"{r['startup_s']:>12.1f}")
    print(f"catdog_sk.extract --features cnn / tutorial script, marginal rate: {ratio:.2f}x (target >= 8x: "
          f"{'met' if ratio >= 8 else 'not met'})")
    write_report({"small": args.small, "large": args.large, "repeat": args.repeat, "rows": rows,
                  "marginal_ratio": ratio}, args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
