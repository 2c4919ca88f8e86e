"""JPEG decoding for the CNN on the GPU (nvjpeg), checked here by running the same torch pipeline on the CPU.

``decoder='torch-cpu'`` is the GPU pipeline (bytes to the batch stage, batched
``decode_jpeg``, EXIF orientation, torch's bicubic resize and centre crop) with
torchvision's CPU decoder: what these tests check runs everywhere; the nvjpeg
run itself is marked ``gpu``.
"""

import io
import os

import numpy as np
import pytest
from PIL import Image

from catdog_sk.exceptions import BackboneUnavailableError, ImageDecodeError, InvalidParameterError
from catdog_sk.features import extract_features
from catdog_sk.features._embed import EmbeddingExtractor, cuda_available
from catdog_sk.preprocess import decode_image, jpeg_orientation, resize_shorter_center_crop

from conftest import textured_image
from test_device import needs_gpu
from test_hostile import make_hostile_corpus


def _cosine(a, b):
    return np.sum(a * b, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def _tagged_jpeg(orientation, rgb):
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=95, exif=exif.tobytes())
    return buf.getvalue()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_torch_decode_and_orientation_give_pillows_pixels(orientation):
    from catdog_sk.features._device_decode import decode_jpegs, orient

    data = _tagged_jpeg(orientation, textured_image(48, 80, seed=orientation))  # not square: rotations show
    assert jpeg_orientation(data) == orientation
    reference = decode_image(data)  # Pillow, upright
    tensor = orient(decode_jpegs([data], device="cpu")[0], jpeg_orientation(data))
    ours = tensor.permute(1, 2, 0).numpy()
    assert ours.shape == reference.shape
    assert np.abs(ours.astype(int) - reference).mean() < 0.5  # the same decoder: identical or within one level


def test_torch_resize_and_crop_follow_the_pillow_transform():
    import torch

    from catdog_sk.features._device_decode import resize_shorter_center_crop_torch

    for h, w in [(300, 200), (200, 300), (256, 256), (40, 1000), (1000, 40), (10, 12)]:
        rgb = textured_image(h, w, seed=h + w)
        reference = resize_shorter_center_crop(rgb, 224, crop_pct=0.875)
        ours = resize_shorter_center_crop_torch(torch.from_numpy(rgb).permute(2, 0, 1), 224, crop_pct=0.875)
        ours = ours.permute(1, 2, 0).numpy()
        assert ours.shape == reference.shape == (224, 224, 3)
        assert np.abs(ours.astype(int) - reference).mean() < 2.0, (h, w)


def test_jpeg_orientation_sends_everything_else_to_pillow():
    rgb = textured_image(32, 32)
    for im, fmt in [(Image.fromarray(rgb), "PNG"), (Image.fromarray(rgb).convert("CMYK"), "JPEG")]:
        buf = io.BytesIO()
        im.save(buf, fmt)
        assert jpeg_orientation(buf.getvalue()) is None
    with pytest.raises(ImageDecodeError) as exc:
        jpeg_orientation(b"not an image at all")
    assert exc.value.reason == "not_an_image"


@pytest.mark.cnn
def test_torch_pipeline_embeddings_match_pillows_on_shared_photos(shared_data):
    from catdog_sk.data import load_dataset

    paths = load_dataset(shared_data)["test"].paths[::50]  # 40 photos, both classes
    pillow = EmbeddingExtractor(head=True)
    torch_cpu = EmbeddingExtractor(head=True, decoder="torch-cpu")
    a = extract_features(paths, [pillow]).features[0]
    b = extract_features(paths, [torch_cpu]).features[0]
    cosine = _cosine(a[:, :1280], b[:, :1280])
    print(f"torch decode + resize vs Pillow on {len(paths)} test photos: min cosine {cosine.min():.5f}, "
          f"mean {cosine.mean():.5f}")
    assert cosine.min() >= 0.999
    p_a, p_b = np.exp(a[:, 1280:]), np.exp(b[:, 1280:])  # the ImageNet head's dog / cat / other probabilities
    print(f"largest difference of a group probability: {np.abs(p_a - p_b).max():.4f}")
    assert np.abs(p_a - p_b).max() < 0.05  # measured 0.024 on these 40 (the resize differs by ~0.2 levels)
    assert "decoder" not in pillow.config() and torch_cpu.config()["decoder"] == "torch-cpu"  # separate cache keys


@pytest.mark.cnn
def test_hostile_files_get_the_same_outcome_through_the_torch_decoder(tmp_path, few_photos):
    expected = make_hostile_corpus(tmp_path / "hostile", few_photos[0])
    paths = sorted(str(tmp_path / "hostile" / name) for name in expected) + [str(p) for p in few_photos]
    results = {decoder: extract_features(paths, [EmbeddingExtractor(decoder=decoder)], on_error="skip", n_jobs=2)
               for decoder in ("pillow", "torch-cpu")}
    pillow, ours = results["pillow"], results["torch-cpu"]
    assert ours.ok.tolist() == pillow.ok.tolist()
    assert sorted((e.path, e.reason) for e in ours.errors) == sorted((e.path, e.reason) for e in pillow.errors)
    for name, reason in expected.items():
        assert ours.ok[paths.index(str(tmp_path / "hostile" / name))] == (reason is None), name
    assert np.isnan(ours.features[0][~ours.ok]).all()
    # Synthetic textures, not photos (the 0.999 target is checked on real photos above): a pixel-level
    # difference of ~0.2 levels moves them more; measured min 0.995 (the greyscale one).
    assert _cosine(pillow.features[0][ours.ok], ours.features[0][ours.ok]).min() >= 0.99


