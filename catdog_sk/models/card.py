"""The model card: what a saved model is, how it was made and how it scored, as one typed object.

``model_card.json`` beside ``model.skops`` (and ``model_card.md``, the same for people). The card is
built from the fitted classifier plus what the training run knows (data, metrics, grid, promotion,
the test-set reference distributions that monitoring compares live traffic with), saved with
:meth:`ModelCard.save` and read back with :meth:`ModelCard.load`. It is a read-only mapping over its
JSON fields, so ``card["metrics"]`` and ``card.get("unknown")`` work, with named properties for what
other modules rely on (``sha256``, ``version``, ``classes``, ``reference``).
"""

import datetime as _dt
import json
import os
from collections.abc import Mapping
from pathlib import Path

from ..exceptions import ModelLoadError

__all__ = ["CARD_FILE", "REFERENCE_EMBEDDINGS", "ModelCard", "card_params", "model_version", "read_card", "card_markdown"]

from .._filenames import CARD_FILE, CARD_MARKDOWN, REFERENCE_EMBEDDINGS  # noqa: E402 - re-exported


#: Parameters that mean something only for some models: a logistic regression's card lists no kernel.
_PARAMS_ONLY_FOR = {"kernel": ("svm",), "gamma": ("svm",), "epochs": ("finetune",), "learning_rate": ("finetune",)}


def card_params(params):
    """The estimator's parameters as a card shows them: no ``cache``, none its model does not use.

    Parameters
    ----------
    params : dict
        ``CatDogClassifier.get_params()``.

    Returns
    -------
    params : dict
        Without ``cache`` (a path of the machine that fitted it), ``kernel`` and ``gamma`` unless the
        model is an SVM (``gamma`` only for the RBF kernel), ``epochs`` and ``learning_rate`` unless it
        is fine-tuned.
    """
    model = params.get("model")
    out = {k: v for k, v in params.items()
           if k != "cache" and (k not in _PARAMS_ONLY_FOR or model in _PARAMS_ONLY_FOR[k])}
    if model == "svm" and out.get("kernel") != "rbf":
        out.pop("gamma", None)
    return out


