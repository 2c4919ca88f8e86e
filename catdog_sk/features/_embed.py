"""The frozen-CNN extractor plan: crops in worker threads, batched forward passes, optional ImageNet head."""

import os

import numpy as np

from ..exceptions import BackboneUnavailableError
from ._backbones import bundled_weights_path, get_backbone, tuned_weights, weights_sha256
from ._loading import HEAD_COLUMNS, imagenet_groups, imagenet_head, load_backbone
from ._runtimes import (CUDA_BATCH_SIZE, DECODERS, DEFAULT_BATCH_SIZE, DEVICES, INT8_CALIBRATION_SIZE, RUNTIMES,
                        _cuda_batch, int8_calibration, quantize_openvino_int8,
                        _to_tensor_batch, cuda_available, cuda_precision, load_cuda, load_openvino, resolve_device)

__all__ = ["embed", "split_backbones", "calibrate_int8", "EmbeddingExtractor", "load_backbone", "imagenet_head", "imagenet_groups",
           "HEAD_COLUMNS", "RUNTIMES", "DEVICES", "DECODERS", "CUDA_BATCH_SIZE", "DEFAULT_BATCH_SIZE",
           "cuda_available", "resolve_device"]

def embed(images, *, backbone="efficientnet_lite0", batch_size=DEFAULT_BATCH_SIZE, runtime="openvino",
          device="auto"):
    """Pooled embeddings of RGB images from a frozen, pretrained backbone.

    Parameters
    ----------
    images : sequence of ndarray of shape (height, width, 3), dtype uint8
    backbone : str, default='efficientnet_lite0'
    batch_size : int, default=4
        Images per forward pass (see ``DEFAULT_BATCH_SIZE``).
    runtime : {'openvino', 'openvino-bf16', 'openvino-int8', 'torch'}, default='openvino'
        ``'torch'`` is eager PyTorch, the reference. ``'openvino'`` runs the
        same network compiled by OpenVINO in float32 (cosine to the reference
        > 0.99999, several times faster on CPU). ``'openvino-bf16'`` computes
        in bfloat16 where the CPU supports it: faster again; on the shared
        photos mean cosine 0.9993 (min 0.996) to the reference, same test
        accuracy (benchmarks/bench_cnn.py --accuracy). ``'openvino-int8'`` runs
        the network NNCF quantised to int8, calibrated once on training photos
        (:func:`calibrate_int8`); about twice fp32's speed, mean cosine 0.992.
    device : {'auto', 'cpu', 'cuda'}, default='auto'
        ``'cuda'`` runs eager PyTorch on the GPU with bfloat16 (or float16)
        autocast in batches of at least 256, whatever ``runtime`` says;
        ``'auto'`` does so when PyTorch sees a GPU and otherwise uses
        ``runtime`` on the CPU; ``'cuda'`` without a GPU raises at once.

    Returns
    -------
    embeddings : ndarray of shape (n_images, embed_dim), dtype float32
        Unit L2 norm per backbone; several backbones (``'a+b'``) are concatenated.
    """
    extractor = EmbeddingExtractor(backbone=backbone, batch_size=batch_size, runtime=runtime, device=device)
    crops = [extractor.prepare(im) for im in images]
    return extractor.finalize(crops)


_NOT_CALIBRATED = ("runtime='openvino-int8' needs {name}'s int8 network, calibrated on your training photos, and "
                   "this machine has none: run catdog_sk.features.calibrate_int8(train_paths, backbone=...) or "
                   "`python -m catdog_sk.extract --runtime openvino-int8 --calibrate TRAIN_DIR` once.")


def calibrate_int8(paths, *, backbone="efficientnet_lite0", n=INT8_CALIBRATION_SIZE):
    """Quantise each backbone to int8 with NNCF, calibrated on training photos; then ``runtime='openvino-int8'``.

    Post-training quantisation (NNCF, the OpenVINO project's tool, preset MIXED) of the network's OpenVINO
    model, calibrated on the centre crops of ``n`` of ``paths`` (chosen by content hash, so the same photos
    give the same network whatever their order). The int8 network is stored beside the fp32 one, keyed by
    the weights' checksum, with a checksum of the calibration photos that also enters the feature-cache key.
    Calibrate on training photos only: the test photos must stay unseen. A backbone already calibrated
    here on the same photos is kept as it is (quantising takes about half a minute per network).

    Parameters
    ----------
    paths : sequence of str or os.PathLike
        Training photos.
    backbone : str, default='efficientnet_lite0'
        One backbone or several joined by '+'.
    n : int, default=INT8_CALIBRATION_SIZE
        Calibration photos (all of ``paths`` when there are fewer).

    Returns
    -------
    calibration : dict
        ``{backbone name: {"photos_sha256", "n", "nncf"}}``.
    """
    import hashlib

    from ..data import content_hashes
    from ..preprocess import read_image

    hashes = content_hashes(paths)
    chosen = sorted(range(len(paths)), key=lambda i: hashes[i])[:n]
    photos_sha256 = hashlib.sha256("".join(sorted(hashes[i] for i in chosen)).encode()).hexdigest()
    names = split_backbones(backbone)
    todo = [k for k, name in enumerate(names) if (int8_calibration(name) or {}).get("photos_sha256") != photos_sha256]
    if todo:
        extractor = EmbeddingExtractor(backbone=backbone, runtime="openvino", device="cpu")
        crops = [extractor.prepare(read_image(paths[i])) for i in chosen]
        for k in todo:
            quantize_openvino_int8(names[k], [c[k] for c in crops], photos_sha256)
    return {name: int8_calibration(name) for name in names}