@pytest.mark.cnn
def test_torch_decoded_embeddings_are_cached_under_their_own_key(tmp_path, few_photos):
    paths = [str(p) for p in few_photos]
    ex = EmbeddingExtractor(decoder="torch-cpu")
    first = extract_features(paths[:4], [ex], cache=tmp_path / "cache")
    again = extract_features(paths, [ex], cache=tmp_path / "cache")  # 4 hits, 2 decoded by torch
    assert (first.misses, again.hits, again.misses) == (4, 4, 2)
    np.testing.assert_array_equal(again.features[0][:4], first.features[0])
    fresh = extract_features(paths, [EmbeddingExtractor(decoder="torch-cpu")]).features[0]
    np.testing.assert_allclose(again.features[0], fresh, atol=1e-6)
    pillow = extract_features(paths, [EmbeddingExtractor()], cache=tmp_path / "cache")
    assert pillow.hits == 0  # Pillow-path embeddings never come from the torch decoder's entries


@pytest.mark.cnn
def test_a_jpeg_the_torch_decoder_refuses_is_decoded_by_pillow(monkeypatch, few_photos):
    from catdog_sk.features import _device_decode

    real = _device_decode.decode_jpegs
    refused = []

    def refuse_the_second(datas, device):  # stands in for nvjpeg refusing one file of the batch
        out = real(datas, device=device)
        refused.append(len(out))
        return [None if i == 1 else image for i, image in enumerate(out)]

    monkeypatch.setattr(_device_decode, "decode_jpegs", refuse_the_second)
    paths = [str(p) for p in few_photos]
    ours = extract_features(paths, [EmbeddingExtractor(decoder="torch-cpu")]).features[0]
    pillow = extract_features(paths, [EmbeddingExtractor()]).features[0]
    assert refused == [len(paths)]  # one batch
    cosine = _cosine(pillow, ours)
    assert cosine[1] > 0.99999  # Pillow's own pixels and crop: the CPU path's embedding
    assert cosine.min() >= 0.999


@pytest.mark.cnn
def test_a_truncated_jpeg_is_reported_not_padded(tmp_path, few_photos):
    data = few_photos[0].read_bytes()
    broken = tmp_path / "truncated.jpg"
    broken.write_bytes(data[: len(data) // 2])
    paths = [str(few_photos[1]), str(broken), str(few_photos[2])]
    with pytest.raises(ImageDecodeError) as exc:
        extract_features(paths, [EmbeddingExtractor(decoder="torch-cpu")])
    assert exc.value.reason == "truncated" and exc.value.path == str(broken)


@pytest.mark.cnn
def test_the_gpu_code_path_runs_on_the_cpu_and_matches_the_reference(few_photos):
    """`_run_cuda` (batching, normalisation, autocast) run on the CPU, fed as `decode_prepared` feeds it."""
    import torch

    from catdog_sk.features._embed import _cuda_batch
    from catdog_sk.preprocess import read_image

    ex = EmbeddingExtractor(device="cpu")
    crops = [ex.prepare(read_image(p))[0] for p in few_photos]
    mixed = [c if i % 2 else torch.from_numpy(c).permute(2, 0, 1) for i, c in enumerate(crops)]  # HWC and CHW
    assert torch.equal(_cuda_batch(crops, "cpu"), _cuda_batch(mixed, "cpu"))
    reference = ex._run_torch("efficientnet_lite0", crops)  # eager float32
    ours = ex._run_cuda("efficientnet_lite0", mixed, device="cpu")  # bfloat16 autocast
    cosine = _cosine(reference, ours)
    print(f"GPU code path on the CPU (bf16) vs float32: min cosine {cosine.min():.5f}")
    assert cosine.min() >= 0.99  # bfloat16 throughout; the GPU's own check (>= 0.999) is marked gpu


def test_decoder_errors_are_one_line_before_any_image():
    with pytest.raises(InvalidParameterError, match=r"The 'decoder' parameter of EmbeddingTransformer must be "
                                                    r"one of .*Got 'gpu' instead"):
        EmbeddingExtractor(decoder="gpu")
    if not cuda_available():
        with pytest.raises(BackboneUnavailableError, match="'nvjpeg' only when the network runs on a CUDA GPU") as e:
            EmbeddingExtractor(decoder="nvjpeg")
        assert len(str(e.value).splitlines()) == 1


def test_the_engine_gathers_gpu_sized_chunks_only_for_a_gpu():
    assert EmbeddingExtractor(device="cpu").preferred_chunk_size is None
    if cuda_available():
        assert EmbeddingExtractor(device="cuda").preferred_chunk_size >= 256


@pytest.mark.gpu
@needs_gpu
@pytest.mark.cnn
def test_nvjpeg_embeddings_match_the_cpu_reference(shared_data, tmp_path):
    from catdog_sk.data import load_dataset

    paths = load_dataset(shared_data)["test"].paths[::40]
    cpu = extract_features(paths, [EmbeddingExtractor(device="cpu", head=True)]).features[0]
    auto = EmbeddingExtractor(device="cuda", head=True)
    assert auto.config()["decoder"] == "nvjpeg"  # the default on a GPU, and the cache key says so
    gpu = extract_features(paths, [auto]).features[0]
    cosine = _cosine(cpu[:, :1280], gpu[:, :1280])
    print(f"nvjpeg + CUDA vs CPU on {len(paths)} test photos: min cosine {cosine.min():.5f}, mean {cosine.mean():.5f}")
    assert cosine.min() >= 0.999
    os.makedirs(tmp_path / "h")
    expected = make_hostile_corpus(tmp_path / "h", paths[0])
    hostile = sorted(str(tmp_path / "h" / n) for n in expected)
    res = extract_features(hostile, [auto], on_error="skip")
    assert {os.path.basename(e.path): e.reason for e in res.errors} == {n: r for n, r in expected.items() if r}
