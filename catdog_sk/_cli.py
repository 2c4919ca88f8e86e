"""What every command shares: --help/--version/--quiet/--json, exit codes, one-line errors.

Etiquette: exit 0 on success, 1 on a runtime failure (one line on stderr), 2 on
a usage error (argparse), 3 when the work was done but some image files could
not be read (each listed with its reason). Results go to stdout (``--json`` for machines); logs
and progress bars go to stderr, and bars are off when stderr is not a
terminal or with ``--quiet``.
"""

import argparse
import json
import math
import sys

from ._io import unique_name
from ._version import __version__
from .exceptions import CatDogError

__all__ = ["EXIT_SKIPPED", "EXIT_ALERT", "SKIPPED_EPILOG", "HelpFormatter", "make_parser", "add_model_args", "add_backbone_arg",
           "add_runtime_arg", "add_device_arg", "add_backend_args", "add_strict_arg", "skipped_status", "cluster", "run",
           "show_progress", "log", "emit_json", "load_model", "open_cache", "check_output_file", "unique_name",
           "parse_names", "real", "integer", "jobs"]


#: Exit status of a command that finished but skipped unreadable image files.
EXIT_SKIPPED = 3
#: ``monitor``'s status when an alert fired: its own code, so cron tells an alert from a failure (1).
EXIT_ALERT = 4
SKIPPED_EPILOG = ("Exit status: 0 done, 3 done but some image files could not be read (each is listed with "
                  "its reason), 1 failure (or unreadable files with --strict), 2 usage error.")


class HelpFormatter(argparse.HelpFormatter):
    """Adds ``(default: X)`` to an option's help once, and only where it tells something.

    Not where the help already says its default in words, not for flags (their default is "off"),
    and not for options whose default is None or empty (the help says what happens without them).
    """

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if ("default" in text.lower() or any(default is v for v in (None, False, True, argparse.SUPPRESS))
                or default in ([], ()) or action.nargs == 0 or not action.option_strings):
            return text
        return text + " (default: %(default)s)"


def make_parser(prog, description, epilog=None, *, json_results=True):
    """The parser every command starts from: ``--version``, ``--quiet`` and (for results) ``--json``.

    Parameters
    ----------
    prog : str
        The command's module name (``fit``), shown as ``python -m catdog_sk.fit``.
    description, epilog : str
        The help's first and last paragraphs.
    json_results : bool, default=True
        Offer ``--json``; False for commands whose output is already a machine format (``predict``
        prints JSON lines) or that print no result (``serve``), so the option never does nothing.

    Returns
    -------
    parser : argparse.ArgumentParser
    """
    parser = argparse.ArgumentParser(
        prog=f"python -m catdog_sk.{prog}", description=description, epilog=epilog,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"catdog_sk {__version__}")
    if json_results:
        parser.add_argument("--json", action="store_true", help="print results as JSON on stdout")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or logs on stderr")
    return parser


def add_model_args(parser):
    """``--model PATH`` and ``--unsafe``, for every command that loads a saved model.

    Without ``--model`` the command uses the model bundled with the package (see
    :mod:`catdog_sk.pretrained`); :func:`run` resolves it and says so on stderr.
    """
    parser.add_argument("--model", metavar="PATH",
                        help="model directory (or its model.skops), or a models root (its PROMOTED model); "
                             "default: the model bundled with catdog_sk (Asirra-trained, research and "
                             "non-commercial use, see python -m catdog_sk.pretrained --help)")
    parser.set_defaults(model_default_is_pretrained=True)
    parser.add_argument("--unsafe", action="store_true",
                        help="load a model file naming types catdog_sk does not trust (only files you made)")


def add_backbone_arg(parser):
    """``--backbone``, defaulting to both bundled backbones concatenated (the same for extract and fit)."""
    from .features import DEFAULT_CLI_BACKBONE

    parser.add_argument("--backbone", default=DEFAULT_CLI_BACKBONE, metavar="NAME",
                        help="CNN backbone: efficientnet_lite0 or efficientnet_lite2 (bundled, offline), a timm "
                             "name or torchvision/<name> (downloaded when online); join several with '+' to "
                             "concatenate their embeddings")


