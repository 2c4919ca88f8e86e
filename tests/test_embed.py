import io

import numpy as np
import pytest
from PIL import Image
from sklearn.linear_model import LogisticRegression

from catdog_sk.features import EmbeddingTransformer, embed
from catdog_sk.preprocess import read_image

pytestmark = pytest.mark.cnn


def test_lite0_embeddings_and_logreg_reach_99_percent(shared_embeddings):
    """The brief's measured baseline is 99.25%; fit on train only, score on test."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X_train, y_train = shared_embeddings["train"]
    X_test, y_test = shared_embeddings["test"]
    assert X_train.shape == (2000, 1280) and X_train.dtype == np.float32
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(X_train, y_train)
    accuracy = clf.score(X_test, y_test)
    print(f"Lite0 + LogisticRegression test accuracy: {accuracy:.4f}")
    assert accuracy >= 0.99


def test_embedding_is_invariant_to_exif_rotation(few_photos):
    """A JPEG tagged Orientation=6 embeds like the physically rotated pixels (cosine >= 0.999)."""
    upright = read_image(few_photos[0])
    stored = np.ascontiguousarray(np.rot90(upright, k=1))  # what a sideways camera stores
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    Image.fromarray(stored).save(buf, format="PNG", exif=exif)
    tagged = read_image_from_bytes(buf.getvalue())
    a, b = embed([upright, tagged])
    assert a @ b / np.linalg.norm(a) / np.linalg.norm(b) >= 0.999


def read_image_from_bytes(data):
    from catdog_sk.preprocess import decode_image

    return decode_image(data)


def test_embedding_transformer_matches_embed_and_caches(few_photos, tmp_path):
    t = EmbeddingTransformer(cache=tmp_path, batch_size=4)
    first = t.fit_transform(few_photos)
    second = t.transform(few_photos)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first, embed([read_image(p) for p in few_photos]), atol=1e-5)
    assert len(list(tmp_path.glob("cnn-*/*/*.npy"))) == len(few_photos)


def test_lite2_uses_its_own_input_size(few_photos):
    from catdog_sk.features import load_backbone

    out = embed([read_image(few_photos[0])], backbone="efficientnet_lite2")
    _, spec, _ = load_backbone("efficientnet_lite2")
    assert out.shape == (1, 1280) and spec.input_size == 260


@pytest.mark.parametrize("runtime, min_cos, mean_cos", [("openvino", 0.9999, 0.99999), ("openvino-bf16", 0.99, 0.999)])
def test_runtimes_match_the_eager_pytorch_reference(few_photos, runtime, min_cos, mean_cos):
    images = [read_image(p) for p in few_photos]
    ref = embed(images, runtime="torch")
    out = embed(images, runtime=runtime)
    cos = (ref * out).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(out, axis=1)
    assert cos.min() >= min_cos and cos.mean() >= mean_cos



@pytest.mark.parametrize("runtime", ["openvino", "torch"])
def test_batch_size_does_not_change_embeddings(few_photos, runtime):
    """batch_size is left out of the cache key, so it must only change speed: 1, 4 (the
    default, with a short last batch for 6 images) and 64 give the same vectors."""
    images = [read_image(p) for p in few_photos]
    by_size = {bs: embed(images, batch_size=bs, runtime=runtime) for bs in (1, 4, 64)}
    np.testing.assert_allclose(by_size[1], by_size[4], atol=1e-5)
    np.testing.assert_allclose(by_size[1], by_size[64], atol=1e-5)

def test_runtime_is_part_of_the_cache_key(few_photos, tmp_path):
    a = EmbeddingTransformer(runtime="torch", cache=tmp_path).fit_transform(few_photos[:2])
    b = EmbeddingTransformer(runtime="openvino", cache=tmp_path).fit_transform(few_photos[:2])
    assert len(list(tmp_path.glob("cnn-*"))) == 2  # two runtimes never share entries
    np.testing.assert_allclose(a, b, atol=1e-3)


def test_preprocessing_matches_torchvision_reference(few_photos):
    """Our resize + crop equals torchvision's Resize(256, BICUBIC) + CenterCrop(224) pixel for pixel."""
    from torchvision import transforms

    from catdog_sk.preprocess import resize_shorter_center_crop

    tf = transforms.Compose([transforms.Resize(256, interpolation=transforms.InterpolationMode.BICUBIC),
                             transforms.CenterCrop(224)])
    for p in few_photos:
        expected = np.asarray(tf(Image.open(p).convert("RGB")))
        np.testing.assert_array_equal(resize_shorter_center_crop(read_image(p), 224, crop_pct=0.875), expected)


