"""One registry of names (catdog_sk.registry) feeds the factories, the estimator's checks and every CLI choice."""

import pytest

from catdog_sk import CatDogClassifier, registry
from catdog_sk.exceptions import InvalidParameterError
from catdog_sk.features import FEATURE_NAMES, make_extractor
from catdog_sk.models import make_pipeline, param_grid
from catdog_sk.models._registry import feature_kind


@pytest.mark.parametrize("name", list(registry.EXTRACTORS))
def test_every_extractor_name_builds_its_plan(name):
    plan = make_extractor(name)
    assert plan.name == name and plan.n_features_out > 0 and plan.config()["name"] == name


def test_unknown_extractor_and_model_names_raise_the_one_grammar():
    with pytest.raises(InvalidParameterError, match=r"The 'name' parameter of make_extractor must be one of 'hog', "
                                                    r"'color', 'dense', 'texture' or 'cnn'. Got 'cnnn' instead."):
        make_extractor("cnnn")
    with pytest.raises(InvalidParameterError, match=r"The 'model' parameter of make_pipeline must be one of "
                                                    r"'logreg' or 'svm'. Got 'xgboost' instead."):
        make_pipeline("xgboost")


@pytest.mark.parametrize("feature_set", list(registry.FEATURE_SETS))
@pytest.mark.parametrize("model", list(registry.MODELS))
def test_every_feature_set_and_model_has_a_grid_and_a_pipeline(feature_set, model):
    assert set(registry.FEATURE_SETS[feature_set]) <= set(registry.EXTRACTORS)
    grids = param_grid(model, feature_set, max_components=64)
    assert grids and all(grids)
    pipeline = make_pipeline(model, feature_set=feature_set)
    assert [n for n, _ in pipeline.steps] == ["encode", "scale", "pca", "clf"]
    assert feature_kind(feature_set) in registry.MODELS[model].grid


def test_a_linear_svm_is_liblinears_and_its_grid_maps_back_to_estimator_parameters():
    import numpy as np
    from sklearn.model_selection import GridSearchCV
    from sklearn.svm import SVC, LinearSVC

    from catdog_sk.models._registry import classifier_params

    assert isinstance(make_pipeline("svm", kernel="linear")[-1], LinearSVC)
    assert make_pipeline("svm", kernel="linear")[-1].loss == "hinge"  # the SVM's own loss, not liblinear's default
    assert isinstance(make_pipeline("svm", kernel="rbf")[-1], SVC)
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 8))
    y = (X[:, 0] > 0).astype(int)
    search = GridSearchCV(make_pipeline("svm", feature_set="cnn"), param_grid("svm", "cnn"), cv=3).fit(X, y)
    params = [classifier_params(p) for p in search.cv_results_["params"]]
    assert {"kernel": "linear", "C": 0.001} in params and {"kernel": "linear", "C": 0.01} in params
    best = classifier_params(search.best_params_)  # what CatDogClassifier is refitted with
    rebuilt, searched = make_pipeline("svm", **best)[-1], search.best_estimator_[-1]
    assert type(rebuilt) is type(searched) and rebuilt.C == searched.C


def test_cli_choices_come_from_the_registry(tmp_path):
    from catdog_sk import extract, fit

    fit_parser = fit.build_parser()
    assert fit.MODEL_CHOICES == (*registry.MODELS, *registry.FINETUNE, "all")
    help_text = " ".join(fit_parser.format_help().split())
    assert all(name in help_text for name in fit.MODEL_CHOICES)
    (features_action,) = [a for a in fit_parser._actions if "--features" in a.option_strings]
    # every feature set but the opt-in ones (fisher: slowest to tune) is fitted by default
    assert features_action.default.split(",") == [s for s in registry.FEATURE_SETS
                                                  if s not in registry.OPT_IN_FEATURE_SETS]
    assert set(registry.OPT_IN_FEATURE_SETS) < set(registry.FEATURE_SETS)
    assert all(name in " ".join(fit_parser.format_help().split()) for name in registry.FEATURE_SETS)
    assert extract.FEATURES == FEATURE_NAMES == tuple(registry.EXTRACTORS)
    with pytest.raises(SystemExit) as exc:
        fit.main(["--model", "xgboost", "--artifacts", str(tmp_path)])
    assert exc.value.code == 2


@pytest.mark.parametrize("params, message", [
    ({"backbone": "resnet5O"}, r"The 'backbone' parameter of CatDogClassifier must name known backbones"),
    ({"backbone": "efficientnet_lite0+"}, r"The 'backbone' parameter of CatDogClassifier must name known"),
    ({"runtime": "tensorrt"}, r"The 'runtime' parameter of CatDogClassifier must be one of 'openvino', "
                              r"'openvino-bf16', 'openvino-int8' or 'torch'. Got 'tensorrt' instead."),
    ({"cache": 42}, r"The 'cache' parameter of CatDogClassifier must be None, a folder path or a FeatureCache. "
                    r"Got 42 instead."),
    ({"random_state": "seed"}, r"The 'random_state' parameter of CatDogClassifier must be None, an int"),
])
def test_estimator_checks_backbone_runtime_cache_and_seed_before_reading_any_image(params, message, tmp_path):
    missing = [tmp_path / "never-read-1.jpg", tmp_path / "never-read-2.jpg"]
    with pytest.raises(InvalidParameterError, match=message):
        CatDogClassifier(**params).fit(missing, ["cat", "dog"])


def test_a_choice_at_the_edge_of_its_grid_is_named():
    """fit chose C=100, the largest C of the frozen-CNN logreg grid, and said nothing (issue 27)."""
    from catdog_sk.models.workflow import grid_edges

    assert grid_edges("logreg", "cnn", {"C": 100.0, "scale": None}) == [
        "C=100 is the largest value searched (10, 30, 100): a larger one might do better"]
    assert grid_edges("logreg", "cnn", {"C": 30.0, "scale": None}) == []  # inside its grid
    assert grid_edges("svm", "cnn", {"kernel": "linear", "C": 0.001})[0].startswith("C=0.001 is the smallest")
    assert grid_edges("finetune", "cnn", {"C": 30.0}) == []  # no grid searched
