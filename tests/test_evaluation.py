"""The evaluation report says what its figures leave out, and its comparison chart shows what decides."""

import json

import numpy as np

from conftest import save, textured_image


def test_the_unknown_gallery_says_how_many_it_shows_and_results_list_all(tmp_path):
    from catdog_sk.evaluation import write_report

    paths = [str(save(textured_image(seed=i), tmp_path / "img" / f"p{i:02d}.png")) for i in range(40)]
    y = np.array(["cat", "dog"] * 20)
    proba = np.tile([[0.9, 0.1], [0.2, 0.8]], (20, 1))
    labels = y.astype(object)
    labels[:15] = "unknown"
    presence = np.r_[np.linspace(0.01, 0.4, 15), np.full(25, 0.95)]
    metrics = write_report(tmp_path / "r", paths=paths, y_true=y, pred=y, proba=proba, classes=np.array(["cat", "dog"]),
                           title="t", labels=labels, presence=presence, threshold=0.5)
    md = (tmp_path / "r" / "report.md").read_text()
    assert "(12 of 15 shown, least present first" in md
    listed = json.loads((tmp_path / "r" / "results.json").read_text())["unknown_photos"]
    assert [p["path"] for p in listed] == paths[:15] and metrics["unknown_photos"] == listed


def test_photos_of_neither_answered_cat_or_dog_get_their_own_gallery(tmp_path):
    """Issue 27: the report counted the other animals accepted as pets, and showed none of them."""
    from catdog_sk.evaluation import write_report

    paths = [str(save(textured_image(seed=i), tmp_path / "img" / f"p{i:02d}.png")) for i in range(10)]
    y = np.array(["cat", "dog"] * 5)
    negatives = {"paths": paths[:6], "groups": ["cow", "cow", "sheep", "sheep", "horse", "horse"],
                 "labels": np.array(["unknown", "dog", "unknown", "cat", "unknown", "dog"], dtype=object),
                 "presence": np.array([0.1, 0.7, 0.2, 0.9, 0.3, 0.6]), "source": "animals", "note": "six"}
    write_report(tmp_path / "r", paths=paths, y_true=y, pred=y, proba=np.tile([[0.9, 0.1], [0.2, 0.8]], (5, 1)),
                 classes=np.array(["cat", "dog"]), title="t", labels=y.astype(object), presence=np.full(10, 0.95),
                 threshold=0.5, negatives=negatives)
    md = (tmp_path / "r" / "report.md").read_text()
    assert "Photos of neither answered cat or dog (3 of 3 shown, most present first" in md
    assert (tmp_path / "r" / "accepted_negatives.png").stat().st_size > 1000
    listed = json.loads((tmp_path / "r" / "results.json").read_text())["accepted_negatives"]
    assert [(a["path"], a["group"], a["label"]) for a in listed] == [
        (paths[3], "sheep", "cat"), (paths[1], "cow", "dog"), (paths[5], "horse", "dog")]


def test_mcnemar_counts_only_the_photos_the_two_models_disagree_on():
    from catdog_sk.metrics import mcnemar_test

    y = np.array(["cat"] * 100)
    a, b = y.copy(), y.copy()
    b[:10] = "dog"  # 10 photos only a gets right
    a[50:52] = b[50:52] = "dog"  # both wrong: not counted
    t = mcnemar_test(y, a, b)
    assert (t["only_a_right"], t["only_b_right"], t["errors_a"], t["errors_b"]) == (10, 0, 2, 12)
    assert np.isclose(t["p_value"], 2 * 0.5 ** 10)  # each discordant photo a fair coin under the null
    b[:10], b[10] = "cat", "dog"
    a[11] = "dog"  # one photo each way: no evidence of any difference
    assert mcnemar_test(y, a, b)["p_value"] == 1.0


def test_the_comparison_chart_draws_error_rates_on_a_log_scale(tmp_path, monkeypatch):
    from catdog_sk.evaluation.comparison import plot_comparison
    from catdog_sk.plotting import pyplot

    rows = [{"features": f, "model": "logreg", "cv_accuracy": a, "cv_std": 0.01, "test_accuracy": a, "test_n": 2000}
            for f, a in (("hog", 0.72), ("cnn", 0.995), ("all", 0.9925))]
    saved = []
    monkeypatch.setattr(pyplot().Figure, "savefig", lambda fig, path, **kw: saved.append(fig))
    plot_comparison(rows, tmp_path / "c.png")
    accuracy, errors = saved[0].axes
    assert accuracy.get_ylim()[0] >= 0.6  # not 0.5: the axis starts below the weakest model
    assert errors.get_yscale() == "log"
    heights = [bar.get_height() for bar in errors.patches]
    assert np.allclose(sorted(heights)[:2], [0.005, 0.005])  # the two cnn bars: 0.5% error, visible


def test_the_confusion_matrix_counts_the_unknown_answers(tmp_path, monkeypatch):
    from catdog_sk.evaluation.plots import plot_confusion
    from catdog_sk.plotting import pyplot

    saved = []
    monkeypatch.setattr(pyplot().Figure, "savefig", lambda fig, path, **kw: saved.append(fig))
    y = np.array(["cat"] * 5 + ["dog"] * 5)
    answers = np.array(["cat", "cat", "cat", "unknown", "dog", "dog", "dog", "dog", "unknown", "unknown"], dtype=object)
    plot_confusion(y, np.where(answers == "unknown", "cat", answers), ["cat", "dog"], tmp_path / "c.png", answers=answers)
    ax = saved[0].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog", "unknown"]
    assert [t.get_text() for t in ax.texts] == ["3", "1", "1", "0", "3", "2"]  # rows cat, dog; 'unknown' counted


def test_roc_and_pr_curves_zoom_where_good_models_differ(tmp_path, monkeypatch):
    """At AUC 0.999 linear axes show two flat lines; the report zooms on the corner instead (issue 27)."""
    from catdog_sk.evaluation.plots import plot_curves
    from catdog_sk.plotting import pyplot

    rng = np.random.default_rng(0)
    y = np.array(["cat"] * 1000 + ["dog"] * 1000)
    p1 = np.r_[rng.beta(1, 30, 1000), 1 - rng.beta(1, 30, 1000)]
    p1[:5] = 0.9  # five cats called dogs
    saved = []
    monkeypatch.setattr(pyplot().Figure, "savefig", lambda fig, path, **kw: saved.append(fig))
    plot_curves(y, np.c_[1 - p1, p1], ["cat", "dog"], tmp_path)
    roc, pr, calibration = (fig.axes[0] for fig in saved)
    assert roc.get_xscale() == "log" and roc.get_xlim()[0] == 0.5 / 1000
    assert pr.get_ylim()[0] > 0.9  # not from 0.5 (the base rate)
    assert any(t.get_text().startswith("photos per tenth of P:") for t in calibration.texts)
