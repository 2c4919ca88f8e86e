"""Which columns of a feature matrix are what: classifier features, CNN embeddings, ImageNet-head columns."""

from dataclasses import dataclass

import numpy as np

__all__ = ["FeatureLayout"]


def _join(parts):
    return np.concatenate(parts) if parts else np.zeros(0, dtype=int)


@dataclass(frozen=True)
class FeatureLayout:
    """The column layout of the matrix that extractors produce together, built from the extractors.

    Each extractor contributes one block of ``n_features_out`` columns, in order. A CNN block holds its
    unit embeddings, then (``head=True``) the ImageNet head's log-probabilities, which the cat/dog
    classifier never sees: they feed the presence model that answers "unknown". Every consumer (the
    estimator, the server, the exporters, monitoring) splits a matrix with :meth:`split` instead of
    slicing for itself.

    Parameters
    ----------
    blocks : tuple of (str, int, int)
        ``(name, n_columns, n_head_columns)`` per extractor, in column order.

    Attributes
    ----------
    n_features : int
    classifier, embeddings, head : ndarray of int
        Column indices of each part (embeddings and head are empty without a CNN).
    """

    blocks: tuple

    @classmethod
    def from_extractors(cls, extractors):
        """The layout of ``extract_features(images, extractors)``'s stacked columns.

        Parameters
        ----------
        extractors : sequence of extractor plans
            With ``name`` and ``n_features_out``; a CNN plan also has ``n_head_columns``.

        Returns
        -------
        layout : FeatureLayout
        """
        return cls(tuple((ex.name, int(ex.n_features_out), int(getattr(ex, "n_head_columns", 0) or 0))
                         for ex in extractors))

    @property
    def n_features(self):
        return sum(width for _, width, _ in self.blocks)

    def _columns(self):
        classifier, embeddings, head, start = [], [], [], 0
        for name, width, n_head in self.blocks:
            body = np.arange(start, start + width - n_head)
            classifier.append(body)
            if name == "cnn":
                embeddings.append(body)
                head.append(np.arange(start + width - n_head, start + width))
            start += width
        return _join(classifier), _join(embeddings), _join(head)

    @property
    def classifier(self):
        return self._columns()[0]

    @property
    def embeddings(self):
        return self._columns()[1]

    @property
    def head(self):
        return self._columns()[2]

    def split(self, F):
        """``(classifier_features, embeddings, head)`` of a feature matrix with this layout.

        Parameters
        ----------
        F : array-like of shape (n_images, n_features)

        Returns
        -------
        classifier_features : ndarray of shape (n_images, n_classifier_columns)
        embeddings : ndarray of shape (n_images, embedding_dim) or None
            None without CNN features.
        head : ndarray of shape (n_images, n_head_columns) or None
            None without head columns.
        """
        F = np.asarray(F)
        classifier, embeddings, head = self._columns()
        if not len(head):  # no CNN head: the matrix is what the classifier sees (a view, not a copy)
            return F, (F[:, embeddings] if len(embeddings) else None), None
        return F[:, classifier], F[:, embeddings], F[:, head]
