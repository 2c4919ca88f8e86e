"""CatDogClassifier: a scikit-learn classifier whose X is a sequence of images."""

import numbers
import os
from typing import NamedTuple

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .._validation import Interval, Options, Satisfies, check_choice, validate_params
from ..exceptions import DatasetError, InvalidParameterError
from ..registry import FINETUNE
from ._registry import FEATURE_SETS, MODELS, make_pipeline

__all__ = ["CatDogClassifier", "Decision", "Featurized", "MIN_SIDE", "NOT_CAT_OR_DOG", "TOO_SMALL", "UNKNOWN",
           "UNKNOWN_REASONS", "n_head_columns"]

#: The label ``predict`` gives a photo that shows neither a cat nor a dog (with ``unknown`` set).
UNKNOWN = "unknown"

#: Why a photo is answered 'unknown' (``Decision.reasons``, :meth:`CatDogClassifier.unknown_reason`, and the
#: ``reason`` of the ``predict`` command, the HTTP API and the web pages); an answered photo's reason is None.
#: ``'too_small'``: its shorter side is below ``min_side`` pixels, so the network is not asked;
#: ``'not_cat_or_dog'``: the presence score is below ``presence_threshold_``.
TOO_SMALL = "too_small"
NOT_CAT_OR_DOG = "not_cat_or_dog"
UNKNOWN_REASONS = (TOO_SMALL, NOT_CAT_OR_DOG)

#: Default ``min_side``: photos whose shorter side is below this many decoded pixels answer 'unknown'
#: (reason 'too_small'). 32 px is the classic size of a "tiny image" that people still recognise
#: (Torralba, Fergus and Freeman, "80 million tiny images", IEEE PAMI 2008; CIFAR-10), and the bundled
#: model agrees (benchmarks/README.md, "Tiny photos": the 2,000 shared test photos downscaled): from 32 px
#: up at least 93% of its answers are right, while below it the error among its answers climbs (28 px
#: 8.6%, 24 px 11.8%, 20 px 18%, 16 px 27%; dogs at 12 px 55% right, chance) though the network still
#: answers 30-80% of the photos at 16-28 px.
MIN_SIDE = 32

_OWN_CACHE = object()  # featurize(cache=...) default: the estimator's own ``cache`` parameter


def _real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _positive_weights(value):
    return isinstance(value, dict) and bool(value) and all(_real(w) and 0 < w < float("inf") for w in value.values())


def _is_cache(value):
    from ..features import FeatureCache

    return value is None or isinstance(value, (str, os.PathLike, FeatureCache))


def _parameter_constraints():
    """Every parameter of CatDogClassifier and what it may be, declared once (checked at the start of fit)."""
    from ..features import DEVICES, RUNTIMES

    return {
        "features": Options(tuple(FEATURE_SETS)),
        "backbone": Satisfies(lambda v: isinstance(v, str) and v.strip() != "", "a backbone name such as "
                              "'efficientnet_lite0', or several joined with '+'"),
        "model": Options((*sorted(MODELS), *FINETUNE)),
        "C": Interval(numbers.Real, 1e-12, None),
        "kernel": Options(("rbf", "linear")),
        "gamma": Satisfies(lambda v: v == "scale" or (_real(v) and 0 < v < float("inf")), "'scale' or a float > 0"),
        "pca": Interval(numbers.Integral, 1, None, allow_none=True),
        "scale": Options(("standard", None)),
        "class_weight": Satisfies(lambda v: v is None or v == "balanced" or _positive_weights(v),
                                  "None, 'balanced' or a dict of class label -> weight > 0"),
        "unknown": Satisfies(lambda v: v is None or v == "auto" or (_real(v) and 0 < v < 1),
                             "None, 'auto' or a float in the open interval (0, 1)"),
        "min_side": Interval(numbers.Integral, 1, None, allow_none=True),
        "augment": Interval(numbers.Integral, 0, 32),
        "cache": Satisfies(_is_cache, "None, a folder path or a FeatureCache"),
        "batch_size": Interval(numbers.Integral, 1, None),
        "runtime": Options(RUNTIMES),
        "device": Options(DEVICES),
        "n_jobs": Satisfies(lambda v: v is None or (isinstance(v, numbers.Integral) and not isinstance(v, bool)
                                                    and v != 0), "None, -1 (all CPUs) or a positive int"),
        "epochs": Interval(numbers.Integral, 1, 1000),
        "learning_rate": Interval(numbers.Real, 1e-12, 1.0),
        "random_state": Satisfies(lambda v: v is None or isinstance(v, np.random.RandomState) or (
            isinstance(v, numbers.Integral) and not isinstance(v, bool) and 0 <= v <= 2**32 - 1),
            "None, an int in the range [0, 4294967295] or a numpy RandomState"),
        "verbose": Satisfies(lambda v: isinstance(v, (bool, numbers.Integral)), "a bool"),
    }


