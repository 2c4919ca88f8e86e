"""Right, wrong-class and ``unknown`` rates of a model on pets beyond Asirra, tiny photos and other animals.

Usage::

    python benchmarks/bench_domains.py [--model DIR] [--data ../shared/data] [--n-small 300]
                                       [--sides 32,48,64,96,128] [--by-class] [--cache DIR]
                                       [--json-out artifacts/bench/domains.json]

The model is the bundled one (``catdog_sk.load_pretrained()``: ``make demo``'s Lite0 + Lite2 with half of
animals10 as negatives) unless ``--model`` names a saved one. It answers, through the one decision path
(``predict_features``), each of issue 29's sets (``catdog_sk._testing.domain_sets``):

- ``test``: the 2,000 shared test photos (Asirra);
- ``breeds``: the 600 breed photos (300 stock cat-breed photos, 300 from a dog-breed set);
- ``a10-pets-held`` / ``a10-pets``: animals10's web cats and dogs (never fitted on), the half that the
  negatives' seeded split by content hash holds out (32), and all 64;
- ``a10-others-held``: animals10's other animals the model was not fitted on (128); right = ``unknown``;
- ``test-<N>px``: ``--n-small`` shared test photos (half cats, half dogs, seed 0; 0 = all 2,000) with the
  short side brought down to N px (bicubic, antialiased, never upscaled), passed as arrays (no second JPEG
  compression).

Each photo is answered as ``predict`` answers it: one whose shorter side is below the model's ``min_side``
(32 px by default) is 'unknown' with the reason 'too_small' (the ``too_small`` column), whatever the network
says. ``--min-side 0`` measures the network's own answers at every size (how the threshold was chosen).

Features come from the feature cache (default: the command-line tools' ``artifacts/cache``), so a second
run, or another model with the same backbones, embeds nothing again. Prints a Markdown table.
"""

import argparse
import time

import numpy as np

from _report import BENCH_DIR, SHARED, write_report


def main(argv=None):
    from catdog_sk import load_pretrained
    from catdog_sk._testing import DOWNSCALE_SIDES, answer_rates, domain_sets
    from catdog_sk.features import default_cache_dir
    from catdog_sk.models import load_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", metavar="DIR", help="a saved model folder (default: the bundled model)")
    parser.add_argument("--data", default=str(SHARED.parent), metavar="DIR",
                        help="the shared data folder with catsdogs/, breeds/ and animals10/ (default: %(default)s)")
    parser.add_argument("--n-small", type=int, default=300, metavar="N",
                        help="shared test photos downscaled per size, half of each class; 0: all (default: 300)")
    parser.add_argument("--sides", default=",".join(map(str, DOWNSCALE_SIDES)), metavar="PX,...",
                        help="short sides of the downscaled copies (default: %(default)s)")
    parser.add_argument("--by-class", action="store_true", help="also a row per class of each pet set")
    parser.add_argument("--cache", default=str(default_cache_dir()), metavar="DIR",
                        help="feature cache (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the downscaled sample (default: 0)")
    parser.add_argument("--min-side", type=int, default=None, metavar="PX",
                        help="answer 'unknown' (too_small) below this shorter side; 0: no size rule "
                             "(default: the model's min_side)")
    parser.add_argument("--json-out", default=str(BENCH_DIR / "domains.json"), metavar="FILE")
    args = parser.parse_args(argv)

    clf = load_model(args.model) if args.model else load_pretrained()
    if args.min_side is not None:
        clf.set_params(min_side=args.min_side or None)  # the fitted model's rule, changed in place: no refit
    sides = [int(s) for s in args.sides.split(",") if s]
    rows, started = [], time.perf_counter()
    sets = domain_sets(args.data, fitted_negatives=getattr(clf, "negatives_sha256_", ()), sides=sides,
                       n_small=args.n_small or None, seed=args.seed)
    for name, items, truth in sets:
        t0 = time.perf_counter()
        res = clf.featurize(items, cache=args.cache)
        decision = clf.predict_features(res.features, sides=res.sides)
        labels = decision.labels
        seconds = time.perf_counter() - t0
        rows.append({"set": name, **answer_rates(labels, truth), "too_small": float(np.mean(decision.reasons
                                                                                             == "too_small")),
                     "seconds": round(seconds, 1)})
        if args.by_class and truth is not None:
            for c in ("cat", "dog"):
                mask = truth == c
                rows.append({"set": f"{name} {c}s", **answer_rates(labels[mask], truth[mask]),
                             "too_small": float(np.mean(decision.reasons[mask] == "too_small"))})

    def pct(v):
        return "" if v is None else f"{100 * v:.2f}%"

    print(f"model: {args.model or 'bundled (load_pretrained())'}; backbone {clf.backbone}; min_side {clf.min_side}")
    print("| set | photos | right | wrong class | `unknown` | right of answered | `too_small` |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['set']} | {r['n']} | {pct(r['right'])} | {pct(r['wrong'])} | {pct(r['unknown'])} "
              f"| {pct(r['answered_right'])} | {pct(r['too_small'])} |")
    print(f"({time.perf_counter() - started:.0f} s; other animals: right = `unknown`, wrong class = called cat "
          f"or dog)")
    write_report({"model": args.model or "bundled", "backbone": clf.backbone, "min_side": clf.min_side,
                  "n_small": args.n_small,
                  "sides": sides, "rows": rows}, args.json_out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
