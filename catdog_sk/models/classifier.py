"""CatDogClassifier: a scikit-learn classifier whose X is a sequence of images."""

import numbers
import os

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from .._validation import check_choice, check_number
from ..exceptions import DatasetError, InvalidParameterError
from ._registry import FEATURE_SETS, MODELS, make_pipeline

__all__ = ["CatDogClassifier", "UNKNOWN"]

#: The label ``predict`` gives an image unlike any training photo (with ``unknown_rate`` set).
UNKNOWN = "unknown"


class CatDogClassifier(ClassifierMixin, BaseEstimator):
    """Tell cats from dogs in images: features (HOG, colour, frozen CNN) + SVM or logistic regression.

    ``X`` is a sequence of image paths (or ``(H, W, 3)`` uint8 arrays); ``y``
    holds their labels (``'cat'``/``'dog'``, or 0/1). Features are computed
    once per image content and cached when ``cache`` is set, so grid searches
    over the classifier's parameters do no image work after the first fit.

    Parameters
    ----------
    features : {'hog', 'color', 'hog+color', 'vlad', 'cnn', 'all'}, default='cnn'
        Which features feed the classifier. ``'vlad'`` uses no neural network:
        VLAD-encoded dense DAISY descriptors and LBP/colour pyramids.
    backbone : str, default='efficientnet_lite0'
        CNN backbone for ``'cnn'`` and ``'all'`` (see
        :func:`catdog_sk.list_backbones`; timm and ``'torchvision/<name>'``
        names download their weights when online).
    model : {'logreg', 'svm'}, default='logreg'
        The classifier.
    C : float, default=0.01
        Inverse regularisation strength.
    kernel : {'rbf', 'linear'}, default='rbf'
        SVM kernel (``model='svm'`` only).
    gamma : 'scale' or float, default='scale'
        RBF kernel width (``model='svm'`` only).
    pca : int or None, default=None
        Reduce features to this many principal components before the classifier.
    scale : {'standard', None}, default='standard'
        Standardise each feature before PCA and the classifier, or keep the
        features as they are (CNN embeddings are unit vectors; unscaled, with a
        large ``C``, they do best).
    class_weight : None, 'balanced' or dict, default=None
    unknown_rate : float or None, default=None
        Abstain on photos that show neither a cat nor a dog: ``predict`` says
        ``'unknown'`` for images whose CNN embedding is unlike the training
        photos (local outlier factor, 20 neighbours), with the threshold set so
        that this fraction of the *training* images would be called unknown.
        Needs CNN features. None never abstains. With 0.001 on the shared
        split: 99.75% of test photos kept, 97.7% of the non-animal check set
        (:func:`catdog_sk.checkset.non_animal_images`) called unknown.
    augment : int, default=0
        Number of augmented copies (flip, random resized crop, colour jitter)
        of each training image added to the training set.
    cache : None, str or FeatureCache, default=None
        Feature cache directory; None computes features every time.
    batch_size : int, default=4
        Images per CNN forward pass; small batches are fastest on CPU.
    runtime : {'openvino', 'openvino-bf16', 'torch'}, default='openvino'
        What runs the CNN (see :class:`catdog_sk.features.EmbeddingTransformer`).
    n_jobs : int, default=None
        Threads for decoding and per-image features (None: all CPUs).
    random_state : int, default=None
        Seeds augmentation and PCA.
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
        Length of the feature vector of one image.
    feature_names_ : tuple of str
        The base extractors concatenated, e.g. ``('hog', 'color')``.
    novelty_ : sklearn.neighbors.LocalOutlierFactor or None
        With ``unknown_rate``: ``LocalOutlierFactor(novelty=True)`` fitted on
        the training images' CNN embeddings (it keeps them: about 10 MB per
        1,000 images with two backbones); see :meth:`novelty_score`.

    Examples
    --------
    >>> from catdog_sk import CatDogClassifier
    >>> clf = CatDogClassifier(features="cnn", model="logreg", cache="artifacts/cache")
    >>> clf.fit(train_paths, train_labels).score(test_paths, test_labels)  # doctest: +SKIP
    0.99...
    """

    def __init__(self, *, features="cnn", backbone="efficientnet_lite0", model="logreg", C=0.01,
                 kernel="rbf", gamma="scale", pca=None, scale="standard", class_weight=None,
                 unknown_rate=None, augment=0, cache=None,
                 batch_size=4, runtime="openvino", n_jobs=None, random_state=None, verbose=False):
        self.features = features
        self.backbone = backbone
        self.model = model
        self.C = C
        self.kernel = kernel
        self.gamma = gamma
        self.pca = pca
        self.scale = scale
        self.class_weight = class_weight
        self.unknown_rate = unknown_rate
        self.augment = augment
        self.cache = cache
        self.batch_size = batch_size
        self.runtime = runtime
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # -- parameter validation: everything is checked before any image is read --------------
    def _validate_params(self):
        name = type(self).__name__
        check_choice(self.features, tuple(FEATURE_SETS), name="features", caller=name)
        check_choice(self.model, tuple(sorted(MODELS)), name="model", caller=name)
        check_number(self.C, name="C", caller=name, kind=numbers.Real, low=1e-12)
        check_choice(self.kernel, ("rbf", "linear"), name="kernel", caller=name)
        if not (self.gamma == "scale" or (isinstance(self.gamma, numbers.Real) and self.gamma > 0)):
            raise InvalidParameterError(
                f"The 'gamma' parameter of {name} must be 'scale' or a float > 0. Got {self.gamma!r} instead."
            )
        check_number(self.pca, name="pca", caller=name, low=1, allow_none=True)
        check_choice(self.scale, ("standard", None), name="scale", caller=name)
        if not (self.class_weight is None or self.class_weight == "balanced" or isinstance(self.class_weight, dict)):
            raise InvalidParameterError(f"The 'class_weight' parameter of {name} must be None, 'balanced' or a "
                                        f"dict of class -> weight. Got {self.class_weight!r} instead.")
        check_number(self.unknown_rate, name="unknown_rate", caller=name, kind=numbers.Real, low=1e-6, high=0.5,
                     allow_none=True)
        if self.unknown_rate is not None and "cnn" not in FEATURE_SETS[self.features]:
            raise InvalidParameterError(
                f"The 'unknown_rate' parameter of {name} needs CNN features (features='cnn' or 'all'). "
                f"Got features={self.features!r} instead."
            )
        check_number(self.augment, name="augment", caller=name, low=0, high=32)
        check_number(self.batch_size, name="batch_size", caller=name, low=1)
        check_number(self.n_jobs, name="n_jobs", caller=name, allow_none=True)
        if not isinstance(self.verbose, (bool, numbers.Integral)):
            raise InvalidParameterError(f"The 'verbose' parameter of {name} must be a bool. "
                                        f"Got {self.verbose!r} instead.")

    def _extractors(self):
        from ..features import make_extractor

        return [make_extractor(n, backbone=self.backbone, batch_size=self.batch_size, runtime=self.runtime,
                               caller=type(self).__name__) for n in FEATURE_SETS[self.features]]

    @staticmethod
    def _as_image_list(X):
        if isinstance(X, (str, bytes, os.PathLike)) or (isinstance(X, np.ndarray) and X.ndim == 3
                                                        and X.dtype == np.uint8):
            raise InvalidParameterError(
                f"X must be a sequence of images (paths or arrays), not a single {type(X).__name__}; "
                f"wrap one image in a list."
            )
        return list(X)

    def _features(self, X, desc):
        from ..features import extract_features

        result = extract_features(self._as_image_list(X), self._extractors(), cache=self.cache, n_jobs=self.n_jobs,
                                  progress=bool(self.verbose), desc=desc)
        return np.hstack(result.features) if len(result.features) > 1 else result.features[0]

    def _features_skipping(self, X, *, cache=None, n_jobs=None, progress=False, desc="features"):
        """Features of the decodable images of ``X``, for the CLIs that report bad files and go on.

        Returns
        -------
        features : ndarray of shape (n_decoded, n_features)
        ok : ndarray of int
            Indices into ``X`` of the decoded images, in order.
        errors : list of ImageDecodeError
        """
        from ..features import extract_features

        res = extract_features(self._as_image_list(X), self._extractors(), cache=cache, n_jobs=n_jobs,
                               on_error="skip", progress=progress, desc=desc)
        ok = np.flatnonzero(res.ok)
        return np.hstack([f[ok] for f in res.features]), ok, res.errors

    def _make_pipeline(self, max_components, calibration_cv):
        return make_pipeline(self.model, C=self.C, kernel=self.kernel, gamma=self.gamma, pca=self.pca,
                             scale=self.scale, class_weight=self.class_weight, calibrate=True,
                             random_state=self.random_state, max_components=max_components,
                             calibration_cv=calibration_cv, feature_set=self.features)

    # -- fitting -----------------------------------------------------------------------------
    def fit(self, X, y):
        """Extract features of the images (from the cache when present) and fit the classifier.

        Parameters
        ----------
        X : sequence of str, os.PathLike or ndarray of shape (H, W, 3), dtype uint8
        y : array-like of shape (n_images,)
            Two classes, e.g. ``'cat'``/``'dog'`` or 0/1.

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
        if self.augment:
            from ..preprocess import AugmentedImage

            rng = np.random.RandomState(self.random_state)
            seeds = rng.randint(0, 2**31 - 1, size=(self.augment, len(X)))
            X = X + [AugmentedImage(x, int(s)) for row in seeds for x, s in zip(X, row)]
            y = np.concatenate([y] + [y] * self.augment)
        return self._fit_features(self._features(X, "fit"), y)

    def _fit_features(self, F, y):
        """Fit on precomputed features (used by ``fit`` and by the grid-search CLI)."""
        self._validate_params()
        y = np.asarray(y)
        smallest = int(np.unique(y, return_counts=True)[1].min())
        if smallest < 2:
            raise DatasetError(f"{type(self).__name__} needs at least 2 images of each class; the "
                               f"smallest class has {smallest}.")
        pipeline = self._make_pipeline(max_components=min(F.shape), calibration_cv=min(5, smallest))
        pipeline.fit(F, y)
        self.pipeline_ = pipeline
        self.classes_ = pipeline.classes_
        self.n_features_ = F.shape[1]
        self.feature_names_ = FEATURE_SETS[self.features]
        self.novelty_ = None
        if self.unknown_rate is not None:
            self.novelty_ = self._fit_novelty(F)
        return self

    def _cnn_columns(self, n_features):
        """Slice of the feature vector holding the CNN embedding (the last block, see FEATURE_SETS)."""
        if self.feature_names_ == ("cnn",):
            return slice(0, n_features)
        width = self._extractors()[self.feature_names_.index("cnn")].n_features_out
        return slice(n_features - width, n_features)

    def _fit_novelty(self, F):
        # On the whole embedding: PCA fitted on cats and dogs would project the
        # directions that set other photos apart to nothing (measured: a PCA-64
        # front end rejected 0% of the non-animal check set, without it 97.7%).
        from sklearn.neighbors import LocalOutlierFactor

        E = F[:, self._cnn_columns(F.shape[1])]
        detector = LocalOutlierFactor(n_neighbors=min(20, len(E) - 1), novelty=True,
                                      contamination=float(self.unknown_rate))
        return detector.fit(E)

    def _novelty_from_features(self, F):
        if getattr(self, "novelty_", None) is None:
            return np.zeros(len(F))
        return -self.novelty_.decision_function(F[:, self._cnn_columns(F.shape[1])])

    def _decide(self, F):
        """Probabilities and labels from features; ``'unknown'`` where the novelty score is > 0.

        Returns
        -------
        labels : ndarray of shape (n_images,)
            Class labels, or (object dtype) ``UNKNOWN`` for abstentions.
        proba : ndarray of shape (n_images, 2)
        novelty : ndarray of shape (n_images,)
            See :meth:`novelty_score`.
        """
        proba = self.pipeline_.predict_proba(F)
        labels = self.classes_[np.argmax(proba, axis=1)]
        novelty = self._novelty_from_features(F)
        if np.any(novelty > 0):
            labels = labels.astype(object)
            labels[novelty > 0] = UNKNOWN
        return labels, proba, novelty

    # -- prediction ----------------------------------------------------------------------------
    def transform_features(self, X):
        """Feature matrix the classifier sees for images ``X`` (before scaling)."""
        check_is_fitted(self)
        return self._features(X, "features")

    def predict(self, X):
        """Predicted class of each image, or ``'unknown'`` (see ``unknown_rate``).

        Returns
        -------
        labels : ndarray of shape (n_images,)
            Values of ``classes_``; with ``unknown_rate`` set, an object array
            that may also hold ``'unknown'``.
        """
        check_is_fitted(self)
        return self._decide(self._features(X, "predict"))[0]

    def novelty_score(self, X):
        """How unlike the training photos each image is; above 0, ``predict`` says ``'unknown'``.

        The negated ``decision_function`` of the local-outlier-factor detector
        fitted on the training embeddings (0 everywhere when ``unknown_rate``
        is None).

        Returns
        -------
        scores : ndarray of shape (n_images,)
        """
        check_is_fitted(self)
        return self._novelty_from_features(self._features(X, "predict"))

    def predict_proba(self, X):
        """Probability of each class, columns in the order of ``classes_``.

        Returns
        -------
        proba : ndarray of shape (n_images, 2)
        """
        check_is_fitted(self)
        return self.pipeline_.predict_proba(self._features(X, "predict"))

    def decision_function(self, X):
        """Signed score; positive means ``classes_[1]``.

        Returns
        -------
        scores : ndarray of shape (n_images,)
        """
        check_is_fitted(self)
        F = self._features(X, "predict")
        if hasattr(self.pipeline_, "decision_function"):
            return self.pipeline_.decision_function(F)
        # Calibrated SVM: the log-odds of the calibrated probability, so that
        # the sign always agrees with predict().
        proba = np.clip(self.pipeline_.predict_proba(F), 1e-15, 1.0)
        return np.log(proba[:, 1]) - np.log(proba[:, 0])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.non_deterministic = False
        return tags