class Decision(NamedTuple):
    """What :meth:`CatDogClassifier.predict_features` decides for each image.

    Attributes
    ----------
    labels : ndarray of shape (n_images,)
        Values of ``classes_``, or (object dtype) ``'unknown'`` where the model abstains.
    proba : ndarray of shape (n_images, 2)
        Calibrated class probabilities, columns in the order of ``classes_``
        (the cat/dog classifier's, whether or not it abstains).
    presence : ndarray of shape (n_images,)
        Presence score in (0, 1) (see :meth:`CatDogClassifier.presence_score`);
        1.0 everywhere when the model never abstains. For a photo answered
        'unknown' as too small, what the network saw, not trusted.
    reasons : ndarray of shape (n_images,), dtype object
        Why each 'unknown' is one: ``'too_small'`` or ``'not_cat_or_dog'``
        (:data:`UNKNOWN_REASONS`); None for an answered photo.
        :meth:`CatDogClassifier.predict_features` always fills it; a Decision
        built by hand without it holds None.
    """

    labels: np.ndarray
    proba: np.ndarray
    presence: np.ndarray
    reasons: np.ndarray = None

    @property
    def confidence(self):
        """How sure each answer is: P(the answered class) for a cat or a dog, ``1 - presence`` for 'unknown'.

        The classifier's probabilities say nothing about an 'unknown' answer (they are near 1.0 for
        most photos of neither), so the confidence of abstaining is how surely no cat or dog is in
        the photo.

        Returns
        -------
        confidence : ndarray of shape (n_images,)
            In [0, 1].
        """
        from ..metrics import answer_confidence

        return answer_confidence(self.labels, self.proba, self.presence)


class Featurized(NamedTuple):
    """What :meth:`CatDogClassifier.featurize` returns.

    Attributes
    ----------
    features : ndarray of shape (n_decoded, n_features)
        One row per decoded image, in input order.
    ok : ndarray of int
        Indices into ``X`` of the decoded images.
    errors : list of ImageDecodeError
        One per image that could not be decoded (``on_error='skip'``).
    sides : ndarray of shape (n_decoded,), dtype int, or None
        The shorter side of each decoded image, in pixels before any resize
        (what ``min_side`` compares); None when the model has no size rule
        (``unknown`` or ``min_side`` None). Pass it to :meth:`CatDogClassifier.predict_features`.
    """

    features: np.ndarray
    ok: np.ndarray
    errors: list
    sides: np.ndarray = None


def n_head_columns(features, backbone):
    """Columns at the end of a feature vector that hold the ImageNet head (0 without CNN features).

    The catalogue's ``'cnn'`` extractor appends, per backbone, the log-probabilities its ImageNet-1k
    head gives to dog breeds, domestic cats and everything else; the CNN block comes last in every
    feature set, so these are the last columns. The cat/dog classifier never sees them.

    Parameters
    ----------
    features : str
        A feature set name.
    backbone : str
        One backbone or several joined with '+'.

    Returns
    -------
    n : int
    """
    if "cnn" not in FEATURE_SETS[features]:
        return 0
    from ..features import HEAD_COLUMNS, split_backbones

    return len(HEAD_COLUMNS) * len(split_backbones(backbone))