def add_runtime_arg(parser):
    """``--runtime``: what runs the CNN (the same for extract and fit)."""
    from .features import RUNTIMES

    parser.add_argument("--runtime", default="openvino", choices=RUNTIMES,
                        help="what runs the CNN: OpenVINO float32 (default; same embeddings as PyTorch), "
                             "OpenVINO bfloat16 (faster on CPUs with bfloat16 instructions; mean cosine 0.9993 "
                             "to PyTorch, same test accuracy), OpenVINO int8 (NNCF post-training quantisation, "
                             "calibrated on 300 training photos first; see the features guide for its accuracy "
                             "guard) or eager PyTorch (the reference)")


def load_model(args):
    """The saved model of ``--model`` (``--unsafe``), moved to ``--device`` when the command has it and it is set."""
    from .models import load_model as _load

    clf = _load(args.model, unsafe=args.unsafe)
    if getattr(args, "device", None):
        clf.set_params(device=args.device)
        clf.extractors()  # 'cuda' without a GPU fails here, before any image is read
    return clf


def add_device_arg(parser, default="auto"):
    """``--device``: where the CNN runs (a CUDA GPU when there is one, by default).

    Commands that load a saved model (``default=None``) have no ``--runtime``: the model's own runs on the CPU.
    """
    from .features import DEVICES

    cpu = "--runtime" if default else "the model's runtime"
    parser.add_argument("--device", default=default, choices=DEVICES,
                        help="where the CNN runs: 'auto' is a CUDA GPU when PyTorch sees one (bfloat16, large "
                             f"batches), else {cpu} on the CPU; 'cuda' without a GPU is an error"
                        + ("" if default else "; default: what the model was fitted with"))


def add_backend_args(parser, work="partitions of the photos run"):
    """``--backend`` and ``--scheduler``: run on this machine or on a Dask cluster.

    ``work`` says what runs on the cluster, in the command's own words.
    """
    parser.add_argument("--backend", default="local", choices=("local", "dask"),
                        help=f"'dask': {work} on a dask.distributed cluster (the cache, if any, must be on "
                             "storage every worker sees)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="with --backend dask: a running scheduler, e.g. tcp://10.0.0.5:8786 (default: a "
                             "LocalCluster on this machine, one worker per CPU or --jobs)")


def cluster(args):
    """Context manager: a dask Client for ``--backend dask``, else None."""
    import contextlib

    if getattr(args, "backend", "local") != "dask":
        if getattr(args, "scheduler", None):
            raise CatDogError("--scheduler needs --backend dask.")
        return contextlib.nullcontext(None)
    from .cluster import connect

    return connect(args.scheduler, n_workers=args.jobs if args.jobs and args.jobs > 0 else None)


def show_progress(args):
    """Whether to show progress: not with ``--quiet``; a bar on a terminal, a line every 10 s in a log.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed arguments.

    Returns
    -------
    show : bool
    """
    return not args.quiet


def log(args, message):
    if not args.quiet:
        print(message, file=sys.stderr, flush=True)


