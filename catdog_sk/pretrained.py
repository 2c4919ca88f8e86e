"""A ready model inside the package: :func:`load_pretrained` predicts without training first.

What it is: the ``make demo`` configuration's head and presence model, fitted on the 2,000 shared Asirra
training photos with half of animals10 as photos of neither (seed 0): Lite0 + Lite2 embeddings with the
ImageNet-head columns, a calibrated logistic regression whose ``C`` 5-fold CV chose, and ``unknown='auto'``.
Only the head and the presence model are in the package (``_pretrained/model.skops``, about 150 KB, with
its model card); the backbones come from the weight packages, as for any model.
``predict``, ``serve``, ``evaluate`` and ``export`` use it when no ``--model`` is given.

Rebuild it from the data (what the package ships was built so)::

    python -m catdog_sk.pretrained --data ../shared/data/catsdogs --negatives ../shared/data/animals10
"""

from pathlib import Path

# The bundled model's folder (model.skops, model_card.json, model_card.md), named with the other file names.
from ._filenames import PRETRAINED_DIR

__all__ = ["PRETRAINED_DIR", "TERMS", "load_pretrained", "build_pretrained", "main"]

#: The terms of the photos the bundled model was fitted on, recorded in its card.
TERMS = ("Fitted on the Asirra photos of the Kaggle 'Dogs vs. Cats' set (Microsoft Research, from "
         "Petfinder.com; Elson et al., ACM CCS 2007) and on a sample of the Kaggle 'Animals-10' web images. "
         "Their terms allow research and non-commercial use only: so does this model's. Fit your own on "
         "photos you may use (python -m catdog_sk.fit) for anything else.")


def load_pretrained(*, device=None):
    """The bundled, ready-to-use classifier (see the module docstring for what it is and its terms).

    Parameters
    ----------
    device : {'auto', 'cpu', 'cuda'}, default=None
        Where its network runs; None keeps the saved ``'auto'`` (a GPU when there is one).

    Returns
    -------
    classifier : CatDogClassifier
        Fitted; ``classifier.card_`` holds its data, figures and terms.

    Raises
    ------
    ModelLoadError
        The package was installed without its model file.

    Examples
    --------
    >>> from catdog_sk import load_pretrained
    >>> clf = load_pretrained()                  # doctest: +SKIP
    >>> clf.predict(["my_cat.jpg"])              # doctest: +SKIP
    array(['cat'], dtype=object)
    """
    from .models import load_model

    clf = load_model(PRETRAINED_DIR)
    if device is not None:
        clf.set_params(device=device)
    return clf


def build_pretrained(data, *, negatives, out=PRETRAINED_DIR, cache=None, n_jobs=None, log=None):
    """Fit the bundled model from the photos: the README's five library calls, restricted to its configuration.

    Parameters
    ----------
    data : str or os.PathLike
        A split root with ``train/`` and ``test/`` (the shared Asirra set); fitted on ``train/``,
        scored once on ``test/`` (the figures on the card).
    negatives : str or os.PathLike
        Photos of neither cats nor dogs (half fits the presence model, seed 0).
    out : str or os.PathLike, default=PRETRAINED_DIR
        Folder to write ``model.skops`` and its card into (replaced whole).
    cache : str or os.PathLike, default=None
        Feature cache.
    n_jobs : int, default=None
        Workers.
    log : callable(str), default=None
        Progress lines.

    Returns
    -------
    out : pathlib.Path
    """
    import shutil
    import tempfile

    from .data import load_training_data
    from .features import DEFAULT_CLI_BACKBONE
    from .models import save_model
    from .models.card import read_card
    from .training import extract_features_for_run, save_run, search_models

    training = load_training_data(data, negatives=negatives)
    features = extract_features_for_run(training, ["cnn"], backbone=DEFAULT_CLI_BACKBONE, cache=cache,
                                        n_jobs=n_jobs, log=log)
    comparison = search_models(features, ["logreg"], cache=cache, n_jobs=n_jobs, log=log)
    out = Path(out)
    with tempfile.TemporaryDirectory() as tmp:
        run = save_run(comparison, artifacts=tmp, run="pretrained", cache=cache, n_jobs=n_jobs, promote=False,
                       log=log)
        fields = read_card(run.model_dir / "model_card.json").to_dict()
        for key in ("model_file", "model_sha256", "promotion"):
            fields.pop(key, None)
        fields.update(run="pretrained", terms=TERMS,
                      rebuild="python -m catdog_sk.pretrained --data <catsdogs> --negatives <animals10>")
        clf = run.classifier
        clf.set_params(cache=None)  # the build machine's cache path means nothing where it is installed
        new, old = out.with_name(out.name + ".new"), out.with_name(out.name + ".old")
        for leftover in (new, old):
            shutil.rmtree(leftover, ignore_errors=True)
        save_model(clf, new, card=fields)  # the old model stays in place until the new one is whole
        if out.exists():
            out.rename(old)
        new.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    return out


def main(argv=None):
    """Run ``python -m catdog_sk.pretrained``: rebuild the bundled model from the photos.

    Parameters
    ----------
    argv : list of str, default=None
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    status : int
        0 done, 1 failure, 2 usage error.
    """
    from . import _cli

    parser = _cli.make_parser("pretrained", "Rebuild the model bundled with catdog_sk (load_pretrained(), and "
                              "predict/serve/evaluate/export without --model) from the photos.")
    parser.add_argument("--data", required=True, metavar="DIR", help="split root with train/ and test/")
    parser.add_argument("--negatives", required=True, metavar="DIR", help="photos of neither cats nor dogs")
    parser.add_argument("--out", default=str(PRETRAINED_DIR), metavar="DIR",
                        help="where to write it (default: inside the installed package)")
    parser.add_argument("--cache", metavar="DIR", help="feature cache (default: none)")
    parser.add_argument("--jobs", type=_cli.jobs, default=None, metavar="N", help="workers (default: all CPUs)")

    def body(args):
        out = build_pretrained(args.data, negatives=args.negatives, out=args.out, cache=args.cache,
                               n_jobs=args.jobs, log=lambda line: _cli.log(args, line))
        print(f"bundled model written to {out}")
        return 0

    return _cli.run(body, parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
