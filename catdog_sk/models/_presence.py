"""Is a cat or a dog in this photo at all? Two opinions in log-odds units, added, with the head's veto.

1. **The ImageNet head.** The bundled backbones were trained on ImageNet-1k, whose classes hold about
   120 dog breeds and five domestic cats, and also cars, fruit, people's clothes, cows and horses.
   The log-odds that the backbone's own classifier puts on a dog breed or a domestic cat
   (``log P(dog or cat) - log P(other)``, averaged over backbones) says "no pet here" for photos of
   things ImageNet knows, and it knows nothing of the Asirra training photos, so it cannot be
   fooled by their backgrounds. It is weak on the near misses: a cow or a sheep spreads probability
   over dozens of dog breeds (on the animals10 photos it rejects only about 60% of cows and sheep).
2. **A learned presence model.** A logistic regression on the unit CNN embeddings, training photos
   of cats and dogs against photos of neither (the offline check set and any negatives the user
   gives, e.g. part of animals10). It learns the near misses, but only the kinds of negatives it is
   shown: alone it lets most everyday objects through (measured: 30% of the check set rejected when
   it was trained on animals only, 93% for the head).

Taking the more sceptical of the two costs real pets: the learned model, shown sheep, doubts a
poodle that the head is sure of. So the two log-odds are added (independent evidence), with the
head at half weight: ``fused = learned + 0.5 * head``. The head alone keeps a veto for photos it is
very sure show no pet, because the learned model knows only the kinds of negatives it was shown.

Both are shifted so that 0 is their operating point, set on training data only: a low quantile of
the out-of-fold fused scores of the training cats and dogs, and of the head's log-odds of the
same photos for the veto. The presence score is ``sigmoid(min(margin_fused, margin_head))``: 0.5
at the operating point, higher when a pet is more surely there. The head weight and the quantiles
were chosen on out-of-fold scores of the training photos (Asirra train + the offline check set +
half of animals10): at these values the out-of-fold rejection of negatives is as high as at twice
the pet loss, and the check set, held out of the learned model, is still rejected at 93%.
"""

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

__all__ = ["PresenceDetector", "head_log_odds"]


def head_log_odds(head):
    """ImageNet head's log-odds of "dog or domestic cat" vs "anything else", averaged over backbones.

    Parameters
    ----------
    head : ndarray of shape (n_images, 3 * n_backbones)
        ``log P(dog), log P(cat), log P(other)`` per backbone
        (see :data:`catdog_sk.features.HEAD_COLUMNS`).

    Returns
    -------
    log_odds : ndarray of shape (n_images,)
    """
    head = np.asarray(head, dtype=np.float64).reshape(len(head), -1, 3)
    return np.mean(np.logaddexp(head[:, :, 0], head[:, :, 1]) - head[:, :, 2], axis=1)