def emit_json(obj):
    json.dump(obj, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def open_cache(args, default=True):
    """The command's feature cache folder, proven writable before any work (None with --no-cache).

    ``--cache DIR``, else (``default``) ``$CATDOG_CACHE`` or ``artifacts/cache``.
    """
    from .features import FeatureCache, default_cache_dir

    if getattr(args, "no_cache", False):
        return None
    location = getattr(args, "cache", None) or (default_cache_dir() if default else None)
    if location:
        FeatureCache(location).check_usable()
    return location


def _number(text, parse, what):
    try:
        value = parse(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}; got {text!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be {what}; got {text!r}")
    return value


def real(low=None, high=None, *, open_low=False, open_high=False):
    """An argparse ``type``: a finite float in the range, else a usage error (exit 2) before any work.

    ``nan``, ``inf`` and out-of-range values are refused, as the estimators' own constraints do.
    """
    if low is not None and high is not None:
        what = f"a finite number in {'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"
    elif low is not None:
        what = f"a finite number {'>' if open_low else '>='} {low}"
    else:
        what = "a finite number" + (f" <= {high}" if high is not None else "")

    def parse(text):
        value = _number(text, float, what)
        if ((low is not None and (value < low or (open_low and value == low)))
                or (high is not None and (value > high or (open_high and value == high)))):
            raise argparse.ArgumentTypeError(f"must be {what}; got {text!r}")
        return value

    parse.__name__ = "number"
    return parse


def integer(low=None, high=None, *, nonzero=False):
    """An argparse ``type``: an int in ``[low, high]`` (``nonzero``: any int but 0), else a usage error."""
    what = ("an int" + (f" in [{low}, {high}]" if low is not None and high is not None else
                        f" >= {low}" if low is not None else "") + (" other than 0" if nonzero else ""))

    def parse(text):
        value = _number(text, int, what)
        if (low is not None and value < low) or (high is not None and value > high) or (nonzero and value == 0):
            raise argparse.ArgumentTypeError(f"must be {what}; got {text!r}")
        return value

    parse.__name__ = "int"
    return parse


#: ``--jobs``: a positive count, or negative counting back from the number of CPUs (-1: all), as in joblib.
jobs = integer(nonzero=True)


def check_output_file(path, option):
    """Fail now, in one line, if ``path`` could not be written at the end of the work."""
    import os

    from .exceptions import CacheError

    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise CacheError(f"{option} {path} is a folder; give a file name.")
    if not os.path.isdir(folder):
        raise CacheError(f"{option} {path}: the folder {folder} does not exist; create it first.")
    if not os.access(folder, os.W_OK):
        raise CacheError(f"{option} {path}: the folder {folder} is not writable.")


def parse_names(parser, option, text, choices, *, split_plus=False):
    """A comma-separated list of names from ``choices`` (order kept, repeats dropped); a usage error otherwise.

    With ``split_plus``, '+' separates names too (``extract --features hog+color``).
    """
    names = [p.strip() for p in (text.replace("+", ",") if split_plus else text).split(",") if p.strip()]
    bad = [n for n in names if n not in choices]
    if not names or bad:
        parser.error(f"{option} must be a comma-separated list of {', '.join(choices)}; got {text!r}"
                     + (f" ({', '.join(repr(b) for b in bad)} unknown)" if bad else ""))
    return list(dict.fromkeys(names))


def add_strict_arg(parser):
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 instead of 3 when any image file could not be read")


def skipped_status(args, n_skipped):
    """0, or EXIT_SKIPPED (1 with --strict) when image files were skipped."""
    if not n_skipped:
        return 0
    return 1 if getattr(args, "strict", False) else EXIT_SKIPPED


def _paths_print_as_bytes():
    """File names that are not UTF-8 (Python holds them as surrogates) print as their original bytes."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure") and getattr(stream, "errors", None) == "strict":
            try:
                stream.reconfigure(errors="surrogateescape")
            except (ValueError, OSError):  # detached or closed stream
                pass


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM, so that cleanup runs as it does for Ctrl-C."""


def _on_sigterm(signum, frame):
    raise Terminated()


def _stop_workers():
    """Stop joblib's process pool (grid-search workers), so no worker outlives an interrupted command."""
    try:
        from joblib.externals.loky import get_reusable_executor

        get_reusable_executor().shutdown(wait=False, kill_workers=True)
    except Exception:  # noqa: BLE001 - best effort on the way out
        pass


def _stopped(how, args):
    """The line a stopped command ends with: resuming is promised only where a feature cache keeps work."""
    if getattr(args, "cache", None) and not getattr(args, "no_cache", False):
        return f"{how}; finished cache entries are kept, run again to resume"
    return how


def run(body, parser, argv):
    """Parse ``argv``, call ``body(args)`` and turn known failures into one line and an exit status.

    1 for failures (including the environment's: a full disk, a read-only or missing folder, a closed
    output pipe), 130 for Ctrl-C and 143 for SIGTERM; on both signals temporary folders are removed
    (their context managers run) and worker processes are stopped.
    """
    import signal
    import threading

    _paths_print_as_bytes()
    args = parser.parse_args(argv)
    if getattr(args, "scheduler", None) and getattr(args, "backend", None) != "dask":
        parser.error("--scheduler needs --backend dask")
    if getattr(args, "model_default_is_pretrained", False) and args.model is None:
        from ._filenames import PRETRAINED_DIR

        args.model = str(PRETRAINED_DIR)
        log(args, "no --model: using the model bundled with catdog_sk (fitted on Asirra photos: research and "
                  "non-commercial use only)")
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return int(body(args) or 0)
    except CatDogError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        import os

        # stdout was closed by the reader (`... | head -1`): stop quietly, as Unix tools do.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        print("error: standard output was closed before the results were all written", file=sys.stderr)
        return 1
    except OSError as exc:
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        print(f"error:{where} {exc.strerror or exc}; check the path, its permissions and free space",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        _stop_workers()
        print(_stopped("interrupted", args), file=sys.stderr)
        return 130
    except Terminated:
        _stop_workers()
        print(_stopped("terminated", args), file=sys.stderr)
        return 143
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