def test_imagenet_head_columns_come_from_the_same_forward_pass(few_photos, monkeypatch):
    """head=True appends log P(dog), log P(cat), log P(other) per backbone, from one network run per batch."""
    from catdog_sk.features import extract_features
    from catdog_sk.features._embed import HEAD_COLUMNS, EmbeddingExtractor, imagenet_groups, imagenet_head

    images = [read_image(p) for p in few_photos]
    plain = EmbeddingExtractor(backbone="efficientnet_lite0+efficientnet_lite2")
    headed = EmbeddingExtractor(backbone="efficientnet_lite0+efficientnet_lite2", head=True)
    assert headed.n_features_out == plain.n_features_out + 2 * len(HEAD_COLUMNS) == 2566
    assert headed.config() != plain.config()  # never served from each other's cache entries
    calls = []
    original = EmbeddingExtractor._run_openvino
    monkeypatch.setattr(EmbeddingExtractor, "_run_openvino",
                        lambda self, name, crops: calls.append(name) or original(self, name, crops))
    out = extract_features(images, [headed]).features[0]
    assert calls == ["efficientnet_lite0", "efficientnet_lite2"]  # one pass per backbone, not two
    np.testing.assert_allclose(out[:, :2560], extract_features(images, [plain]).features[0], atol=1e-6)
    groups = out[:, 2560:].reshape(len(images), 2, 3)
    assert np.all(groups <= 0)
    np.testing.assert_allclose(np.logaddexp.reduce(groups, axis=2), 0, atol=1e-4)  # the three groups sum to 1
    # the shared train photos are cats (first three) and dogs: the head agrees on the group
    assert np.all(groups[:3, :, 1] > groups[:3, :, 0]) and np.all(groups[3:, :, 0] > groups[3:, :, 1])
    # the head is the checkpoint's own 1,000-class classifier; a backbone without one gives NaN columns
    weight, bias = imagenet_head("efficientnet_lite0")
    assert weight.shape == (1000, 1280) and bias.shape == (1000,)
    assert np.isnan(imagenet_groups(np.zeros((2, 1280)), None)).all()


def test_openvino_computes_the_head_in_the_network_call(few_photos):
    """f32 and int8 networks carry the head as a second output, equal to the float32 product outside."""
    from catdog_sk.features import load_openvino
    from catdog_sk.features._embed import imagenet_groups, imagenet_head
    from catdog_sk.preprocess import resize_shorter_center_crop

    compiled, spec, in_graph = load_openvino("efficientnet_lite0", "f32", True)
    assert in_graph and len(compiled.outputs) == 2
    crops = np.stack([resize_shorter_center_crop(read_image(p), spec.input_size, crop_pct=spec.crop_pct)
                      for p in few_photos])
    result = compiled(crops)
    np.testing.assert_allclose(result[1], imagenet_groups(result[0], imagenet_head("efficientnet_lite0")),
                               atol=2e-5)
    plain, _, plain_head = load_openvino("efficientnet_lite0", "f32")
    assert not plain_head and len(plain.outputs) == 1
    np.testing.assert_allclose(plain(crops)[0], result[0], atol=1e-5)  # the features are untouched
    # bf16 would compute the head in bfloat16: there it stays outside, in float32
    assert load_openvino("efficientnet_lite0", "bf16", True)[2] is False
