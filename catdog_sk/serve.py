"""Serve a saved model over HTTP: ``python -m catdog_sk.serve --help``."""

from pathlib import Path

from . import _cli


def build_parser():
    """The ``serve`` command's argument parser (``--help`` shows every option).

    Returns
    -------
    parser : argparse.ArgumentParser
    """
    parser = _cli.make_parser(
        "serve",
        "Serve a saved model over HTTP (FastAPI + uvicorn): POST /predict (multipart or base64 JSON), "
        "POST /feedback, GET /health, /ready, /metrics (Prometheus) and a web page at /.",
        epilog="Exit status: 0 after a clean shutdown, 1 failure (e.g. the model cannot be loaded), 2 usage error.",
        json_results=False,  # it prints no result
    )
    _cli.add_model_args(parser)
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=_cli.integer(1, 65535), default=8000, help="TCP port")
    parser.add_argument("--log-db", metavar="URL",
                        help="the prediction log (predictions, feedback and the uploads kept for retraining): a "
                             "SQLite file or sqlite:///path (default: prediction_log.sqlite beside the model; for "
                             "the bundled model, artifacts/prediction_log.sqlite), or postgresql://user@host:port/db "
                             "for one log shared by several servers; while it is unreachable, rows wait in memory")
    parser.add_argument("--max-upload-mb", type=_cli.real(0, open_low=True), default=10.0, help="larger uploads get HTTP 413")
    parser.add_argument("--timeout", type=_cli.real(0), default=30.0, metavar="SECONDS",
                        help="answer 408 (upload still arriving) or 503 (server too slow) to requests that take "
                             "longer; 0 turns the limit off")
    parser.add_argument("--workers", type=_cli.integer(1), default=1, metavar="N",
                        help="worker processes; /metrics adds up all of them (Prometheus multiprocess mode)")
    _cli.add_device_arg(parser, default=None)
    return parser


def main(argv=None):
    """Run ``python -m catdog_sk.serve``: the HTTP service until interrupted.

    Parameters
    ----------
    argv : list of str, default=None
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    status : int
        The exit status: 0 after a clean shutdown, 1 failure (e.g. the model cannot be loaded), 2 usage error.
    """
    parser = build_parser()

    def body(args):
        import json
        import os
        import shutil
        import tempfile

        import uvicorn

        if not 0 < args.port < 65536:
            parser.error(f"--port must be in 1..65535; got {args.port}")
        if args.max_upload_mb <= 0:
            parser.error(f"--max-upload-mb must be > 0; got {args.max_upload_mb}")
        if args.timeout < 0:
            parser.error(f"--timeout must be >= 0; got {args.timeout}")
        if args.workers < 1:
            parser.error(f"--workers must be >= 1; got {args.workers}")
        if args.log_db:
            from .exceptions import InvalidParameterError
            from .monitoring._store import log_url

            try:
                log_url(args.log_db)
            except InvalidParameterError as exc:
                parser.error(f"--log-db: {exc}")
        from ._filenames import PRETRAINED_DIR

        if args.log_db is None and Path(args.model).resolve() == PRETRAINED_DIR:  # never write into the package
            args.log_db = str(Path("artifacts") / "prediction_log.sqlite")
            Path(args.log_db).parent.mkdir(parents=True, exist_ok=True)
        config = {"model_path": args.model, "log_db": args.log_db, "unsafe": args.unsafe, "device": args.device,
                  "max_upload_bytes": int(args.max_upload_mb * 2**20), "request_timeout": args.timeout or None}
        log_level = "warning" if args.quiet else "info"
        if args.workers == 1:
            from .serving import create_app

            app = create_app(**config)
            _cli.log(args, f"serving model {app.version} on http://{args.host}:{args.port}/; prediction log "
                           f"{app.state.prediction_log.url}")
            uvicorn.run(app, host=args.host, port=args.port, log_level=log_level)
            return 0
        from .serving.app import CONFIG_ENV

        _cli.load_model(args)  # fail here, once, with one line, if it cannot load (or no GPU for --device cuda)
        metrics_dir = tempfile.mkdtemp(prefix="catdog-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        os.environ[CONFIG_ENV] = json.dumps(config)
        _cli.log(args, f"serving {args.model} with {args.workers} workers on http://{args.host}:{args.port}/")
        try:
            uvicorn.run("catdog_sk.serving.app:app_from_env", factory=True, workers=args.workers,
                        host=args.host, port=args.port, log_level=log_level)
        finally:
            shutil.rmtree(metrics_dir, ignore_errors=True)
        return 0

    return _cli.run(body, parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
