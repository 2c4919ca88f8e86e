"""Issue 29's cheap ideas, side by side with the default model, on the sets of ``bench_domains.py``.

Usage::

    python benchmarks/bench_domain_ideas.py [--data ../shared/data] [--n-small 300] [--cache DIR]
                                            [--json-out artifacts/bench/domain_ideas.json]

Every variant is the bundled model's configuration (Lite0 + Lite2 ``cnn`` features, logistic regression
C=100 unscaled, ``unknown='auto'``) refitted on the 2,000 shared ``train/`` photos, with the fitted half
of animals10's other animals and the offline check set as photos of neither (seed 0), then changed in
one way:

- ``flip TTA``: the head's probabilities and the presence margins averaged over each photo and its mirror
  image (twice the network time at predict);
- ``head guard``: where the ImageNet head's log-odds of "dog breed or domestic cat" exceed the highest any
  fitted photo of neither reached, the learned presence part cannot say ``unknown`` (the head's veto stays);
- ``presence + small copies``: two downscaled copies (short side log-uniform in 32..160 px, seeded) of
  every training pet and every fitted photo of neither added to the presence model; its operating points
  still set on the original training pets (out-of-fold, a photo and its copies in one fold);
- ``head + small copies, C``: the same copies of the training pets added to the cat/dog head, with that C;
- ``presence + breeds half``: breeds/ split by content hash (seed 0, per class, as negatives are split);
  one half added to the presence model's pets, operating points on the Asirra pets; the ``breeds`` column
  is then the other half only.

Columns: wrong class / ``unknown`` for pets, ``unknown`` for other animals (the held-out half of animals10,
also downscaled to 64 px). All features come from the feature cache (the copies are arrays, cached by
content), so a second run embeds nothing.
"""

import argparse
import time
from pathlib import Path

import numpy as np

from _report import BENCH_DIR, SHARED, write_report

COPY_SIDES = (32, 160)


def small_copies(items, n_copies, seed):
    """``n_copies`` downscaled copies of each item (paths or arrays), sides log-uniform in COPY_SIDES."""
    from catdog_sk._testing import downscaled

    rng = np.random.default_rng(seed)
    lo, hi = np.log(COPY_SIDES[0]), np.log(COPY_SIDES[1])
    return [[downscaled(item, int(round(np.exp(rng.uniform(lo, hi))))) for item in items] for _ in range(n_copies)]


