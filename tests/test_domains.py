"""Issue 29's bounds beyond Asirra: other pets, other animals and small photos, for the default model.

The model is the one the suite's shared ``fit --model all`` run promotes (``full_run``: ``make demo``'s
Lite0 + Lite2 with half of animals10 as negatives); the sets are ``catdog_sk._testing.domain_sets``
(as ``benchmarks/bench_domains.py`` measures them): the 2,000 shared test photos, the 600 ``breeds/``
photos, animals10's 64 web cats and dogs (never fitted on), its 128 other animals the model was not fitted
on, and 300 shared test photos (150 per class, seed 0) with the short side brought down to 96 and 128 px.
Each bound is issue 29's, as written; one the model does not reach yet is a strict xfail that names the
measured figure, so that reaching it fails the mark and the mark is removed.
"""

import operator

import pytest

from catdog_sk._testing import answer_rates, domain_sets
from catdog_sk.models import load_model

SETS = ("test", "breeds", "a10-pets", "a10-others-held", "test-96px", "test-128px")


def not_reached(figure):
    return pytest.mark.xfail(strict=True, reason=f"{figure}; target of issue 29 not reached")


@pytest.fixture(scope="module")
def rates(full_run, shared_data, animals10, feature_cache):
    """Each set's right / wrong-class / 'unknown' shares under the default model (features from the cache)."""
    root = shared_data.parent
    if not (root / "breeds" / "cats").is_dir():
        pytest.fail(f"breeds/ not found at {root / 'breeds'}: it sits beside catsdogs in ../shared/data.")
    clf = load_model(full_run / "models" / "full")
    out = {}
    for name, items, truth in domain_sets(root, fitted_negatives=clf.negatives_sha256_, sides=(96, 128),
                                          n_small=300, sets=SETS):
        out[name] = answer_rates(clf.predict_features(clf.featurize(items, cache=feature_cache).features).labels,
                                 truth)
    print({name: {k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()} for name, r in out.items()})
    return out


@pytest.mark.cnn
@pytest.mark.parametrize("name, share, compare, bound", [
    # pets from other sources: at most 1% lost to 'unknown', at most 0.5% called by the wrong class
    pytest.param("breeds", "unknown", "<=", 0.01, marks=not_reached("2.33% unknown (dogs 3.67%, cats 1.00%)")),
    ("breeds", "wrong", "<=", 0.005),
    pytest.param("a10-pets", "unknown", "<=", 0.01, marks=not_reached("1.56% unknown (1 of 64: a cat)")),
    ("a10-pets", "wrong", "<=", 0.005),
    # the shared test's figures kept
    ("test", "unknown", "<=", 0.01),
    ("test", "answered_right", ">=", 0.996),
    # other animals kept out
    ("a10-others-held", "unknown", ">=", 0.97),
    # small photos: at 96 px and above, at most 1% wrong class and 2% 'unknown'
    ("test-96px", "wrong", "<=", 0.01),
    pytest.param("test-96px", "unknown", "<=", 0.02, marks=not_reached("3.00% unknown (2.80% of all 2,000)")),
    ("test-128px", "wrong", "<=", 0.01),
    pytest.param("test-128px", "unknown", "<=", 0.02, marks=not_reached("2.33% unknown (2.15% of all 2,000)")),
])
def test_default_model_meets_issue_29_bounds(rates, name, share, compare, bound):
    r = rates[name]
    assert {"<=": operator.le, ">=": operator.ge}[compare](r[share], bound), \
        f"{name}: {share} {100 * r[share]:.2f}% of {r['n']}, bound {compare} {100 * bound:g}%"


def test_the_check_set_is_the_same_on_every_call():
    """The presence model's photos of neither must not change between processes (issue 29: the bounds above
    sit one photo from the figures; scikit-image's binary_blobs drew new blobs on every call)."""
    import numpy as np

    from catdog_sk.checkset import non_animal_images

    (names, first), (_, second) = non_animal_images(random_state=0), non_animal_images(random_state=0)
    assert all(np.array_equal(a, b) for a, b in zip(first, second)), names


def test_presence_operating_points_can_come_from_some_pets_and_folds_keep_groups():
    """PresenceDetector.fit(groups=, operating=): copies of a photo in one fold; the originals set the point."""
    import numpy as np

    from catdog_sk.models import PresenceDetector

    rng = np.random.default_rng(0)
    n = 60
    E = np.vstack([rng.normal(1, 1, (n, 4)), rng.normal(1, 1, (n, 4)) * 0.2, rng.normal(-1, 1, (n, 4))])
    head = np.log(np.full((3 * n, 3), 1 / 3))
    is_pet = np.r_[np.ones(2 * n, bool), np.zeros(n, bool)]
    groups = np.r_[np.arange(n), np.arange(n), n + np.arange(n)]  # the second n pets copy the first n
    plain = PresenceDetector(random_state=0).fit(E, head, is_pet)
    grouped = PresenceDetector(random_state=0, learned_quantile=0.1).fit(E, head, is_pet, groups=groups)
    originals = PresenceDetector(random_state=0, learned_quantile=0.1).fit(
        E, head, is_pet, groups=groups, operating=np.r_[np.ones(n, bool), np.zeros(2 * n, bool)])
    assert np.isfinite(plain.learned_offset_)
    assert originals.learned_offset_ != grouped.learned_offset_  # set on the originals' scores only
    np.testing.assert_allclose(originals.model_.coef_, grouped.model_.coef_)  # the same model either way
