"""CatDogClassifier: a scikit-learn classifier whose X is a sequence of images."""

import numbers
import os

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from .._validation import check_choice, check_number
from ..exceptions import DatasetError, InvalidParameterError
from ._registry import FEATURE_SETS, MODELS, make_pipeline

__all__ = ["CatDogClassifier"]


class CatDogClassifier(ClassifierMixin, BaseEstimator):
    """Tell cats from dogs in images: features (HOG, colour, frozen CNN) + SVM or logistic regression.

    ``X`` is a sequence of image paths (or ``(H, W, 3)`` uint8 arrays); ``y``
    holds their labels (``'cat'``/``'dog'``, or 0/1). Features are computed
    once per image content and cached when ``cache`` is set, so grid searches
    over the classifier's parameters do no image work after the first fit.

    Parameters
    ----------
    features : {'hog', 'color', 'hog+color', 'cnn', 'all'}, default='cnn'
        Which features feed the classifier.
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
    class_weight : None, 'balanced' or dict, default=None
    augment : int, default=0
        Number of augmented copies (flip, random resized crop, colour jitter)
        of each training image added to the training set.
    cache : None, str or FeatureCache, default=None
        Feature cache directory; None computes features every time.
    batch_size : int, default=32
        CNN batch size.
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
        The fitted scaling + PCA + classifier on the features. An SVM is
        wrapped in ``CalibratedClassifierCV`` (Platt scaling), so every model
        has ``predict_proba``.
    n_features_ : int
        Length of the feature vector of one image.
    feature_names_ : tuple of str
        The base extractors concatenated, e.g. ``('hog', 'color')``.

    Examples
    --------
    >>> from catdog_sk import CatDogClassifier
    >>> clf = CatDogClassifier(features="cnn", model="logreg", cache="artifacts/cache")
    >>> clf.fit(train_paths, train_labels).score(test_paths, test_labels)  # doctest: +SKIP
    0.99...
    """

    def __init__(self, *, features="cnn", backbone="efficientnet_lite0", model="logreg", C=0.01,
                 kernel="rbf", gamma="scale", pca=None, class_weight=None, augment=0, cache=None,
                 batch_size=32, runtime="openvino", n_jobs=None, random_state=None, verbose=False):
        self.features = features
        self.backbone = backbone
        self.model = model
        self.C = C
        self.kernel = kernel
        self.gamma = gamma
        self.pca = pca
        self.class_weight = class_weight
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
        if not (self.class_weight is None or self.class_weight == "balanced" or isinstance(self.class_weight, dict)):
            raise InvalidParameterError(f"The 'class_weight' parameter of {name} must be None, 'balanced' or a "
                                        f"dict of class -> weight. Got {self.class_weight!r} instead.")
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
                             class_weight=self.class_weight, calibrate=True, random_state=self.random_state,
                             max_components=max_components, calibration_cv=calibration_cv)

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
        return self

    # -- prediction ----------------------------------------------------------------------------
    def transform_features(self, X):
        """Feature matrix the classifier sees for images ``X`` (before scaling)."""
        check_is_fitted(self)
        return self._features(X, "features")

    def predict(self, X):
        """Predicted class of each image.

        Returns
        -------
        labels : ndarray of shape (n_images,)
        """
        check_is_fitted(self)
        return self.pipeline_.predict(self._features(X, "predict"))

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
