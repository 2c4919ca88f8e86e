"""device='auto'|'cpu'|'cuda' for the CNN: the CPU path without a GPU, a one-line error for 'cuda', GPU parity.

The GPU tests are marked ``gpu``; without a CUDA GPU they are skipped with the reason printed (-rs).
"""

import subprocess
import sys

import numpy as np
import pytest

from catdog_sk import CatDogClassifier
from catdog_sk.exceptions import BackboneUnavailableError
from catdog_sk.features import make_extractor
from catdog_sk.features._embed import cuda_available

from conftest import REPO

needs_gpu = pytest.mark.skipif(not cuda_available(), reason="needs a CUDA GPU (torch.cuda.is_available() is False)")


def test_auto_is_the_cpu_path_without_a_gpu_and_cuda_fails_at_once(tmp_path):
    if cuda_available():
        pytest.skip("this machine has a GPU: 'auto' means CUDA here")
    auto, cpu = make_extractor("cnn"), make_extractor("cnn", device="cpu")
    assert auto.config() == cpu.config()  # same cache key: the same embeddings
    with pytest.raises(BackboneUnavailableError, match=r"device='cuda' was asked for, but PyTorch sees no CUDA GPU"):
        make_extractor("cnn", device="cuda")
    never_read = [tmp_path / "a.jpg", tmp_path / "b.jpg"]
    with pytest.raises(BackboneUnavailableError, match="no CUDA GPU") as exc:
        CatDogClassifier(device="cuda").fit(never_read, ["cat", "dog"])
    assert len(str(exc.value).splitlines()) == 1


@pytest.mark.parametrize("command", ["extract", "fit"])
def test_cli_device_cuda_without_a_gpu_is_one_line_and_exit_1(command, tmp_path):
    if cuda_available():
        pytest.skip("this machine has a GPU")
    (tmp_path / "cats").mkdir()
    out = subprocess.run([sys.executable, "-m", f"catdog_sk.{command}", "--data", str(tmp_path), "--device", "cuda",
                          "--features", "cnn", "--no-cache", "--quiet"], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "no CUDA GPU" in out.stderr


@pytest.mark.gpu
@needs_gpu
@pytest.mark.cnn
def test_cuda_embeddings_match_the_cpu_reference(shared_data):
    from catdog_sk.data import load_dataset
    from catdog_sk.features import extract_features

    paths = load_dataset(shared_data)["test"].paths[::40]
    cpu = extract_features(paths, [make_extractor("cnn", device="cpu")]).features[0]
    gpu = extract_features(paths, [make_extractor("cnn", device="cuda")]).features[0]
    a, b = cpu[:, :1280], gpu[:, :1280]
    cosine = np.sum(a * b, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    print(f"CUDA vs CPU on {len(paths)} test photos: min cosine {cosine.min():.5f}, mean {cosine.mean():.5f}")
    assert cosine.min() >= 0.999
    assert make_extractor("cnn", device="cuda").config() != make_extractor("cnn", device="cpu").config()


@pytest.mark.gpu
@needs_gpu
@pytest.mark.cnn
def test_cuda_features_keep_the_test_accuracy(shared_data, shared_features):
    from catdog_sk.data import load_dataset
    from catdog_sk.features import extract_features

    F_train, y_train = shared_features["train"]
    F_test, y_test = shared_features["test"]
    clf = CatDogClassifier(scale=None, C=100).fit_features(F_train, y_train)
    test = load_dataset(shared_data)["test"]
    F_gpu = extract_features(test.paths, [make_extractor("cnn", device="cuda")]).features[0]
    cpu_acc = np.mean(clf.predict_features(F_test).labels == y_test)
    gpu_acc = np.mean(clf.predict_features(F_gpu).labels == y_test)
    print(f"test accuracy with CPU features {cpu_acc:.4f}, with CUDA features {gpu_acc:.4f}")
    assert abs(cpu_acc - gpu_acc) <= 0.001