class PresenceDetector(BaseEstimator):
    """Score how surely a cat or a dog is present, from CNN embeddings and the ImageNet head.

    Parameters
    ----------
    C : float, default=1.0
        Inverse regularisation of the learned presence model.
    head_weight : float, default=0.5
        Weight of the head's log-odds added to the learned model's.
    learned_quantile : float, default=0.003
        Fraction of the training cats and dogs (out-of-fold) below the
        fused score's operating point.
    head_quantile : float, default=0.001
        Fraction of the training cats and dogs below the head's operating point.
    cv : int, default=5
        Folds for the out-of-fold scores that set the learned operating point.
    random_state : int, default=None

    Attributes
    ----------
    model_ : LogisticRegression
        Pets (1) vs photos of neither (0), class-balanced.
    learned_offset_, head_offset_ : float
        The operating points of the fused score and of the head's veto (log-odds units).
    n_negatives_ : int
    """

    def __init__(self, *, C=1.0, head_weight=0.5, learned_quantile=0.003, head_quantile=0.001, cv=5,
                 random_state=None):
        self.C = C
        self.head_weight = head_weight
        self.learned_quantile = learned_quantile
        self.head_quantile = head_quantile
        self.cv = cv
        self.random_state = random_state

    def fit(self, embeddings, head, is_pet, *, groups=None, operating=None):
        """Fit on embeddings and head columns of pets (``is_pet``) and of photos of neither.

        Parameters
        ----------
        embeddings : ndarray of shape (n_images, embedding_dim)
        head : ndarray of shape (n_images, 3 * n_backbones)
        is_pet : ndarray of bool, shape (n_images,)
        groups : array-like of shape (n_images,), default=None
            Images that stay in one fold of the out-of-fold scores (a photo and its augmented copies).
        operating : ndarray of bool, shape (n_images,), default=None
            The pets whose out-of-fold scores set the operating points (default: every pet), for
            example the originals of augmented copies.

        Returns
        -------
        self
        """
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, cross_val_predict

        from ..exceptions import DatasetError

        is_pet = np.asarray(is_pet, dtype=bool)
        n_neg, n_pos = int(np.sum(~is_pet)), int(np.sum(is_pet))
        if n_neg < 2 or n_pos < 2:
            raise DatasetError(f"The presence model needs at least 2 photos of cats or dogs and 2 of neither; "
                               f"got {n_pos} and {n_neg}.")
        odds = head_log_odds(head)
        if not np.all(np.isfinite(odds)):
            raise DatasetError("The backbone has no ImageNet-1k classifier head, so 'unknown' cannot be "
                               "decided; use a bundled backbone (efficientnet_lite0, efficientnet_lite2) "
                               "or unknown=None.")
        y = is_pet.astype(int)
        model = LogisticRegression(C=self.C, class_weight="balanced", max_iter=5000)
        kfold = StratifiedKFold if groups is None else StratifiedGroupKFold
        folds = kfold(n_splits=min(self.cv, n_neg), shuffle=True, random_state=self.random_state)
        oof = cross_val_predict(model, embeddings, y, cv=folds, groups=groups, method="decision_function")
        self.model_ = model.fit(embeddings, y)
        fused = oof + self.head_weight * odds
        sets_point = is_pet if operating is None else is_pet & np.asarray(operating, dtype=bool)
        self.learned_offset_ = float(np.quantile(fused[sets_point], self.learned_quantile))
        self.head_offset_ = float(np.quantile(odds[sets_point], self.head_quantile))
        self.n_negatives_ = n_neg
        return self

    def margins(self, embeddings, head):
        """Fused score and head veto in log-odds units, 0 at their operating points: shape (n_images, 2).

        A photo counts as a pet only when both margins are positive (see :meth:`presence`).

        Parameters
        ----------
        embeddings : ndarray of shape (n_images, embedding_dim)
            The backbone embeddings, as in :meth:`fit`.
        head : ndarray of shape (n_images, 3 * n_backbones)
            The ImageNet-head columns, as in :meth:`fit`.

        Returns
        -------
        margins : ndarray of shape (n_images, 2)
            Column 0: the learned score plus ``head_weight`` times the head's
            log-odds, minus ``learned_offset_``; column 1: the head's log-odds
            minus ``head_offset_``.
        """
        check_is_fitted(self)
        odds = head_log_odds(head)
        fused = self.model_.decision_function(embeddings) + self.head_weight * odds - self.learned_offset_
        return np.stack([fused, odds - self.head_offset_], axis=1)

    def presence(self, embeddings, head):
        """Presence score in (0, 1): 0.5 at the operating point, higher when a pet is surely there.

        The logistic of the smaller of the two :meth:`margins`; a NaN margin scores 0.

        Parameters
        ----------
        embeddings : ndarray of shape (n_images, embedding_dim)
            The backbone embeddings, as in :meth:`fit`.
        head : ndarray of shape (n_images, 3 * n_backbones)
            The ImageNet-head columns, as in :meth:`fit`.

        Returns
        -------
        score : ndarray of shape (n_images,)
        """
        margin = np.nan_to_num(self.margins(embeddings, head).min(axis=1), nan=-np.inf)
        return 1.0 / (1.0 + np.exp(-np.clip(margin, -50, 50)))
