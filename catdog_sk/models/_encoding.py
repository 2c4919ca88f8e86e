"""What the bag-of-descriptors encoders share: the input checks, a PCA on a sample, chunked encoding.

:class:`VLADEncoder` and :class:`FisherVectorEncoder` both read rows of local descriptors laid end to
end (as :class:`catdog_sk.features.DenseDescriptorExtractor` stores them), reduce every descriptor with
a PCA fitted on a sample of them, and turn each image's bag into one vector with a signed square root
and unit length. They differ only in the model of the descriptors (a k-means codebook, a Gaussian
mixture) and in the statistics they pool.
"""

import numbers

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted

from .._validation import Interval, validate_params
from ..exceptions import InvalidParameterError

__all__ = []

#: Images encoded at a time: bounded memory whatever the number of images.
CHUNK = 128


def power_l2(V):
    """Signed square root, then unit length per row (rows of zeros stay zeros).

    Parameters
    ----------
    V : ndarray of shape (n_rows, n_values)

    Returns
    -------
    V : ndarray of shape (n_rows, n_values)
    """
    V = np.sign(V) * np.sqrt(np.abs(V))
    return V / np.maximum(np.linalg.norm(V, axis=1, keepdims=True), 1e-12)


class _DescriptorEncoder(TransformerMixin, BaseEstimator):
    """Base of the encoders: subclasses set ``_parameter_constraints`` and define three methods.

    ``_fit_model(sample)`` learns the descriptor model from PCA-reduced descriptors;
    ``_encode(P)`` maps reduced descriptors of shape ``(n_images, n_descriptors, n_components)``
    to the final rows; ``_n_features_out()`` is their length.
    """

    _parameter_constraints = {}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]  # float32 out, whatever comes in
        return tags

    def _check_columns(self, n_columns):
        if n_columns % self.descriptor_dim:
            raise InvalidParameterError(
                f"Rows of X must hold whole descriptors of {self.descriptor_dim} values; got "
                f"{n_columns} columns.")

    def _descriptors(self, X, *, reset):
        X = check_array(X, dtype=np.float32)
        if reset:
            validate_params(self._parameter_constraints, self.get_params(deep=False), caller=type(self).__name__)
            self._check_columns(X.shape[1])
            self.n_features_in_ = X.shape[1]
        elif X.shape[1] != self.n_features_in_:
            raise InvalidParameterError(f"X has {X.shape[1]} columns; {type(self).__name__} was fitted on "
                                        f"{self.n_features_in_}.")
        return X.reshape(len(X), -1, self.descriptor_dim)

    def _prepare(self, descriptors):
        """Descriptors as the PCA sees them (subclasses may transform them first)."""
        return descriptors

    def fit(self, X, y=None):
        """Learn the PCA and the descriptor model from a sample of the descriptors.

        Parameters
        ----------
        X : ndarray of shape (n_images, n_descriptors * descriptor_dim)
        y : ignored

        Returns
        -------
        self
        """
        from sklearn.decomposition import PCA

        D = self._descriptors(X, reset=True)
        flat = D.reshape(-1, self.descriptor_dim)
        rng = np.random.RandomState(self.random_state)
        sample = flat[np.sort(rng.choice(len(flat), size=min(self.max_descriptors, len(flat)), replace=False))]
        sample = self._prepare(sample)
        n_components = min(self.n_components, self.descriptor_dim, len(sample))
        self.pca_ = PCA(n_components=n_components, random_state=self.random_state).fit(sample)
        self._fit_model(self.pca_.transform(sample))
        return self

    def transform(self, X):
        """The encoding of each image.

        Parameters
        ----------
        X : ndarray of shape (n_images, n_descriptors * descriptor_dim)

        Returns
        -------
        encoded : ndarray of shape (n_images, n_features_out), dtype float32
            Each row has unit length.
        """
        check_is_fitted(self)
        D = self._descriptors(X, reset=False)
        out = np.empty((len(D), self._n_features_out()), dtype=np.float32)
        for start in range(0, len(D), CHUNK):
            chunk = D[start:start + CHUNK]
            n, m, _ = chunk.shape
            proj = self.pca_.transform(self._prepare(chunk.reshape(-1, self.descriptor_dim))).astype(np.float32)
            out[start:start + n] = self._encode(proj.reshape(n, m, -1))
        return out


#: The constraint of every size parameter of the encoders.
POSITIVE_INT = Interval(numbers.Integral, 1)
