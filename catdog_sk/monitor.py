"""Monitor a served model from its prediction log: ``python -m catdog_sk.monitor --help``."""

import time
from pathlib import Path

from . import _cli


def build_parser():
    parser = _cli.make_parser(
        "monitor",
        "Report on a served model's prediction log: volume and latency percentiles, class balance, "
        "confidence, drift of the score distribution against the model card's test-set reference "
        "(PSI and a KS test), and live accuracy from feedback with a Wilson interval. Writes "
        "monitor.md, monitor.json and monitor.png.",
        epilog="Exit status: 0 no alert, 1 an alert threshold was crossed (or failure), 2 usage error.",
    )
    parser.add_argument("--db", required=True, metavar="FILE", help="SQLite prediction log written by serve")
    parser.add_argument("--model", metavar="PATH", help="model directory, for the reference score distribution")
    parser.add_argument("--since", type=float, metavar="HOURS", help="only the last HOURS hours")
    parser.add_argument("--out", metavar="DIR", default="artifacts/reports/monitor", help="report directory")
    parser.add_argument("--max-psi", type=float, default=0.25, metavar="X", help="alert above this PSI")
    parser.add_argument("--min-live-accuracy", type=float, default=None, metavar="X",
                        help="alert when the upper end of the live-accuracy CI is below this")
    parser.add_argument("--max-p99-ms", type=float, default=None, metavar="MS", help="alert above this p99 latency")
    parser.add_argument("--max-domain-auc", type=float, default=0.75, metavar="X",
                        help="alert when a classifier tells live embeddings from the reference with AUC above this")
    return parser


def main(argv=None):
    parser = build_parser()

    def body(args):
        import json

        import numpy as np

        from .monitoring import REFERENCE_EMBEDDINGS, load_log, summarize, write_monitor_report
        from .serving import PredictionLog

        classes, reference, ref_emb = ["cat", "dog"], None, None
        if args.model:
            card_path = Path(args.model) / "model_card.json"
            if not card_path.is_file():
                parser.error(f"--model: no model_card.json in {args.model}")
            card = json.loads(card_path.read_text())
            classes = card.get("classes", classes)
            reference = card.get("reference", {}).get("p_positive")
            if (Path(args.model) / REFERENCE_EMBEDDINGS).is_file():
                ref_emb = np.load(Path(args.model) / REFERENCE_EMBEDDINGS, allow_pickle=False)
        since = time.time() - 3600 * args.since if args.since else None
        rows = load_log(args.db, since=since)
        live_emb = PredictionLog(args.db).embeddings(since=since) if ref_emb is not None else None
        summary = summarize(rows, classes=classes, reference_scores=reference, reference_embeddings=ref_emb,
                            live_embeddings=live_emb)
        alerts = []
        drift = summary.get("drift")
        if drift and drift["psi"] > args.max_psi:
            alerts.append(f"score drift: PSI {drift['psi']:.3f} > {args.max_psi}")
        live = summary.get("live_accuracy")
        if live and args.min_live_accuracy is not None and live["ci95"][1] < args.min_live_accuracy:
            alerts.append(f"live accuracy CI {live['ci95'][0]:.3f}-{live['ci95'][1]:.3f} is below "
                          f"{args.min_live_accuracy}")
        emb = summary.get("embedding_drift", {})
        if emb.get("domain_classifier_auc", 0) > args.max_domain_auc:
            alerts.append(f"embedding drift: domain-classifier AUC {emb['domain_classifier_auc']:.3f} > "
                          f"{args.max_domain_auc}")
        if rows and args.max_p99_ms is not None and summary["latency_ms"]["p99"] > args.max_p99_ms:
            alerts.append(f"p99 latency {summary['latency_ms']['p99']:.1f} ms > {args.max_p99_ms} ms")
        summary["alerts"] = alerts
        write_monitor_report(args.out, rows, summary, classes=classes, reference_scores=reference)
        if args.json:
            _cli.emit_json(summary)
        else:
            print(Path(args.out, "monitor.md").read_text(), end="")
        return 1 if alerts else 0

    return _cli.run(body, parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
