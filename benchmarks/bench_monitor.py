"""How often the monitoring alerts fire without a shift (false alarms) and with one (detection), side by side.

Usage::

    python benchmarks/bench_monitor.py [--replicates 200] [--embedding-replicates 10]
                                       [--json-out artifacts/bench/monitor.json]

A model like ``make demo``'s default (Lite0 + Lite2, logistic regression C=100 unscaled, ``unknown='auto'``)
is fitted on the shared ``train/`` photos with half of animals10's other animals as negatives (seed 0).
Its decisions on the shared ``test/`` photos are the reference (as in the model card). Traffic is then
replayed through the library, exactly as ``monitor`` summarises a prediction log: bootstrap samples of
100 and 500 predictions drawn from

- no shift: the shared test photos only;
- shifts of 10%, 30% and 60%: that share drawn from the animals10 photos not used for fitting (the
  held-out half of the other animals and all web cats and dogs), or from scikit-image / scikit-learn
  sample photos and crops (``catdog_sk.checkset``, another seed than the fitted one), the rest from the
  test photos.

For each signal and its default rule it reports the share of replicates that alert: the false-alarm
rate (no shift) and the detection rate (shifts). The embedding signals (domain-classifier AUC, MMD²)
cost a cross-validated fit each, so they run on fewer replicates.
"""

import argparse
import json

import numpy as np

from _report import BENCH_DIR, SHARED, write_report

SIZES = (100, 500)
SHIFTS = (0.1, 0.3, 0.6)


def low_confidence_test(k, n, reference_rate, alpha):
    """Candidate rule for the confidence signal: one-sided binomial test of the share below 0.8."""
    from catdog_sk.monitoring import unknown_share_test

    return unknown_share_test(k, n, reference_rate, alpha=alpha)["alert"]


