"""Photos that show neither a cat nor a dog, available offline: the check set for ``unknown``.

A deployed cat/dog classifier is sent logos, documents, landscapes and
people. This module assembles such images without any download: the sample
photos bundled with scikit-image and scikit-learn (minus the two cat photos),
random crops of them, and synthetic scenes. ``CatDogClassifier(unknown=...)`` always adds it to the
photos of neither its presence model is fitted on: the everyday objects that no folder of animals
shows. It is a smoke test, never a headline number (README's figures come from real photos).
"""

import numpy as np

__all__ = ["non_animal_images", "SKIMAGE_PHOTOS"]

#: scikit-image sample images that ship with the wheel (no pooch download) and show no cat or dog.
SKIMAGE_PHOTOS = ("astronaut", "binary_blobs", "brick", "camera", "cell", "checkerboard", "clock", "coffee",
                  "coins", "colorwheel", "grass", "gravel", "horse", "hubble_deep_field",
                  "immunohistochemistry", "logo", "microaneurysms", "moon", "page", "retina", "rocket",
                  "shepp_logan_phantom", "text")


def _as_rgb_uint8(image):
    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    elif image.dtype != np.uint8:
        image = np.asarray(255 * (image - image.min()) / max(float(np.ptp(image)), 1e-12), dtype=np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3])


def _bundled_photos():
    import warnings

    import skimage.data
    from sklearn.datasets import load_sample_images

    out = []
    for name in SKIMAGE_PHOTOS:
        # binary_blobs draws new blobs on every call unless seeded: the check set, hence every presence
        # model fitted on it, would differ from one process to the next
        kwargs = {"rng": 0} if name == "binary_blobs" else {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out.append((f"skimage:{name}", _as_rgb_uint8(getattr(skimage.data, name)(**kwargs))))
    sample = load_sample_images()
    for filename, image in zip(sample.filenames, sample.images):
        out.append((f"sklearn:{filename.rsplit('/', 1)[-1]}", _as_rgb_uint8(image)))
    return out


def _synthetic(rng, size=256):
    """Scenes of flat colour, gradients, noise and geometric shapes."""
    import cv2

    yy, xx = np.mgrid[0:size, 0:size] / size
    scenes = []
    for k in range(12):
        kind = k % 4
        if kind == 0:  # two-colour gradient
            a, b = rng.randint(0, 256, 3), rng.randint(0, 256, 3)
            t = (xx * np.cos(k) + yy * np.sin(k))[..., None]
            img = a + (b - a) * (t - t.min()) / np.ptp(t)
        elif kind == 1:  # smoothed coloured noise
            img = cv2.GaussianBlur(rng.randint(0, 256, (size, size, 3)).astype(np.float32), (0, 0), 1 + 2 * k)
            img = 255 * (img - img.min()) / max(np.ptp(img), 1)
        elif kind == 2:  # random rectangles and circles on a flat background
            img = np.full((size, size, 3), rng.randint(0, 256, 3), np.uint8)
            for _ in range(8):
                colour = tuple(int(c) for c in rng.randint(0, 256, 3))
                x, y = (int(v) for v in rng.randint(0, size, 2))
                if rng.rand() < 0.5:
                    cv2.rectangle(img, (x, y), (x + int(rng.randint(10, 90)), y + int(rng.randint(10, 90))), colour, -1)
                else:
                    cv2.circle(img, (x, y), int(rng.randint(5, 50)), colour, -1)
        else:  # stripes
            img = 127.5 + 127.5 * np.sin(2 * np.pi * (3 + k) * (xx + 0.3 * yy))[..., None] * rng.rand(3)
        scenes.append((f"synthetic:{['gradient', 'noise', 'shapes', 'stripes'][kind]}-{k}",
                       np.clip(img, 0, 255).astype(np.uint8)))
    return scenes


def non_animal_images(*, n_crops=2, random_state=0):
    """Images that show no cat or dog, built offline.

    Parameters
    ----------
    n_crops : int, default=2
        Random crops (half to nine tenths of each side) added per bundled photo.
    random_state : int, default=0

    Returns
    -------
    names : list of str
        Where each image comes from, e.g. ``'skimage:coffee'``, ``'skimage:coffee#crop1'``.
    images : list of ndarray of shape (H, W, 3), dtype uint8

    Examples
    --------
    >>> from catdog_sk.checkset import non_animal_images
    >>> names, images = non_animal_images(n_crops=0)
    >>> len(names) == len(images) > 30
    True
    """
    rng = np.random.RandomState(random_state)
    pairs = []
    for name, image in _bundled_photos():
        pairs.append((name, image))
        h, w = image.shape[:2]
        for c in range(n_crops):
            ch, cw = int(h * rng.uniform(0.5, 0.9)), int(w * rng.uniform(0.5, 0.9))
            y, x = rng.randint(0, h - ch + 1), rng.randint(0, w - cw + 1)
            pairs.append((f"{name}#crop{c + 1}", np.ascontiguousarray(image[y:y + ch, x:x + cw])))
    pairs += _synthetic(rng)
    return [n for n, _ in pairs], [im for _, im in pairs]


def negative_images(negatives=(), *, random_state=0):
    """What a presence model is fitted on as "neither": :func:`non_animal_images` plus ``negatives``.

    The one list both :meth:`catdog_sk.CatDogClassifier.negative_features` and the training
    workflow (:func:`catdog_sk.training.extract_features_for_run`) featurize.

    Parameters
    ----------
    negatives : sequence of str, os.PathLike or ndarray, default=()
        The user's photos of neither (for example the fitting part of ``--negatives``).
    random_state : int, default=0
        Seeds the crops of the check set.

    Returns
    -------
    images : list
        The check set's arrays, then ``negatives`` in order.
    """
    return non_animal_images(random_state=random_state)[1] + list(negatives)

