"""models.card.ModelCard: the one typed model card, built, saved, loaded and read by every consumer."""

import json

import numpy as np
import pytest

from catdog_sk import CatDogClassifier
from catdog_sk.models import ModelCard, ModelLoadError, load_model, save_model
from catdog_sk.models.card import CARD_FILE, model_version

from conftest import save, textured_image


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("card")
    images = [save(textured_image(seed=i), root / "img" / f"{i}.png") for i in range(12)]
    clf = CatDogClassifier(features="color", random_state=0).fit(images, ["cat", "dog"] * 6)
    return clf, images, root


def test_a_saved_card_round_trips_and_names_its_version(small_model, tmp_path):
    clf, images, _ = small_model
    extra = {"run": "r1", "seed": 0, "reference": {"p_positive": [0.1, 0.9], "unknown_rate": 0.0}}
    folder = save_model(clf, tmp_path / "m", card=extra)
    card = ModelCard.load(folder)
    raw = json.loads((folder / CARD_FILE).read_text())
    assert dict(card) == raw and card.to_dict() == raw
    assert card.sha256 == raw["model_sha256"] and len(card.sha256) == 64
    assert card.version == card.sha256[:12] and card.classes == ["cat", "dog"]
    assert card.reference == {"p_positive": [0.1, 0.9], "unknown_rate": 0.0}
    assert card["params"]["features"] == "color" and "cache" not in card["params"]
    assert "# Model card: r1" in (folder / "model_card.md").read_text() == card.markdown()
    loaded = load_model(folder)
    assert isinstance(loaded.card_, ModelCard) and model_version(loaded) == card.version
    assert model_version(clf) == "unversioned"  # fitted here, never saved
    with pytest.raises(TypeError):
        card["run"] = "changed"  # read-only


def test_saving_a_loaded_model_keeps_the_card_beside_the_file_not_in_it(small_model, tmp_path):
    import skops.io as sio

    clf, images, _ = small_model
    first = load_model(save_model(clf, tmp_path / "a", card={"run": "a"}))
    second = save_model(first, tmp_path / "b", card={"run": "b"})
    assert not [t for t in sio.get_untrusted_types(file=second / "model.skops") if "card" in t.lower()]
    assert ModelCard.load(second)["run"] == "b" and first.card_["run"] == "a"
    np.testing.assert_array_equal(load_model(second).predict(images), clf.predict(images))


@pytest.mark.parametrize("content, message", [
    (b"\xff\xfe not utf-8", "not UTF-8 JSON"),
    (b"{ not json", "not UTF-8 JSON"),
    (b"[1, 2, 3]", "holds a JSON list, not an object"),
])
def test_a_bad_card_is_refused_in_one_line(tmp_path, content, message):
    path = tmp_path / CARD_FILE
    path.write_bytes(content)
    with pytest.raises(ModelLoadError, match=message) as exc:
        ModelCard.load(path)
    assert len(str(exc.value).splitlines()) == 1
    assert path.read_bytes() == content  # nothing changed


def test_missing_fields_give_safe_defaults():
    card = ModelCard({})
    assert (card.sha256, card.version, card.classes, card.reference) == ("", "unversioned", [], {})
    assert ModelCard({"model_sha256": 5}).version == "unversioned"


@pytest.mark.parametrize("checksum", ["", None, 12345, ["a" * 64], "ab" * 16, "A" * 64, "g" * 64, " " + "a" * 63],
                         ids=["empty", "null", "int", "list", "short", "uppercase", "non-hex", "space"])
def test_a_card_without_a_well_formed_checksum_is_refused_like_a_missing_one(small_model, tmp_path, checksum):
    clf, images, _ = small_model
    folder = save_model(clf, tmp_path / "m")
    model_file = folder / "model.skops"
    with open(model_file, "ab") as fh:  # modify the model: only the checksum would notice
        fh.write(b"\0")
    before = model_file.read_bytes()
    card = json.loads((folder / CARD_FILE).read_text())
    card["model_sha256"] = checksum
    (folder / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match="no well-formed model_sha256.*--unsafe") as exc:
        load_model(folder)
    assert len(str(exc.value).splitlines()) == 1
    assert model_file.read_bytes() == before  # the model file is untouched


def test_an_unchanged_model_with_a_damaged_checksum_still_loads_with_unsafe(small_model, tmp_path):
    clf, images, _ = small_model
    folder = save_model(clf, tmp_path / "m")
    card = json.loads((folder / CARD_FILE).read_text())
    card["model_sha256"] = ""
    (folder / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match="no well-formed model_sha256"):
        load_model(folder)
    np.testing.assert_array_equal(load_model(folder, unsafe=True).predict(images), clf.predict(images))


def test_model_folder_file_names_do_not_import_scikit_learn():
    import subprocess
    import sys

    code = "import sys, catdog_sk.serving; print(any(m.split('.')[0] == 'sklearn' for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_a_card_lists_only_the_parameters_its_model_uses():
    """A logistic regression's card listed kernel='rbf', gamma and epochs (issue 27)."""
    from catdog_sk import CatDogClassifier
    from catdog_sk.models.card import card_params

    logreg = card_params(CatDogClassifier(model="logreg", cache="/somewhere").get_params())
    assert not {"kernel", "gamma", "epochs", "learning_rate", "cache"} & set(logreg) and logreg["C"] == 0.01
    rbf = card_params(CatDogClassifier(model="svm", kernel="rbf").get_params())
    assert {"kernel", "gamma"} <= set(rbf) and "epochs" not in rbf
    assert "gamma" not in card_params(CatDogClassifier(model="svm", kernel="linear").get_params())
    assert {"epochs", "learning_rate"} <= set(card_params(CatDogClassifier(model="finetune").get_params()))