def main(argv=None):
    from catdog_sk import CatDogClassifier
    from catdog_sk.checkset import non_animal_images
    from catdog_sk.data import find_images, find_negatives, load_dataset
    from catdog_sk.features import default_cache_dir
    from catdog_sk.monitoring import (DEFAULT_MAX_DOMAIN_AUC, DEFAULT_MAX_PSI, DEFAULT_UNKNOWN_ALPHA,
                                      domain_classifier_auc, mmd_rbf, summarize)

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(SHARED))
    parser.add_argument("--animals10", default=str(SHARED.parent / "animals10"))
    parser.add_argument("--cache", default=str(default_cache_dir()))
    parser.add_argument("--replicates", type=int, default=200)
    parser.add_argument("--embedding-replicates", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json-out", default=str(BENCH_DIR / "monitor.json"))
    args = parser.parse_args(argv)

    splits = load_dataset(args.data)
    train, test = splits["train"], splits["test"]
    used, held = find_negatives(args.animals10).split(0.5, random_state=args.seed)
    clf = CatDogClassifier(backbone="efficientnet_lite0+efficientnet_lite2", C=100.0, scale=None, unknown="auto",
                           cache=args.cache, random_state=args.seed).fit(train.paths, train.labels,
                                                                        negatives=used.paths)
    a10_pets = find_images(args.animals10).paths
    _, samples = non_animal_images(random_state=args.seed + 1)

    def pool(images):
        F = clf.featurize(images).features
        d = clf.predict_features(F)
        emb = clf.split_features(F)[1]
        return {"labels": d.labels.astype(str), "proba": d.proba, "presence": d.presence, "emb": emb}

    ref = pool(test.paths)
    pools = {"animals10": pool(held.paths + a10_pets), "sample photos": pool(samples)}
    ref_unknown = float(np.mean(ref["labels"] == "unknown"))
    ref_low_conf = float(np.mean(ref["proba"].max(axis=1) < 0.8))
    rng = np.random.RandomState(args.seed)
    ref_emb = ref["emb"][rng.choice(len(ref["emb"]), size=500, replace=False)]
    classes = [str(c) for c in clf.classes_]

    def replay(n, source, share, with_embeddings):
        k = int(round(n * share))
        take = [("test", i) for i in rng.randint(0, len(ref["labels"]), size=n - k)]
        if k:
            take += [(source, i) for i in rng.randint(0, len(pools[source]["labels"]), size=k)]
        rows, emb = [], []
        for name, i in take:
            p = ref if name == "test" else pools[name]
            rows.append({"time": 0.0, "latency_ms": 10.0, "label": p["labels"][i], "true_label": None,
                         "presence": float(p["presence"][i]),
                         "probabilities": json.dumps(dict(zip(classes, map(float, p["proba"][i]))))})
            emb.append(p["emb"][i])
        s = summarize(rows, classes=classes, reference_scores=ref["proba"][:, 1],
                      reference_presence=ref["presence"], reference_unknown_rate=ref_unknown)
        low = sum(max(json.loads(r["probabilities"]).values()) < 0.8 for r in rows)
        out = {"score PSI > 0.10": s["drift"]["psi"] > 0.10,
               "score PSI > %.2f" % DEFAULT_MAX_PSI: s["drift"]["psi"] > DEFAULT_MAX_PSI,
               "score KS p < 0.001": s["drift"]["ks_pvalue"] < 0.001,
               "'unknown' share, binomial p < %g" % DEFAULT_UNKNOWN_ALPHA: s["unknown"]["alert"],
               "presence KS p < 0.001": s["presence_drift"]["ks_pvalue"] < 0.001,
               "confidence < 0.8 share, binomial p < %g" % DEFAULT_UNKNOWN_ALPHA:
                   low_confidence_test(low, n, ref_low_conf, DEFAULT_UNKNOWN_ALPHA)}
        if with_embeddings:
            live = np.asarray(emb)
            auc = domain_classifier_auc(ref_emb, live)
            for threshold in sorted({0.6, 0.65, DEFAULT_MAX_DOMAIN_AUC}):
                out["embedding AUC > %.2f" % threshold] = auc > threshold
            out["_mmd2"] = mmd_rbf(ref_emb, live)
        return out

    conditions = [("no shift", "animals10", 0.0)] + [(f"{int(100 * f)}% {src}", src, f)
                                                    for src in pools for f in SHIFTS]
    table = []
    for n in SIZES:
        for label, source, share in conditions:
            counts, emb_counts, mmd = {}, {}, []
            for r in range(args.replicates):
                with_emb = r < args.embedding_replicates
                for key, fired in replay(n, source, share, with_emb).items():
                    if key == "_mmd2":
                        mmd.append(fired)
                    elif key.startswith("embedding"):
                        emb_counts[key] = emb_counts.get(key, 0) + bool(fired)
                    else:
                        counts[key] = counts.get(key, 0) + bool(fired)
            rates = {k: v / args.replicates for k, v in counts.items()}
            rates.update({k: v / max(args.embedding_replicates, 1) for k, v in emb_counts.items()})
            table.append({"n": n, "traffic": label, "alert_rate": rates, "mmd2_mean": float(np.mean(mmd))})
            print(f"n={n:<4} {label:<20} " + "  ".join(f"{k}: {v:.2f}" for k, v in rates.items())
                  + f"  MMD² mean {np.mean(mmd):.4f}", flush=True)
    signals = list(table[0]["alert_rate"])
    print("\n| n | traffic | " + " | ".join(signals) + " |")
    print("|---|---|" + "---|" * len(signals))
    for row in table:
        print(f"| {row['n']} | {row['traffic']} | " + " | ".join(f"{row['alert_rate'][s]:.2f}" for s in signals) + " |")
    report = {"replicates": args.replicates, "embedding_replicates": args.embedding_replicates,
              "reference_unknown_rate": ref_unknown, "reference_low_confidence_share": ref_low_conf,
              "pools": {k: int(len(v["labels"])) for k, v in pools.items()},
              "pool_unknown_rate": {k: float(np.mean(v["labels"] == "unknown")) for k, v in pools.items()},
              "table": table}
    write_report(report, args.json_out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
