"""Monitor a served model from its prediction log: ``python -m catdog_sk.monitor --help``."""

import time
from pathlib import Path

from . import _cli
from .monitoring import DEFAULT_MAX_DOMAIN_AUC, DEFAULT_MAX_PSI, DEFAULT_UNKNOWN_ALPHA


def build_parser():
    """The ``monitor`` command's argument parser (``--help`` shows every option).

    Returns
    -------
    parser : argparse.ArgumentParser
    """
    parser = _cli.make_parser(
        "monitor",
        "Report on a served model's prediction log: volume and latency percentiles, class balance, "
        "confidence, drift of the score distribution against the model card's test-set reference "
        "(PSI and a KS test), embedding drift (a domain classifier's AUC), the share answered 'unknown' "
        "against the test set's, and live accuracy from feedback with a Wilson interval. Writes index.html "
        "(open it in a browser), monitor.md (also printed), monitor.json and monitor.png into --out; "
        "alerts are listed under 'Alerts' in each, and the page opens with 'Alerts raised' or 'No alert'.",
        epilog="Exit status: 0 no alert, 1 failure (e.g. the log cannot be read), 2 usage error, "
               f"{_cli.EXIT_ALERT} an alert threshold was crossed (the report is written).",
    )
    parser.add_argument("--db", "--log-db", dest="db", required=True, metavar="URL",
                        help="the prediction log serve writes: a SQLite file, sqlite:///path, or "
                             "postgresql://user@host:port/db for the whole traffic of several servers")
    parser.add_argument("--model", metavar="PATH", help="model directory, for the reference score distribution")
    parser.add_argument("--since", type=_cli.real(0, open_low=True), metavar="HOURS", help="only the last HOURS hours")
    parser.add_argument("--out", metavar="DIR", default="artifacts/reports/monitor", help="report directory")
    parser.add_argument("--max-psi", type=_cli.real(0), default=DEFAULT_MAX_PSI, metavar="X", help="alert above this PSI")
    parser.add_argument("--min-live-accuracy", type=_cli.real(0, 1), default=None, metavar="X",
                        help="alert when the upper end of the live-accuracy CI is below this")
    parser.add_argument("--max-p99-ms", type=_cli.real(0), default=None, metavar="MS", help="alert above this p99 latency")
    parser.add_argument("--max-domain-auc", type=_cli.real(0, 1), default=DEFAULT_MAX_DOMAIN_AUC, metavar="X",
                        help="alert when a classifier tells live embeddings from the reference with AUC above this")
    parser.add_argument("--unknown-alpha", type=_cli.real(0, 1, open_low=True, open_high=True), default=DEFAULT_UNKNOWN_ALPHA, metavar="A",
                        help="alert when a one-sided binomial test says the share answered 'unknown' is above "
                             f"the test set's at this significance level (default {DEFAULT_UNKNOWN_ALPHA})")
    return parser


def main(argv=None):
    """Run ``python -m catdog_sk.monitor``: drift and quality of a prediction log against the model's reference.

    Parameters
    ----------
    argv : list of str, default=None
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    status : int
        The exit status: 0 no alert, 1 failure, 2 usage error, 4 an alert threshold was crossed.
    """
    parser = build_parser()

    def body(args):
        from .models.card import CARD_FILE, ModelCard
        from .monitoring import find_alerts, load_log, load_reference, previous_window, summarize, write_monitor_report
        from .monitoring.log import PredictionLog

        ref = {"classes": ["cat", "dog"], "reference_embeddings": None,
               "reference_notes": ["no --model: score, presence, 'unknown' and embedding drift were not checked "
                                   "(they compare traffic with the model's test-set reference)"]}
        if args.model:
            card_path = Path(args.model) / CARD_FILE
            if not card_path.is_file():
                parser.error(f"--model: no {CARD_FILE} in {args.model}")
            ref = load_reference(args.model, ModelCard.load(card_path))
        classes = ref["classes"]
        since = time.time() - 3600 * args.since if args.since else None
        rows = load_log(args.db, since=since)
        live_emb = widths = None
        if ref["reference_embeddings"] is not None:
            log = PredictionLog(args.db, create=False)
            live_emb, widths = log.embedding_sample(since=since, width=ref["reference_embeddings"].shape[1])
        summary = summarize(rows, live_embeddings=live_emb, unknown_alpha=args.unknown_alpha, embedding_widths=widths,
                            **ref)
        if since is not None:  # the window before, so that a gradual change shows too
            earlier = [r for r in load_log(args.db, since=since - 3600 * args.since) if r["time"] < since]
            summary["previous_window"] = previous_window(earlier, rows, classes=classes)
        alerts = find_alerts(summary, max_psi=args.max_psi, max_domain_auc=args.max_domain_auc,
                             min_live_accuracy=args.min_live_accuracy, max_p99_ms=args.max_p99_ms)
        summary["alerts"] = alerts
        write_monitor_report(args.out, rows, summary, classes=classes, reference_scores=ref.get("reference_scores"),
                             reference_presence=ref.get("reference_presence"))
        if args.json:
            _cli.emit_json(summary)
        else:
            print(Path(args.out, "monitor.md").read_text(), end="")
        return _cli.EXIT_ALERT if alerts else 0

    return _cli.run(body, parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
