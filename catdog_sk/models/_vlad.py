"""VLAD: a learned codebook that turns each image's bag of local descriptors into one vector."""

import numbers

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted

from .._validation import check_number
from ..exceptions import InvalidParameterError

__all__ = ["VLADEncoder"]


class VLADEncoder(TransformerMixin, BaseEstimator):
    """Vector of locally aggregated descriptors (Jegou et al., 2010), with power and L2 normalisation.

    Each row of ``X`` holds one image's local descriptors laid end to end
    (as :class:`catdog_sk.features.DenseDescriptorExtractor` stores them).
    ``fit`` learns a PCA and a k-means codebook from a sample of the
    descriptors; ``transform`` sums, per codeword, the residuals of the
    descriptors assigned to it, then applies a signed square root and scales
    each image's vector to unit length. On the shared split, VLAD of
    mirror-pooled DAISY descriptors alone gives 81% with logistic regression,
    where HOG gives 70%.

    Parameters
    ----------
    n_clusters : int, default=64
        Codebook size.
    n_components : int, default=64
        Descriptors are reduced to this many principal components first.
    descriptor_dim : int, default=104
        Length of one descriptor (each row of ``X`` is a multiple of it).
    max_descriptors : int, default=100_000
        Descriptors sampled to fit the PCA and the codebook.
    random_state : int, default=None

    Attributes
    ----------
    pca_ : sklearn.decomposition.PCA
    kmeans_ : sklearn.cluster.MiniBatchKMeans
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from catdog_sk.models import VLADEncoder
    >>> X = np.random.RandomState(0).rand(20, 50 * 8)      # 20 images x 50 descriptors of 8 values
    >>> VLADEncoder(n_clusters=4, n_components=3, descriptor_dim=8, random_state=0).fit_transform(X).shape
    (20, 12)
    """

    def __init__(self, *, n_clusters=64, n_components=64, descriptor_dim=104, max_descriptors=100_000,
                 random_state=None):
        self.n_clusters = n_clusters
        self.n_components = n_components
        self.descriptor_dim = descriptor_dim
        self.max_descriptors = max_descriptors
        self.random_state = random_state

    def _descriptors(self, X, *, reset):
        X = check_array(X, dtype=np.float32)
        if reset:
            name = type(self).__name__
            for param in ("n_clusters", "n_components", "descriptor_dim", "max_descriptors"):
                check_number(getattr(self, param), name=param, caller=name, kind=numbers.Integral, low=1)
            if X.shape[1] % self.descriptor_dim:
                raise InvalidParameterError(
                    f"Rows of X must hold whole descriptors of {self.descriptor_dim} values; got "
                    f"{X.shape[1]} columns.")
            self.n_features_in_ = X.shape[1]
        elif X.shape[1] != self.n_features_in_:
            raise InvalidParameterError(f"X has {X.shape[1]} columns; {type(self).__name__} was fitted on "
                                        f"{self.n_features_in_}.")
        return X.reshape(len(X), -1, self.descriptor_dim)

    def fit(self, X, y=None):
        """Learn the PCA and the codebook from a sample of the descriptors.

        Parameters
        ----------
        X : ndarray of shape (n_images, n_descriptors * descriptor_dim)
        y : ignored

        Returns
        -------
        self
        """
        from sklearn.cluster import MiniBatchKMeans
        from sklearn.decomposition import PCA

        D = self._descriptors(X, reset=True)
        flat = D.reshape(-1, self.descriptor_dim)
        rng = np.random.RandomState(self.random_state)
        sample = flat[np.sort(rng.choice(len(flat), size=min(self.max_descriptors, len(flat)), replace=False))]
        n_components = min(self.n_components, self.descriptor_dim, len(sample))
        self.pca_ = PCA(n_components=n_components, random_state=self.random_state).fit(sample)
        self.kmeans_ = MiniBatchKMeans(n_clusters=min(self.n_clusters, len(sample)), n_init=1, batch_size=4096,
                                       random_state=self.random_state).fit(self.pca_.transform(sample))
        return self

    def transform(self, X):
        """VLAD vector of each image.

        Parameters
        ----------
        X : ndarray of shape (n_images, n_descriptors * descriptor_dim)

        Returns
        -------
        vlad : ndarray of shape (n_images, n_clusters * n_components), dtype float32
        """
        from scipy import sparse

        check_is_fitted(self)
        D = self._descriptors(X, reset=False)
        centers = self.kmeans_.cluster_centers_.astype(np.float32)
        k, d = centers.shape
        out = np.empty((len(D), k * d), dtype=np.float32)
        for start in range(0, len(D), 128):  # bounded memory whatever the number of images
            chunk = D[start:start + 128]
            n, m, _ = chunk.shape
            proj = self.pca_.transform(chunk.reshape(-1, self.descriptor_dim)).astype(np.float32)
            label = self.kmeans_.predict(proj)
            key = np.repeat(np.arange(n), m) * k + label
            # Sum residuals per (image, codeword) as one sparse matrix product.
            assign = sparse.csr_matrix((np.ones(len(key), np.float32), (key, np.arange(len(key)))),
                                       shape=(n * k, len(key)))
            V = np.asarray(assign @ (proj - centers[label])).reshape(n, -1)
            V = np.sign(V) * np.sqrt(np.abs(V))
            out[start:start + n] = V / np.maximum(np.linalg.norm(V, axis=1, keepdims=True), 1e-12)
        return out