class ModelCard(Mapping):
    """A model card (read-only mapping of its JSON fields).

    Parameters
    ----------
    fields : dict
        The card's JSON object.
    """

    def __init__(self, fields):
        self._fields = dict(fields)

    def __getitem__(self, key):
        return self._fields[key]

    def __iter__(self):
        return iter(self._fields)

    def __len__(self):
        return len(self._fields)

    def __repr__(self):
        return f"ModelCard(run={self.get('run')!r}, version={self.version!r})"

    # -- what other modules rely on -----------------------------------------------------
    @property
    def sha256(self):
        """SHA-256 of the model file, as recorded when it was saved ('' when missing).

        Returns
        -------
        sha256 : str
            The ``model_sha256`` field as 64 hex digits, or ``''`` when the card
            has none (or it is not a string).
        """
        value = self._fields.get("model_sha256")
        return value if isinstance(value, str) else ""

    @property
    def version(self):
        """The model version every surface shows: the first 12 characters of :attr:`sha256`.

        Returns
        -------
        version : str
            12 hex digits, or ``'unversioned'`` when the card records no SHA-256.
        """
        return self.sha256[:12] or "unversioned"

    @property
    def classes(self):
        """The class labels the model predicts, in the order of its probability columns.

        Returns
        -------
        classes : list of str
            The ``classes`` field (a new list), empty when the card has none.
        """
        return list(self._fields.get("classes") or [])

    @property
    def reference(self):
        """The held-out test set's distributions (``p_positive``, ``presence``, ``unknown_rate``) or {}.

        Monitoring compares live traffic with these.

        Returns
        -------
        reference : dict
            A shallow copy of the ``reference`` field; ``{}`` when it is missing
            or not an object.
        """
        value = self._fields.get("reference")
        return dict(value) if isinstance(value, dict) else {}

    def to_dict(self):
        """A deep copy of the fields, as plain JSON data.

        Returns
        -------
        fields : dict
            The card's fields after a JSON round trip (values JSON cannot hold
            become strings), so changing it leaves the card untouched.
        """
        return json.loads(json.dumps(self._fields, default=str))

    # -- building, saving, loading ------------------------------------------------------
    @classmethod
    def for_model(cls, classifier, *, model_sha256, model_file, versions, extra=None):
        """The card of a fitted classifier saved as ``model_file`` with that SHA-256, plus ``extra`` fields.

        Records what is known from the classifier itself (classes, parameters
        without ``cache``, the CNN backbone's configuration, fine-tuning);
        the training run adds the rest through ``extra``.

        Parameters
        ----------
        classifier : CatDogClassifier
            The fitted classifier.
        model_sha256 : str
            SHA-256 of the saved model file.
        model_file : str
            The model file's name in its folder (``model.skops``).
        versions : dict of str to str
            Library versions, see :func:`catdog_sk.models.persistence.library_versions`.
        extra : dict, default=None
            More fields (data, metrics, grid, promotion, reference, ...); they
            override the fields above of the same name.

        Returns
        -------
        card : ModelCard
            The new card, with a ``created`` UTC timestamp and ``format`` ``'skops'``.
        """
        fields = {
            "model_file": model_file,
            "model_sha256": model_sha256,
            "format": "skops",
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "classes": [str(c) for c in classifier.classes_],
            "params": card_params(classifier.get_params()),
            "versions": versions,
        }
        if "cnn" in classifier.feature_names_:
            from ..features import make_extractor

            fields["backbone"] = make_extractor("cnn", backbone=classifier.feature_backbone(),
                                                runtime=classifier.runtime).config()
        if getattr(classifier, "finetune_", None) is not None:
            fields["finetune"] = classifier.finetune_
        fields.update(dict(extra or {}))
        return cls(fields)

    def save(self, directory):
        """Write ``model_card.json`` and ``model_card.md`` into ``directory``, each replaced in one step.

        Each file is written to a temporary name then renamed, so a reader never
        sees half a card.

        Parameters
        ----------
        directory : str or os.PathLike
            The model folder (it must exist).

        Returns
        -------
        path : pathlib.Path
            The written ``model_card.json``.
        """
        directory = Path(directory)
        for name, text in ((CARD_FILE, json.dumps(self._fields, indent=2, default=str)),
                           (CARD_MARKDOWN, self.markdown())):
            tmp = directory / (name + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, directory / name)
        return directory / CARD_FILE

    @classmethod
    def load(cls, path):
        """Read a card (the JSON file, or the model folder holding it).

        Parameters
        ----------
        path : str or os.PathLike
            ``model_card.json``, or a model folder holding it.

        Returns
        -------
        card : ModelCard

        Raises
        ------
        ModelLoadError
            The file is not UTF-8 JSON holding an object.
        """
        path = Path(path)
        if path.is_dir():
            path = path / CARD_FILE
        try:
            fields = json.loads(path.read_bytes().decode("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise ModelLoadError(f"Refusing the model card {path}: not UTF-8 JSON ({type(exc).__name__}).") from None
        if not isinstance(fields, dict):
            raise ModelLoadError(f"Refusing the model card {path}: it holds a JSON {type(fields).__name__}, "
                                 f"not an object.")
        return cls(fields)

    def markdown(self):
        """The card for people (``model_card.md``).

        Returns
        -------
        text : str
            Markdown, see :func:`card_markdown`.
        """
        return card_markdown(self)


def model_version(classifier):
    """The version of a loaded classifier's model (see :attr:`ModelCard.version`); 'unversioned' without a card.

    Parameters
    ----------
    classifier : CatDogClassifier
        A classifier, usually loaded with its card as ``card_`` (a
        :class:`ModelCard` or a plain dict of its fields).

    Returns
    -------
    version : str
        12 hex digits of the model file's SHA-256, or ``'unversioned'``.
    """
    card = getattr(classifier, "card_", None)
    return card.version if isinstance(card, ModelCard) else ModelCard(card or {}).version


def read_card(path):
    """:meth:`ModelCard.load` (kept for callers of the function).

    Parameters
    ----------
    path : str or os.PathLike
        ``model_card.json``, or a model folder holding it.

    Returns
    -------
    card : ModelCard

    Raises
    ------
    ModelLoadError
        The file is not UTF-8 JSON holding an object.
    """
    return ModelCard.load(path)


def _finetune_line(ft):
    kept = ("the linear probe alone: no epoch of fine-tuning lowered the validation loss, so the frozen weights "
            "were kept" if ft.get("best_epoch") == 0 else f"epoch {ft.get('best_epoch')}")
    return (f"- Fine-tuned backbone (linear probe, then fine-tuning with BatchNorm frozen; at most "
            f"{ft.get('epochs')} epochs, learning rate {ft.get('learning_rate')}): kept {kept}; validation accuracy "
            f"{ft.get('val_accuracy', float('nan')):.4f} on {ft.get('n_val')} held-out training photos "
            f"({ft.get('n_train')} trained on, {ft.get('seconds')} s)")


def card_markdown(card):
    """Human-readable model card from the JSON card.

    Sections: model details, intended use, data and metrics (when recorded),
    grid search, promotion, limitations.

    Parameters
    ----------
    card : ModelCard or dict
        The card's fields.

    Returns
    -------
    text : str
        Markdown, as written to ``model_card.md``.
    """
    lines = [f"# Model card: {card.get('run', 'catdog_sk model')}", "", "## Model details", "", *_details(card)]
    lines += ["", "## Intended use", "",
              "Tell photos of domestic cats from photos of dogs. Out of scope: breeds, several animals at "
              "once, and images showing neither" + (" (it answers 'unknown' for most of them, see above)."
                                                     if "unknown" in card else
                                                     " (this model always answers cat or dog)."), ""]
    lines += _data_and_metrics(card)
    if card.get("cv_results"):
        lines += ["## Grid search (CV accuracy on train)", "", "| params | mean | std |", "|---|---|---|"]
        lines += [f"| `{json.dumps(r['params'], default=str)}` | {r['mean']:.4f} | {r['std']:.4f} |"
                  for r in card["cv_results"]]
        lines.append("")
    if "promotion" in card:
        p = card["promotion"]
        lines += ["## Promotion (champion / challenger)", "",
                  f"- Decision: {'promoted' if p.get('promoted') else 'not promoted'} ({p.get('reason')})"]
        if "champion_test_accuracy" in p:
            lines.append(f"- Champion {p.get('champion')}: test accuracy {p['champion_test_accuracy']:.4f}; "
                         f"this model: {p['challenger_test_accuracy']:.4f}")
        lines.append("")
    lines += ["## Limitations", "",
              "Trained on Asirra/Kaggle pet photos: studio shots, cartoons, other species and "
              "unusual angles are out of distribution. Some training labels are known to be wrong.", ""]
    return "\n".join(lines)


def _details(card):
    """The "Model details" bullet points."""
    lines = [f"- Created: {card.get('created')}",
             f"- Format: {card.get('format')} (`{card.get('model_file')}`, sha256 `{card.get('model_sha256')}`)",
             f"- Classes: {', '.join(card.get('classes', []))}",
             f"- Parameters: `{json.dumps(card.get('params', {}), default=str)}`"]
    for b in card.get("backbone", {}).get("backbones", []):
        lines.append(f"- Backbone: {b.get('backbone')} ({b.get('arch')}), weights sha256 `{b.get('weights_sha256')}`, "
                     f"input {b.get('input_size')} px, mean {b.get('mean')}, std {b.get('std')}; embedding "
                     f"L2-normalised")
    if "finetune" in card:
        lines.append(_finetune_line(card["finetune"]))
    if "unknown" in card:
        u = card["unknown"]
        line = (f"- Abstains ('unknown') on photos of neither a cat nor a dog (presence score below "
                f"{u.get('threshold')}, setting {u.get('setting')!r}): answers {u.get('test_coverage', 0):.2%} of "
                f"the test photos, with accuracy {u.get('test_answered_accuracy', 0):.4f} on those")
        if "negatives" in u:
            line += (f"; answers 'unknown' for {u['negatives'].get('rejected', 0):.1%} of "
                     f"{u['negatives'].get('n')} held-out photos of neither ({u['negatives'].get('source')})")
        lines.append(line)
        min_side = card.get("params", {}).get("min_side")
        if min_side is not None:
            lines.append(f"- Answers 'unknown' (reason too_small) for photos whose shorter side is below {min_side} "
                         f"px, without trusting the network")
    lines.append(f"- Library versions: {', '.join(f'{k} {v}' for k, v in card.get('versions', {}).items())}")
    lines.append(f"- Seed: {card.get('seed')}")
    return lines


def _selection_row(card, m):
    """The metrics table's training-data row: CV accuracy, or a fine-tuned model's validation accuracy."""
    if "finetune" in card:
        return f"| validation accuracy (held-out training photos) | {m.get('cv_accuracy', float('nan')):.4f} |"
    return f"| CV accuracy (train) | {m.get('cv_accuracy', float('nan')):.4f} ± {m.get('cv_std', float('nan')):.4f} |"


def _data_and_metrics(card):
    """The "Training and evaluation data" and "Metrics" sections (empty for cards without them)."""
    lines = []
    if "data" in card:
        d = card["data"]
        lines += ["## Training and evaluation data", "",
                  f"- Training: {d.get('train')} ({d.get('train_counts')}), content hash `{d.get('train_sha256')}`",
                  f"- Test: {d.get('test')} ({d.get('test_counts')}), content hash `{d.get('test_sha256')}`", ""]
    if "metrics" in card:
        m = card["metrics"]
        lo, hi = m.get("test_accuracy_ci95", [None, None])
        lines += ["## Metrics (held-out test set)", "",
                  "| metric | value |", "|---|---|",
                  f"| accuracy | {m.get('test_accuracy'):.4f} (95% CI {lo:.4f}-{hi:.4f}) |",
                  f"| ROC AUC | {m.get('test_roc_auc'):.4f} |",
                  f"| log loss | {m.get('test_log_loss'):.4f} |",
                  f"| expected calibration error | {m.get('test_ece'):.4f} |",
                  _selection_row(card, m), ""]
    return lines