def split_backbones(backbone):
    """The backbone names in ``backbone``: one name, or several joined with '+'.

    Several backbones are concatenated, each embedding L2-normalised first
    (see :class:`EmbeddingExtractor`).

    Parameters
    ----------
    backbone : str
        E.g. ``'efficientnet_lite0+efficientnet_lite2'``.

    Returns
    -------
    names : tuple of str
    """
    names = [b.strip() for b in backbone.split("+")] if isinstance(backbone, str) else []
    if not names or not all(names) or len(set(names)) != len(names):
        raise BackboneUnavailableError(
            f"The 'backbone' parameter must be a backbone name such as 'efficientnet_lite0', or several "
            f"distinct names joined with '+' such as 'efficientnet_lite0+efficientnet_lite2'. Got {backbone!r} instead."
        )
    return names


class EmbeddingExtractor:
    """Extraction plan for frozen-CNN embeddings.

    ``prepare`` (resize + center crop, in worker threads) overlaps with
    ``finalize`` (the network, in the calling thread).

    With ``head=True`` each image's vector ends with three more numbers per
    backbone (``HEAD_COLUMNS``): the log-probabilities that the backbone's own
    ImageNet-1k classifier gives to dog breeds, domestic cats and the other
    998 - 123 classes, computed from the same forward pass (the head is one
    matrix product on the pooled feature; OpenVINO's float32 and int8 networks
    compute it as a second output of the same inference call). They say whether a cat or a dog is in
    the photo at all; :class:`catdog_sk.CatDogClassifier` uses them to answer
    ``'unknown'``.

    Each backbone's pooled embedding is scaled to unit L2 norm. With several
    backbones (``'efficientnet_lite0+efficientnet_lite2'``) the unit vectors
    are concatenated, so every backbone weighs the same whatever its scale;
    on the shared split this lifts LogisticRegression from 99.4% to 99.5%.
    """

    name = "cnn"
    version = 3  # bump whenever the output changes (3: thin strips keep their centre 4:1 before resizing)

    def __init__(self, *, backbone="efficientnet_lite0", batch_size=DEFAULT_BATCH_SIZE, runtime="openvino",
                 head=False, device="auto", decoder="auto", caller="EmbeddingTransformer"):
        from .._validation import check_choice, check_number

        check_number(batch_size, name="batch_size", caller=caller, low=1, high=4096)
        check_choice(runtime, RUNTIMES, name="runtime", caller=caller)
        check_choice(decoder, DECODERS, name="decoder", caller=caller)
        self.backbone = backbone
        self.batch_size = batch_size
        self.runtime = runtime
        self.head = bool(head)
        self.device = device
        self.decoder = decoder
        self._device = resolve_device(device, caller=caller)  # 'cuda' without a GPU fails here, at once
        if decoder == "auto":
            decoder = "nvjpeg" if self._device == "cuda" else "pillow"
        if decoder == "nvjpeg" and self._device != "cuda":
            raise BackboneUnavailableError(
                f"The 'decoder' parameter of {caller} can be 'nvjpeg' only when the network runs on a CUDA "
                f"GPU (device='cuda', or 'auto' on a machine with one). Got device={device!r} on a machine "
                f"where it resolves to 'cpu'."
            )
        self._decoder = decoder
        self._names = split_backbones(backbone)
        self._specs = [get_backbone(n) for n in self._names]  # raises at once for unknown names
        self._shas = [None] * len(self._names)

    def _resolved(self):
        """[(spec, weights sha256)] per backbone, building non-bundled models to learn them."""
        for i, name in enumerate(self._names):
            if self._specs[i].source == "bundled":
                if self._shas[i] is None:
                    self._shas[i] = weights_sha256(bundled_weights_path(self._specs[i]))
            elif self._specs[i].source == "tuned":
                self._shas[i] = tuned_weights(name)[2]
            else:
                _, self._specs[i], self._shas[i] = load_backbone(name)
        return list(zip(self._specs, self._shas))

    @property
    def embedding_dim(self):
        """Length of the concatenated unit embeddings (the first columns of the output)."""
        return sum(spec.embed_dim for spec, _ in self._resolved())

    @property
    def n_head_columns(self):
        """Columns the ImageNet head adds at the end (0 without ``head``)."""
        return len(HEAD_COLUMNS) * len(self._names) if self.head else 0

    @property
    def n_features_out(self):
        return self.embedding_dim + self.n_head_columns

    def config(self):
        """The settings that decide the embeddings, for feature-cache keys and model cards.

        Returns
        -------
        config : dict
            ``name``, ``version``, each backbone's architecture, weights checksum, input size, crop and
            normalisation, the runtime (CUDA precision included), the decoder and the head's columns.
        """
        parts = [{
            "backbone": spec.name, "arch": spec.arch, "weights_sha256": sha, "input_size": spec.input_size,
            "crop_pct": spec.crop_pct, "mean": list(spec.mean), "std": list(spec.std),
        } for spec, sha in self._resolved()]
        config = {"name": self.name, "version": self.version, "backbones": parts, "pooling": "avg",
                  "normalize": "l2 per backbone", "runtime": self.runtime}
        if self._device == "cuda":  # the cache key says what produced the embeddings
            config["runtime"] = f"torch-cuda-{cuda_precision()}"
        if self._decoder != "pillow":
            config["decoder"] = self._decoder  # JPEGs decoded and resized by torch (others: Pillow)
        if self._decoder == "torch-cpu":
            config["resize"] = "uint8"  # the CPU resize runs on uint8, the GPU one on float
        if self.head:
            config["head"] = {"columns": list(HEAD_COLUMNS), "classes": "imagenet-1k", "version": 1}
        if self.runtime == "openvino-int8" and self._device == "cpu":  # features of one calibration only
            config["int8_calibration"] = [(int8_calibration(n) or {}).get("photos_sha256") for n in self._names]
        return config

    @property
    def preferred_chunk_size(self):
        """Images the engine should gather per batch stage: GPU batches are large, CPU ones need not be."""
        return CUDA_BATCH_SIZE if self._device == "cuda" else None

    def _crops(self, image, crop):
        crops = {}  # backbones with the same preprocessing share one crop
        for spec, _ in self._resolved():
            key = (spec.input_size, spec.crop_pct)
            if key not in crops:
                crops[key] = crop(image, spec.input_size, crop_pct=spec.crop_pct)
        return tuple(crops[(spec.input_size, spec.crop_pct)] for spec in self._specs)

    def prepare(self, image):
        """Per-image stage, run in the extraction threads: each backbone's centre crop of one image.

        Parameters
        ----------
        image : ndarray of shape (height, width, 3), dtype uint8
            A decoded RGB image.

        Returns
        -------
        crops : tuple of ndarray of shape (size, size, 3), dtype uint8
            One per backbone (backbones of one input size share a crop).
        """
        from ..preprocess import resize_shorter_center_crop

        return self._crops(image, resize_shorter_center_crop)

    def prepare_encoded(self, data, path, max_pixels):
        """Worker stage for a file's bytes: an :class:`EncodedImage` for the batch decoder, or None.

        None (Pillow decoder, not an RGB/greyscale JPEG, or no end-of-image
        marker) means: decode on the CPU and call :meth:`prepare`. Header faults
        raise ``ImageDecodeError`` here, in the worker, as the CPU decoder would.

        Parameters
        ----------
        data : bytes
            The file's bytes.
        path : str
            Named in errors.
        max_pixels : int or None
            Decompression-bomb cap, checked from the header.

        Returns
        -------
        encoded : EncodedImage or None
        """
        if self._decoder == "pillow":
            return None
        from ..preprocess import jpeg_orientation
        from ._device_decode import EncodedImage

        orientation = jpeg_orientation(data, path=path, max_pixels=max_pixels)
        if orientation is None or not data.rstrip(b"\0\r\n ").endswith(b"\xff\xd9"):
            return None  # no end-of-image marker (truncated?): Pillow decides, as on the CPU path
        return EncodedImage(data, path, orientation, max_pixels)

    def decode_prepared(self, prepared):
        """Batch stage before :meth:`finalize`: decode every :class:`EncodedImage` in ``prepared`` at once.

        JPEGs the torch decoder refuses are decoded by Pillow instead; a file
        Pillow refuses too gives its ``ImageDecodeError`` in its place. Other
        items (crops already made by :meth:`prepare`) pass through.

        Parameters
        ----------
        prepared : list
            A chunk's worker-stage outputs, in order.

        Returns
        -------
        prepared : list
            The same items with every :class:`EncodedImage` replaced by its crops (or its error).
        """
        from ..exceptions import ImageDecodeError
        from ..preprocess import decode_image
        from ._device_decode import (EncodedImage, decode_jpegs, orient,
                                     resize_shorter_center_crop_torch)

        todo = [i for i, p in enumerate(prepared) if isinstance(p, EncodedImage)]
        if not todo:
            return prepared
        device = "cuda" if self._decoder == "nvjpeg" else "cpu"
        out = list(prepared)
        for i, image in zip(todo, decode_jpegs([prepared[i].data for i in todo], device=device)):
            item = prepared[i]
            if image is not None:
                image = orient(image, item.orientation)
                crops = self._crops(image, resize_shorter_center_crop_torch)
                out[i] = crops if device == "cuda" else tuple(c.permute(1, 2, 0).numpy() for c in crops)
                continue
            try:
                out[i] = self.prepare(decode_image(item.data, path=item.path, max_pixels=item.max_pixels))
            except ImageDecodeError as exc:
                out[i] = exc
        return out

    def finalize(self, prepared):
        """Batch stage: the networks on a chunk's crops, each embedding L2-normalised, then the head columns.

        Parameters
        ----------
        prepared : list of tuple of ndarray
            :meth:`prepare`'s crops for a chunk of images, in order.

        Returns
        -------
        features : ndarray of shape (n_images, n_features_out), dtype float32
        """
        blocks, heads = [], []
        for i, name in enumerate(self._names):
            crops = [p[i] for p in prepared]
            groups = None  # the head's columns, when the compiled network computed them too
            if self._device == "cuda":
                raw = self._run_cuda(name, crops)
            elif self.runtime.startswith("openvino"):
                raw, groups = self._run_openvino(name, crops)
            else:
                raw = self._run_torch(name, crops)
            norms = np.linalg.norm(raw, axis=1, keepdims=True)
            blocks.append(raw / np.maximum(norms, 1e-12))
            if self.head:
                heads.append(groups if groups is not None else imagenet_groups(raw, imagenet_head(name)))
        blocks += heads
        return blocks[0] if len(blocks) == 1 else np.hstack(blocks)

    def _run_torch(self, name, crops):
        import torch

        model, spec, _ = load_backbone(name)
        out = np.empty((len(crops), spec.embed_dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(crops), self.batch_size):
                chunk = crops[start:start + self.batch_size]
                out[start:start + len(chunk)] = model(_to_tensor_batch(chunk, spec)).numpy()
        return out

    def _run_cuda(self, name, crops, device="cuda"):
        """The network on the GPU: pinned uint8 crops in, normalised there, bf16 (or fp16) autocast.

        ``device='cpu'`` runs this very code on the CPU under bfloat16 autocast: the tests' check of it.
        """
        import torch

        model, spec = load_cuda(name, device)
        dtype = torch.bfloat16 if device == "cpu" or cuda_precision() == "bf16" else torch.float16
        mean = torch.tensor(spec.mean, device=device).view(1, 3, 1, 1) * 255.0
        std = torch.tensor(spec.std, device=device).view(1, 3, 1, 1) * 255.0
        out = np.empty((len(crops), spec.embed_dim), dtype=np.float32)
        step = max(self.batch_size, CUDA_BATCH_SIZE)
        with torch.inference_mode(), torch.autocast(device, dtype=dtype):
            for start in range(0, len(crops), step):
                x = _cuda_batch(crops[start:start + step], device).float()
                x = ((x - mean) / std).contiguous(memory_format=torch.channels_last)
                out[start:start + len(x)] = model(x).float().cpu().numpy()
        return out

    def _run_openvino(self, name, crops):
        """Pooled features, and the head's columns when the compiled network has them (else None)."""
        precision = {"openvino-bf16": "bf16", "openvino-int8": "int8"}.get(self.runtime, "f32")
        try:
            compiled, spec, in_graph = load_openvino(name, precision, self.head)
        except ImportError:
            raise BackboneUnavailableError(
                f"runtime={self.runtime!r} needs the 'openvino' package: pip install openvino, "
                f"or use runtime='torch'."
            ) from None
        except FileNotFoundError:
            raise BackboneUnavailableError(_NOT_CALIBRATED.format(name=name)) from None
        out = np.empty((len(crops), spec.embed_dim), dtype=np.float32)
        groups = np.empty((len(crops), len(HEAD_COLUMNS)), dtype=np.float32) if in_graph else None
        for start in range(0, len(crops), self.batch_size):
            chunk = crops[start:start + self.batch_size]
            result = compiled(np.stack(chunk))
            out[start:start + len(chunk)] = result[0]
            if in_graph:
                groups[start:start + len(chunk)] = result[1]
        return out, groups
