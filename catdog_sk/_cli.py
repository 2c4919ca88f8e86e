"""What every command shares: --help/--version/--quiet/--json, exit codes, one-line errors.

Etiquette: exit 0 on success, 1 on a runtime failure (one line on stderr), 2 on
a usage error (argparse). Results go to stdout (``--json`` for machines); logs
and progress bars go to stderr, and bars are off when stderr is not a
terminal or with ``--quiet``.
"""

import argparse
import json
import sys

from ._version import __version__
from .exceptions import CatDogError

__all__ = ["make_parser", "add_model_args", "run", "show_progress", "log", "emit_json"]


def make_parser(prog, description, epilog=None):
    parser = argparse.ArgumentParser(
        prog=f"python -m catdog_sk.{prog}", description=description, epilog=epilog,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"catdog_sk {__version__}")
    parser.add_argument("--json", action="store_true", help="print results as JSON on stdout")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or logs on stderr")
    return parser


def add_model_args(parser):
    """``--model PATH`` and ``--unsafe``, for every command that loads a saved model."""
    parser.add_argument("--model", required=True, metavar="PATH", help="model directory (or its model.skops)")
    parser.add_argument("--unsafe", action="store_true",
                        help="load a model file naming types catdog_sk does not trust (only files you made)")


def show_progress(args):
    return not args.quiet and sys.stderr.isatty()


def log(args, message):
    if not args.quiet:
        print(message, file=sys.stderr, flush=True)


def emit_json(obj):
    json.dump(obj, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def run(body, parser, argv):
    """Parse ``argv``, call ``body(args)`` and turn known failures into exit code 1."""
    args = parser.parse_args(argv)
    try:
        return int(body(args) or 0)
    except CatDogError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; finished cache entries are kept, run again to resume", file=sys.stderr)
        return 130