def main(argv=None):
    from catdog_sk import CatDogClassifier, load_pretrained
    from catdog_sk._testing import answer_rates, domain_sets, downscaled
    from catdog_sk.checkset import negative_images
    from catdog_sk.data import Negatives, content_hashes, find_negatives, load_dataset
    from catdog_sk.features import default_cache_dir
    from catdog_sk.models._presence import head_log_odds

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(SHARED.parent), metavar="DIR",
                        help="the shared data folder with catsdogs/, breeds/ and animals10/ (default: %(default)s)")
    parser.add_argument("--n-small", type=int, default=300, metavar="N",
                        help="shared test photos downscaled per size; 0: all (default: 300)")
    parser.add_argument("--copies", type=int, default=2, help="downscaled copies per training photo (default: 2)")
    parser.add_argument("--cache", default=str(default_cache_dir()), metavar="DIR",
                        help="feature cache (default: %(default)s)")
    parser.add_argument("--json-out", default=str(BENCH_DIR / "domain_ideas.json"), metavar="FILE")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    base = load_pretrained()
    layout = base.feature_layout()

    def features(items):
        return base.featurize(items, cache=args.cache).features

    def mirror(item):
        from catdog_sk.preprocess import read_image

        return np.ascontiguousarray(read_image(item)[:, ::-1])

    root = Path(args.data)
    train = load_dataset(root / "catsdogs")["train"]
    fitted, _ = find_negatives(root / "animals10").split(0.5, random_state=0)
    neg_items = negative_images(fitted.paths, random_state=0)
    F_train, y_train = features(train.paths), np.asarray(train.labels, dtype=object)
    F_neg = features(neg_items)
    copies_train = [features(c) for c in small_copies(train.paths, args.copies, seed=1)]
    copies_neg = [features(c) for c in small_copies(neg_items, args.copies, seed=2)]
    sets = {}
    for name, items, truth in domain_sets(root, fitted_negatives=base.negatives_sha256_,
                                          n_small=args.n_small or None):
        sets[name] = (features(items), features([mirror(i) for i in items]), truth)
        if name == "a10-others-held":
            sets["a10-others-held-64px"] = (features([downscaled(p, 64) for p in items]), None, None)
        if name == "breeds":
            breeds_sha = content_hashes(items)
    half, _ = Negatives([str(i) for i in range(len(breeds_sha))], [str(t) for t in sets["breeds"][2]], breeds_sha,
                        "breeds").split(0.5, random_state=0)
    in_half = np.zeros(len(breeds_sha), bool)
    in_half[[int(i) for i in half.paths]] = True

    def refit(C=None, head_extra=(), pets=(), negs=(), operating_extra=False):
        """The bundled configuration refitted; extra rows for the head and for the presence model."""
        clf = CatDogClassifier(**{**base.get_params(), **({} if C is None else {"C": C})})
        clf.fit_features(np.vstack([F_train, *head_extra]), np.concatenate([y_train] * (1 + len(head_extra))),
                         negatives=F_neg)
        if pets or negs or head_extra:  # the presence model sees the head's extra rows only when asked
            from catdog_sk.models import PresenceDetector

            P, N = np.vstack([F_train, *[p for p, _ in pets]]), np.vstack([F_neg, *negs])
            # a photo and its copies in one fold: the copies' groups repeat the originals' numbers
            groups = np.concatenate([np.arange(len(F_train)), *[g for _, g in pets],
                                     *[len(P) + np.arange(len(F_neg)) for _ in range(1 + len(negs))]])
            operating = np.r_[np.ones(len(F_train), bool), np.full(len(P) - len(F_train), operating_extra),
                              np.zeros(len(N), bool)]
            _, E, H = layout.split(np.vstack([P, N]))
            extra = {"groups": groups, "operating": operating} if pets or negs else {}  # else as fit_features
            clf.presence_ = PresenceDetector(random_state=base.random_state).fit(
                E, H, np.r_[np.ones(len(P), bool), np.zeros(len(N), bool)], **extra)
        return clf

    def answers(clf, F, F_mirror=None, guard=None):
        C, E, H = layout.split(F)
        proba, margins = clf.pipeline_.predict_proba(C), clf.presence_.margins(E, H)
        if F_mirror is not None:
            C2, E2, H2 = layout.split(F_mirror)
            proba = (proba + clf.pipeline_.predict_proba(C2)) / 2
            margins = (margins + clf.presence_.margins(E2, H2)) / 2
        learned, veto = margins[:, 0], margins[:, 1]
        if guard is not None:
            learned = np.where(head_log_odds(H) >= guard, np.maximum(learned, 0.0), learned)
        labels = clf.classes_[np.argmax(proba, axis=1)].astype(object)
        labels[np.minimum(learned, veto) < 0] = "unknown"
        return labels

    same_photo = np.arange(len(F_train))
    guard = float(head_log_odds(layout.split(F_neg)[2]).max())
    default = refit()
    variants = {
        "default (refitted)": (default, {}),
        "flip TTA": (default, {"flip": True}),
        f"head guard (head log-odds >= {guard:.2f})": (default, {"guard": guard}),
        f"presence + {args.copies} small copies": (refit(pets=[(c, same_photo) for c in copies_train],
                                                          negs=copies_neg), {}),
        f"head + {args.copies} small copies, C=100": (refit(head_extra=copies_train), {}),
        f"head + {args.copies} small copies, C=10": (refit(C=10.0, head_extra=copies_train), {}),
        "head C=10, no copies": (refit(C=10.0), {}),
        "presence + breeds half (breeds: other half)": (
            refit(pets=[(sets["breeds"][0][in_half], 10**6 + np.arange(in_half.sum()))]), {"breeds_half": True}),
    }
    rows = []
    for title, (clf, how) in variants.items():
        row = {"variant": title}
        for name, (F, F_mirror, truth) in sets.items():
            if how.get("breeds_half") and name == "breeds":
                F, F_mirror, truth = F[~in_half], F_mirror[~in_half], truth[~in_half]
            labels = answers(clf, F, F_mirror if how.get("flip") and F_mirror is not None else None, how.get("guard"))
            row[name] = answer_rates(labels, truth)
        rows.append(row)
    names = list(sets)
    print("| variant | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for row in rows:
        cells = [f"{100 * row[n]['unknown']:.2f}" if n.startswith("a10-others")
                 else f"{100 * row[n]['wrong']:.2f} / {100 * row[n]['unknown']:.2f}" for n in names]
        print(f"| {row['variant']} | " + " | ".join(cells) + " |")
    print(f"(pets: wrong class / `unknown`, %; other animals: `unknown`, %; {time.perf_counter() - started:.0f} s)")
    write_report({"n_small": args.n_small, "copies": args.copies, "copy_sides": COPY_SIDES, "guard": guard,
                  "rows": rows}, args.json_out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