class CatDogClassifier(ClassifierMixin, BaseEstimator):
    """Tell cats from dogs in images: features (HOG, colour, frozen CNN) + SVM or logistic regression.

    ``X`` is a sequence of image paths (or ``(H, W, 3)`` uint8 arrays); ``y``
    holds their labels (``'cat'``/``'dog'``, or 0/1). Features are computed
    once per image content and cached when ``cache`` is set, so grid searches
    over the classifier's parameters do no image work after the first fit.

    Parameters
    ----------
    features : {'hog', 'color', 'hog+color', 'vlad', 'fisher', 'cnn', 'all'}, default='cnn'
        Which features feed the classifier. ``'vlad'`` and ``'fisher'`` use no
        neural network: dense DAISY descriptors encoded by VLAD or by improved
        Fisher vectors (86.70% on the shared test with ``C=30``), and LBP/colour
        pyramids.
    backbone : str, default='efficientnet_lite0'
        CNN backbone for ``'cnn'`` and ``'all'`` (see
        :func:`catdog_sk.list_backbones`; timm and ``'torchvision/<name>'``
        names download their weights when online).
    model : {'logreg', 'svm', 'finetune'}, default='logreg'
        The classifier. ``'finetune'`` also trains the network: a linear
        probe on the frozen embeddings, then fine-tuning of the backbone with
        BatchNorm frozen, random crops and flips and early stopping on a
        held-out 10% of the training photos (``epochs``, ``learning_rate``);
        then a calibrated logistic regression on the tuned embeddings, as for
        ``'logreg'``. It needs ``features='cnn'`` and one bundled backbone.
        Minutes on a CPU for a few thousand photos (about 17 photos/s per
        epoch on 2 cores); it holds each photo's centre square at the resize
        size in memory (about 200 KB a photo for Lite0). On the shared 2,000 training
        photos it does not beat frozen features: see the user guide, "Training" (docs/user_guide/training.rst).
    C : float, default=0.01
        Inverse regularisation strength.
    kernel : {'rbf', 'linear'}, default='rbf'
        SVM kernel (``model='svm'`` only). ``'linear'`` is solved by liblinear
        (``LinearSVC`` with the hinge loss: libsvm's model but for a regularised
        intercept, about nine times faster on long feature vectors).
    gamma : 'scale' or float, default='scale'
        RBF kernel width (``model='svm'`` only).
    pca : int or None, default=None
        Reduce features to this many principal components before the classifier.
    scale : {'standard', None}, default='standard'
        Standardise each feature before PCA and the classifier, or keep the
        features as they are (CNN embeddings are unit vectors; unscaled, with a
        large ``C``, they do best).
    class_weight : None, 'balanced' or dict, default=None
    unknown : None, 'auto' or float in (0, 1), default=None
        Abstain on photos that show neither a cat nor a dog: ``predict`` says
        ``'unknown'`` where the presence score (:meth:`presence_score`) is
        below this threshold. The score combines the backbone's own ImageNet-1k
        head (how much it believes a dog breed or a domestic cat is in the
        photo) with a presence model learned from the training photos against
        photos of neither (the offline check set, plus ``negatives`` given to
        :meth:`fit`); see :class:`catdog_sk.models.PresenceDetector`.
        ``'auto'`` is 0.5, the operating point set on the training photos
        (about 0.4% of the training cats and dogs fall below it); a larger value
        abstains more. Needs CNN features with a bundled backbone. None never
        abstains. Measured with ``'auto'``, Lite0 + Lite2, animals10 half as
        negatives: see the user guide, "Unknown" (docs/user_guide/unknown.rst).
    min_side : int or None, default=32
        With ``unknown`` set, a photo whose shorter side is below this many
        pixels (as decoded, before any resize) is answered ``'unknown'`` with
        the reason ``'too_small'``, whatever the network says: upscaled to the
        network's input, such a blur still gets confident labels, wrong for
        one answer in eight at 24 px and one in four at 16 px
        (:data:`MIN_SIDE`; measured in the user guide, "Unknown"). None: no
        size rule. Models saved before this parameter get the default.
    augment : int, default=0
        Number of augmented copies (flip, random resized crop, colour jitter)
        of each training image added to the training set.
    cache : None, str or FeatureCache, default=None
        Feature cache directory; None computes features every time.
    batch_size : int, default=4
        Images per CNN forward pass; small batches are fastest on CPU.
    runtime : {'openvino', 'openvino-bf16', 'openvino-int8', 'torch'}, default='openvino'
        What runs the CNN on the CPU (see :class:`catdog_sk.features.EmbeddingTransformer`;
        'openvino-int8' needs :func:`catdog_sk.features.calibrate_int8` on training photos first).
    device : {'auto', 'cpu', 'cuda'}, default='auto'
        Where the CNN runs: a CUDA GPU (PyTorch, bfloat16 autocast, large
        batches) when PyTorch sees one, else ``runtime`` on the CPU.
        ``'cuda'`` without a GPU raises at once.
    n_jobs : int, default=None
        Threads for decoding and per-image features (None: all CPUs).
    epochs : int, default=3
        Most epochs of fine-tuning (``model='finetune'`` only).
    learning_rate : float, default=5e-5
        Peak AdamW learning rate of fine-tuning (``model='finetune'`` only).
    random_state : int, RandomState instance or None, default=None
        Seeds augmentation, PCA and fine-tuning.
    verbose : bool, default=False
        Progress bars on stderr.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        Class labels, in the column order of ``predict_proba``.
    pipeline_ : sklearn.pipeline.Pipeline
        The fitted scaling + PCA + classifier on the features. The classifier
        is wrapped in ``CalibratedClassifierCV`` (Platt scaling on out-of-fold
        scores), so every model has calibrated ``predict_proba``.
    n_features_ : int
        Length of the feature vector of one image. (There is no
        ``n_features_in_``: ``X`` holds images, not feature columns, as for
        scikit-learn's text vectorisers.)
    feature_names_ : tuple of str
        The base extractors concatenated, e.g. ``('hog', 'color')``.
    presence_ : PresenceDetector or None
        With ``unknown``: the fitted presence model; None otherwise.
    presence_threshold_ : float or None
        The presence score below which ``predict`` says ``'unknown'``.
    negatives_sha256_ : tuple of str
        Content hashes of the photos of neither that the presence model was
        fitted on (beyond the built-in check set), so that evaluations can
        leave them out.
    tuned_weights_ : dict of str to ndarray
        ``model='finetune'`` only: the fine-tuned backbone's tensors (timm
        names), stored as plain arrays so the model saves safely; its CNN
        features come from them (see :meth:`feature_backbone`).
    tuned_backbone_ : str
        ``model='finetune'`` only: the tuned copy's backbone name (``'<backbone>@<sha12>'``), set once
        at fit and at load.
    finetune_ : dict
        ``model='finetune'`` only: per-epoch ``history`` (epoch 0 is the linear
        probe alone), ``best_epoch``, ``val_accuracy``, ``n_train``, ``n_val``,
        ``seconds`` and the weights' ``sha256``.

    Examples
    --------
    >>> from catdog_sk import CatDogClassifier
    >>> clf = CatDogClassifier(features="cnn", model="logreg", cache="artifacts/cache")
    >>> clf.fit(train_paths, train_labels).score(test_paths, test_labels)  # doctest: +SKIP
    0.99...
    """

    def __init__(self, *, features="cnn", backbone="efficientnet_lite0", model="logreg", C=0.01,
                 kernel="rbf", gamma="scale", pca=None, scale="standard", class_weight=None,
                 unknown=None, min_side=MIN_SIDE, augment=0, cache=None,
                 batch_size=4, runtime="openvino", device="auto", n_jobs=None, epochs=3, learning_rate=5e-5,
                 random_state=None, verbose=False):
        self.features = features
        self.backbone = backbone
        self.model = model
        self.C = C
        self.kernel = kernel
        self.gamma = gamma
        self.pca = pca
        self.scale = scale
        self.class_weight = class_weight
        self.unknown = unknown
        self.min_side = min_side
        self.augment = augment
        self.cache = cache
        self.batch_size = batch_size
        self.runtime = runtime
        self.device = device
        self.n_jobs = n_jobs
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.random_state = random_state
        self.verbose = verbose

    # -- parameter validation: everything is checked before any image is read --------------
    def _validate_params(self):
        """The constraints table (:func:`_parameter_constraints`), then what depends on several parameters."""
        name = type(self).__name__
        validate_params(_parameter_constraints(), self.get_params(deep=False), caller=name)
        if self.unknown is not None and "cnn" not in FEATURE_SETS[self.features]:
            raise InvalidParameterError(
                f"The 'unknown' parameter of {name} needs CNN features (features='cnn' or 'all'). "
                f"Got features={self.features!r} instead."
            )
        self._validate_backbone(name)
        self._validate_finetune_params(name)

    def _validate_backbone(self, name):
        """Known backbone names (no download) when the features use the CNN."""
        from ..exceptions import BackboneUnavailableError
        from ..features import get_backbone, split_backbones

        if "cnn" in FEATURE_SETS[self.features]:
            try:
                for backbone in split_backbones(self.backbone):
                    get_backbone(backbone)
            except BackboneUnavailableError as exc:
                raise InvalidParameterError(f"The 'backbone' parameter of {name} must name known backbones "
                                            f"(see catdog_sk.list_backbones()): {exc}") from None

    def _class_weight(self, classes):
        """``class_weight`` for scikit-learn, keyed by the labels and by their positions in ``classes``.

        The calibration's cross-validation hands the classifier the labels encoded as 0 and 1, and its
        final fit the labels themselves: each weight is given under both keys.
        """
        if not isinstance(self.class_weight, dict):
            return self.class_weight
        keys = {str(k) for k in self.class_weight}
        if keys != {str(c) for c in classes}:
            raise InvalidParameterError(
                f"The 'class_weight' parameter of {type(self).__name__} must give a weight to each class "
                f"({', '.join(repr(str(c)) for c in classes)}) and to no other. Got {self.class_weight!r} instead.")
        by_name = {str(k): float(w) for k, w in self.class_weight.items()}
        return {**{c: by_name[str(c)] for c in classes}, **{i: by_name[str(c)] for i, c in enumerate(classes)}}

    def _validate_finetune_params(self, name):
        if self.model not in FINETUNE:
            return
        from ..features import BUNDLED_BACKBONES

        if self.features != "cnn":
            raise InvalidParameterError(f"The 'features' parameter of {name} must be 'cnn' with model='finetune' "
                                        f"(it fine-tunes the CNN). Got {self.features!r} instead.")
        if self.backbone not in BUNDLED_BACKBONES:
            raise InvalidParameterError(
                f"The 'backbone' parameter of {name} must be one bundled backbone with model='finetune' "
                f"({', '.join(repr(b) for b in sorted(BUNDLED_BACKBONES))}). Got {self.backbone!r} instead.")

    @staticmethod
    def _as_image_list(X):
        if isinstance(X, (str, bytes, os.PathLike)) or (isinstance(X, np.ndarray) and X.ndim == 3
                                                        and X.dtype == np.uint8):
            raise InvalidParameterError(
                f"X must be a sequence of images (paths or arrays), not a single {type(X).__name__}; "
                f"wrap one image in a list."
            )
        return list(X)

    def extractors(self):
        """The feature extractor plans this estimator's features come from, in column order.

        Pass them to :func:`catdog_sk.features.extract_features` to compute (or
        cache) features once and then use :meth:`fit_features` /
        :meth:`predict_features`, e.g. for a grid search on cached features.

        Returns
        -------
        extractors : list of extractor plans
        """
        from ..features import make_extractor

        backbone = self.feature_backbone()
        return [make_extractor(n, backbone=backbone, batch_size=self.batch_size, runtime=self.runtime,
                               device=self.device, caller=type(self).__name__)
                for n in FEATURE_SETS[self.features]]

    def feature_backbone(self):
        """The backbone name(s) the CNN features come from.

        ``backbone``, except for a fitted ``model='finetune'``: ``tuned_backbone_``, the name of its
        fine-tuned copy (``'efficientnet_lite0@<sha12>'``). The tuned weights are made known to the
        CNN runtimes once, when the model is fitted or loaded (see ``__setstate__``); predicting
        only reads this value and writes nothing, on the estimator or in the process.

        Returns
        -------
        backbone : str
        """
        return self.__dict__.get("tuned_backbone_") or self.backbone

    def _set_tuned(self, state):
        """Keep the fine-tuned weights and their backbone name (registered with the CNN runtimes once, here)."""
        from ..features import register_tuned

        self.tuned_weights_ = state
        self.tuned_backbone_ = register_tuned(self.backbone, state)

    def featurize(self, X, *, on_error="raise", cache=_OWN_CACHE, n_jobs=None, progress=None, desc="features",
                  client=None):
        """Feature matrix of images ``X``: the boundary between images and features.

        Parameters
        ----------
        X : sequence of str, os.PathLike or ndarray of shape (H, W, 3), dtype uint8
        on_error : {'raise', 'skip'}, default='raise'
            Raise the :class:`~catdog_sk.exceptions.ImageDecodeError` of the
            first unreadable image, or leave it out, record it in ``errors`` and go on.
        cache : None, str or FeatureCache, default: the ``cache`` parameter
        n_jobs : int, default: the ``n_jobs`` parameter
        progress : bool, default: the ``verbose`` parameter
        desc : str, default="features"
            The progress bar's label.
        client : distributed.Client, default=None
            Extract on this Dask cluster, one partition of images per task
            (:func:`catdog_sk.cluster.extract_features_on_cluster`; paths every worker can read).

        Returns
        -------
        result : Featurized
            ``(features, ok, errors, sides)``: rows for the decoded images only, their
            indices into ``X``, the errors of the others, and the decoded images'
            shorter sides (None without a size rule, see ``min_side``).
        """
        check_choice(on_error, ("raise", "skip"), name="on_error", caller=f"{type(self).__name__}.featurize")
        return self._featurize(X, sized=self._has_size_rule(), on_error=on_error, cache=cache, n_jobs=n_jobs,
                               progress=progress, desc=desc, client=client)

    def _featurize(self, X, *, sized, on_error="raise", cache=_OWN_CACHE, n_jobs=None, progress=None,
                   desc="features", client=None):
        """:meth:`featurize`, with the shorter sides measured only where ``sized`` (a decision needs them)."""
        from ..cluster import extract_features_with

        plans = self.extractors()
        if sized:  # measured in the same decode, cached like a feature
            from ..features import ShorterSideExtractor

            plans.append(ShorterSideExtractor())
        res = extract_features_with(client, self._as_image_list(X), plans,
                                    cache=self.cache if cache is _OWN_CACHE else cache,
                                    n_jobs=self.n_jobs if n_jobs is None else n_jobs,
                                    on_error=on_error, progress=bool(self.verbose if progress is None else progress),
                                    desc=desc)
        ok = np.flatnonzero(res.ok)
        features = res.features[:-1] if sized else res.features
        sides = res.features[-1][ok, 0].astype(np.int64) if sized else None
        return Featurized(np.hstack([f[ok] for f in features]), ok, res.errors, sides)

    def _has_size_rule(self):
        """Whether ``min_side`` decides: a size is set and the model abstains (``unknown``, or fitted so)."""
        return self.min_side is not None and (self.unknown is not None
                                              or getattr(self, "presence_", None) is not None)

    def _features(self, X, desc):
        # fit, transform_features, presence_score: no decision here, so no sizes (a cache filled before the
        # size rule would otherwise decode every photo again just to measure it)
        return self._featurize(X, sized=False, desc=desc).features

    def _decide(self, X):
        res = self.featurize(X, desc="predict")
        return self.predict_features(res.features, sides=res.sides)

    def _make_pipeline(self, max_components, calibration_cv, classes):
        # 'finetune': after tuning the network, the head is a calibrated logistic regression on its embeddings
        model = "logreg" if self.model in FINETUNE else self.model
        return make_pipeline(model, C=self.C, kernel=self.kernel, gamma=self.gamma, pca=self.pca,
                             scale=self.scale, class_weight=self._class_weight(classes), calibrate=True,
                             random_state=self.random_state, max_components=max_components,
                             calibration_cv=calibration_cv, feature_set=self.features)

    # -- fitting -----------------------------------------------------------------------------
    def fit(self, X, y, negatives=None):
        """Extract features of the images (from the cache when present) and fit the classifier.

        Parameters
        ----------
        X : sequence of str, os.PathLike or ndarray of shape (H, W, 3), dtype uint8
        y : array-like of shape (n_images,)
            Two classes, e.g. ``'cat'``/``'dog'`` or 0/1.
        negatives : sequence of images, default=None
            Photos that show neither a cat nor a dog, for the presence model
            (``unknown`` set): other animals especially, which the ImageNet
            head confuses with dogs. The offline check set
            (:func:`catdog_sk.checkset.non_animal_images`) is always added.
            Unreadable negatives are left out.

        Returns
        -------
        self : CatDogClassifier

        Raises
        ------
        InvalidParameterError
            A parameter is outside its choices (checked before reading any image).
        DatasetError
            ``y`` does not hold exactly two classes, or lengths differ.
        ImageDecodeError
            An image cannot be decoded (names the file and why).
        """
        self._validate_params()
        X = self._as_image_list(X)
        y = np.asarray(y)
        if len(X) != len(y):
            raise DatasetError(f"X has {len(X)} images but y has {len(y)} labels.")
        classes = np.unique(y)
        if len(classes) != 2:
            raise DatasetError(
                f"{type(self).__name__} needs images of exactly two classes; got {len(classes)} "
                f"({', '.join(map(str, classes[:5]))})."
            )
        for attr in ("tuned_weights_", "tuned_backbone_", "finetune_", "layout_"):
            self.__dict__.pop(attr, None)
        if self.model in FINETUNE:
            self._finetune(X, y, classes)
        if self.augment:
            from ..preprocess import AugmentedImage

            rng = check_random_state(self.random_state)
            seeds = rng.randint(0, 2**31 - 1, size=(self.augment, len(X)))
            X = X + [AugmentedImage(x, int(s)) for row in seeds for x, s in zip(X, row)]
            y = np.concatenate([y] + [y] * self.augment)
        F = self._features(X, "fit")
        F_neg, neg_sha = None, ()
        if self.unknown is not None:
            F_neg, neg_sha = self.negative_features(negatives)
        self.fit_features(F, y, negatives=F_neg)
        self.negatives_sha256_ = neg_sha
        return self

    def _finetune(self, X, y, classes):
        """Linear probe on the frozen embeddings, then LP-FT; sets ``tuned_weights_`` and ``finetune_``."""
        from sklearn.model_selection import train_test_split

        from ..features import resolve_device, state_sha256
        from ._finetune import finetune_backbone, probe_head, training_bases

        seed = self._seed()
        y01 = (y == classes[1]).astype(np.float32)
        n_val = max(2, int(round(0.1 * len(X))))  # the early-stopping split, stratified
        train, val = train_test_split(np.arange(len(X)), test_size=n_val, stratify=y01, random_state=seed)
        E = self.split_features(self._features(X, "frozen features"))[1]
        probe = probe_head(E[train], y01[train], C=self.C, scale=self.scale, class_weight=self._class_weight(classes))
        bases = training_bases(X, self.backbone, n_jobs=self.n_jobs)
        res = finetune_backbone(bases, y01, probe, backbone=self.backbone, train=train, val=val, epochs=self.epochs,
                                learning_rate=self.learning_rate,
                                device=resolve_device(self.device, caller=type(self).__name__),
                                random_state=seed, progress=bool(self.verbose))
        self._set_tuned(res.state)
        self.finetune_ = {"history": res.history, "best_epoch": res.best_epoch, "val_accuracy": res.val_accuracy,
                          "n_train": res.n_train, "n_val": res.n_val, "seconds": res.seconds,
                          "epochs": self.epochs, "learning_rate": self.learning_rate,
                          "sha256": state_sha256(res.state)}

    def _seed(self):
        """An int seed from ``random_state``: the int itself, or one draw from a RandomState (or fresh entropy)."""
        if isinstance(self.random_state, numbers.Integral):
            return int(self.random_state)
        return int(check_random_state(self.random_state).randint(0, 2**31 - 1))

    def negative_features(self, negatives=None, *, cache=_OWN_CACHE, n_jobs=None, random_state=0):
        """Features of photos of neither: the offline check set plus ``negatives``.

        Parameters
        ----------
        negatives : sequence of str or os.PathLike, default=None
            The user's photos of neither cats nor dogs (undecodable ones are left out).
        cache : str, os.PathLike, FeatureCache or None, default: the estimator's ``cache``
            Feature cache.
        n_jobs : int, default=None
            Decoding workers.
        random_state : int, default=0
            Seed of the check set's augmented copies.

        Returns
        -------
        features : ndarray of shape (n_negatives, n_features)
        sha256 : tuple of str
            Content hashes of the decoded ``negatives`` (not of the check set).
        """
        from ..checkset import negative_images
        from ..data import content_hashes

        user = self._as_image_list(negatives) if negatives is not None and len(negatives) else []
        items = negative_images(user, random_state=random_state)
        res = self.featurize(items, on_error="skip", cache=cache, n_jobs=n_jobs, desc="negatives")
        first = len(items) - len(user)  # the check set's images come first and always decode
        paths = [items[i] for i in res.ok if i >= first and isinstance(items[i], (str, os.PathLike))]
        return res.features, tuple(content_hashes(paths)) if paths else ()

    def split_features(self, F):
        """Split a feature matrix into what the cat/dog classifier sees, the CNN embeddings, and the head.

        Parameters
        ----------
        F : ndarray of shape (n_images, n_features)
            From :meth:`featurize` or :meth:`transform_features`.

        Returns
        -------
        classifier_features : ndarray of shape (n_images, n_classifier_features)
        embeddings : ndarray of shape (n_images, embedding_dim) or None
            The unit CNN embeddings (None without CNN features).
        head : ndarray of shape (n_images, 3 * n_backbones) or None
            ImageNet head log-probabilities (see :func:`n_head_columns`).
        """
        return self.feature_layout().split(F)

    def feature_layout(self):
        """Which columns of :meth:`featurize`'s matrix are classifier features, embeddings and head.

        Returns
        -------
        layout : catdog_sk.features.FeatureLayout
            ``layout_`` once fitted (stored by :meth:`fit_features`), else built from :meth:`extractors`.
        """
        layout = self.__dict__.get("layout_")
        if layout is None:
            from ..features import FeatureLayout

            layout = FeatureLayout.from_extractors(self.extractors())
        return layout

    def fit_features(self, F, y, negatives=None):
        """Fit on precomputed features: ``featurize`` (or ``extract_features`` with :meth:`extractors`) output.

        Parameters
        ----------
        F : ndarray of shape (n_images, n_features)
        y : array-like of shape (n_images,)
        negatives : ndarray of shape (n_negatives, n_features), default=None
            Features of photos of neither (see :meth:`negative_features`);
            needed when ``unknown`` is set.

        Returns
        -------
        self
        """
        self._validate_params()
        y = np.asarray(y)
        F = np.asarray(F)
        expected = sum(ex.n_features_out for ex in self.extractors())
        if F.ndim != 2 or F.shape[1] != expected:
            raise DatasetError(f"{type(self).__name__}(features={self.features!r}, backbone={self.backbone!r}) "
                               f"expects {expected} feature columns; got an array of shape {F.shape}.")
        if self.model in FINETUNE and getattr(self, "tuned_weights_", None) is None:
            raise DatasetError(f"{type(self).__name__}(model={self.model!r}) trains the network on the images: "
                               f"call fit(X, y); fit_features() only fits heads on features.")
        if self.unknown is not None and negatives is None:
            raise DatasetError(f"{type(self).__name__}(unknown={self.unknown!r}) needs features of photos of "
                               f"neither: fit_features(F, y, negatives=clf.negative_features(...)[0]).")
        smallest = int(np.unique(y, return_counts=True)[1].min())
        if smallest < 2:
            raise DatasetError(f"{type(self).__name__} needs at least 2 images of each class; the "
                               f"smallest class has {smallest}.")
        from ..features import FeatureLayout

        self.layout_ = FeatureLayout.from_extractors(self.extractors())
        C, E, head = self.split_features(F)
        pipeline = self._make_pipeline(max_components=min(C.shape), calibration_cv=min(5, smallest),
                                       classes=np.unique(y))
        pipeline.fit(C, y)
        self.pipeline_ = pipeline
        self.classes_ = pipeline.classes_
        self.n_features_ = F.shape[1]
        self.feature_names_ = FEATURE_SETS[self.features]
        self.presence_, self.presence_threshold_ = None, None
        self.negatives_sha256_ = ()
        if self.unknown is not None:
            from ._presence import PresenceDetector

            _, E_neg, head_neg = self.split_features(negatives)
            self.presence_ = PresenceDetector(random_state=self.random_state).fit(
                np.vstack([E, E_neg]), np.vstack([head, head_neg]),
                np.r_[np.ones(len(E), bool), np.zeros(len(E_neg), bool)])
            self.presence_threshold_ = 0.5 if self.unknown == "auto" else float(self.unknown)
        return self

    def _presence_from_features(self, F):
        if getattr(self, "presence_", None) is None:
            return np.ones(len(F))
        _, E, head = self.split_features(F)
        return self.presence_.presence(E, head)

    def predict_features(self, F, *, sides=None):
        """The one decision path: label (or ``'unknown'``), probabilities, presence score and reason from features.

        ``predict``, ``evaluate``, ``fit``'s report, the ``predict`` command,
        ``POST /predict`` and the web page all decide through this method, so
        they always give the same answer for the same photo.

        Parameters
        ----------
        F : ndarray of shape (n_images, n_features)
            From :meth:`featurize`.
        sides : array-like of shape (n_images,), default=None
            The photos' shorter sides in pixels (``featurize(X).sides``). Where
            one is below ``min_side`` the answer is ``'unknown'`` with the reason
            ``'too_small'``, whatever the network says. None: the sizes are not
            known (features computed elsewhere) and only the presence score decides.

        Returns
        -------
        decision : Decision
            ``(labels, proba, presence, reasons)``.
        """
        check_is_fitted(self)
        F = np.asarray(F)
        if F.ndim != 2 or F.shape[1] != self.n_features_:
            raise DatasetError(f"{type(self).__name__} was fitted on {self.n_features_} feature columns; got an "
                               f"array of shape {F.shape}.")
        C = self.split_features(F)[0]
        proba = self.pipeline_.predict_proba(C)
        labels = self.classes_[np.argmax(proba, axis=1)]
        presence = self._presence_from_features(F)
        reasons = np.full(len(F), None, dtype=object)
        if getattr(self, "presence_", None) is not None:
            absent = presence < self.presence_threshold_
            reasons[absent] = NOT_CAT_OR_DOG
            if sides is not None and self.min_side is not None:
                small = self._too_small(sides, len(F))
                reasons[small] = TOO_SMALL  # the size decides before the network is trusted
                absent = absent | small
            if np.any(absent):
                labels = labels.astype(object)
                labels[absent] = UNKNOWN
        return Decision(labels, proba, presence, reasons)

    def _too_small(self, sides, n):
        name = type(self).__name__
        validate_params({"min_side": _parameter_constraints()["min_side"]}, {"min_side": self.min_side}, caller=name)
        sides = np.asarray(sides)
        if sides.shape != (n,) or not np.issubdtype(sides.dtype, np.number):
            raise DatasetError(f"The sides given to {name}.predict_features must be one number per feature row "
                               f"({n}); got an array of shape {sides.shape} ({sides.dtype}).")
        return sides < self.min_side

    # -- prediction ----------------------------------------------------------------------------
    def transform_features(self, X):
        """Feature matrix of images ``X`` (see :meth:`featurize`, :meth:`split_features`).

        Parameters
        ----------
        X : sequence of str, os.PathLike or ndarray

        Returns
        -------
        F : ndarray of shape (n_images, n_features)
        """
        check_is_fitted(self)
        return self._features(X, "features")

    def predict(self, X):
        """Predicted class of each image, or ``'unknown'`` (see ``unknown`` and ``min_side``).

        Parameters
        ----------
        X : sequence of str or os.PathLike, or ndarray of shape (n_images, n_features)
            Image files, or the feature matrix :meth:`featurize` returns for them.

        Returns
        -------
        labels : ndarray of shape (n_images,)
            Values of ``classes_``; with ``unknown`` set, an object array
            that may also hold ``'unknown'``.
        """
        check_is_fitted(self)
        return self._decide(X).labels

    def unknown_reason(self, X):
        """Why each photo is answered ``'unknown'``: ``'too_small'``, ``'not_cat_or_dog'``, or None if answered.

        The reasons (:data:`UNKNOWN_REASONS`) are those of ``predict_features(...).reasons``;
        ``predict`` gives the labels of the same decision.

        Parameters
        ----------
        X : sequence of str, os.PathLike or ndarray of shape (H, W, 3), dtype uint8
            Image files or decoded images.

        Returns
        -------
        reasons : ndarray of shape (n_images,), dtype object
        """
        check_is_fitted(self)
        return self._decide(X).reasons

    def presence_score(self, X):
        """How surely a cat or a dog is in each photo, in (0, 1); below ``presence_threshold_``: ``'unknown'``.

        ``sigmoid`` of the smaller of two margins in log-odds units, each 0 at
        its operating point set on the training photos: the ImageNet head's
        log-odds of "a dog breed or a domestic cat", and the learned presence
        model's (see :class:`catdog_sk.models.PresenceDetector`). 1.0
        everywhere when ``unknown`` is None.

        Parameters
        ----------
        X : sequence of str or os.PathLike, or ndarray of shape (n_images, n_features)
            Image files, or the feature matrix :meth:`featurize` returns for them.

        Returns
        -------
        scores : ndarray of shape (n_images,)
        """
        check_is_fitted(self)
        return self._presence_from_features(self._features(X, "predict"))

    def predict_proba(self, X):
        """Probability of each class, columns in the order of ``classes_``.

        Parameters
        ----------
        X : sequence of str or os.PathLike, or ndarray of shape (n_images, n_features)
            Image files, or the feature matrix :meth:`featurize` returns for them.

        Returns
        -------
        proba : ndarray of shape (n_images, 2)
        """
        check_is_fitted(self)
        return self.predict_features(self._features(X, "predict")).proba

    def decision_function(self, X):
        """Signed score; positive means ``classes_[1]``.

        Parameters
        ----------
        X : sequence of str or os.PathLike, or ndarray of shape (n_images, n_features)
            Image files, or the feature matrix :meth:`featurize` returns for them.

        Returns
        -------
        scores : ndarray of shape (n_images,)
        """
        check_is_fitted(self)
        F = self.split_features(self._features(X, "predict"))[0]
        if hasattr(self.pipeline_, "decision_function"):
            return self.pipeline_.decision_function(F)
        # Calibrated SVM: the log-odds of the calibrated probability, so that
        # the sign always agrees with predict().
        proba = np.clip(self.pipeline_.predict_proba(F), 1e-15, 1.0)
        return np.log(proba[:, 1]) - np.log(proba[:, 0])

    def __setstate__(self, state):
        state = dict(state)
        state.setdefault("device", "auto")  # models saved before the 'device' parameter existed
        state.setdefault("epochs", 3)  # ... and before 'model="finetune"'
        state.setdefault("learning_rate", 5e-5)
        state.setdefault("min_side", MIN_SIDE)  # ... and before the size rule: they get the default
        state.pop("_tuned_name", None)  # models saved when predict registered the tuned weights itself
        super().__setstate__(state)
        if self.__dict__.get("tuned_weights_") is not None:  # loaded (pickle, joblib, skops): register once
            self._set_tuned(self.tuned_weights_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.non_deterministic = False
        return tags
