"""Frozen CNN embeddings. The only feature module that imports torch and timm (lazily)."""

import hashlib
import os
import threading
from functools import lru_cache

import numpy as np

from ..exceptions import BackboneUnavailableError
from ._backbones import (IMAGENET_CAT_CLASSES, IMAGENET_DOG_CLASSES, BackboneSpec, bundled_weights_path,
                         get_backbone, tuned_weights, weights_sha256)

__all__ = ["load_backbone", "imagenet_head", "imagenet_groups", "embed", "EmbeddingExtractor", "HEAD_COLUMNS",
           "DEVICES", "cuda_available", "resolve_device"]

_LOAD_LOCK = threading.Lock()
_HEADS = {}  # backbone name -> (weight, bias) of its ImageNet-1k classifier, or None

#: What the ImageNet-1k head adds per backbone (``head=True``): log-probabilities of the three groups.
HEAD_COLUMNS = ("log_p_dog", "log_p_cat", "log_p_other")


def _offline_message(spec, exc):
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if len(reason) > 160:
        reason = reason[:157] + "..."
    return (
        f"Backbone {spec.name!r} needs pretrained weights that are not in the local cache and "
        f"could not be downloaded ({type(exc).__name__}: {reason}). Connect to the internet once "
        f"to fill the cache, or use a bundled backbone that works offline: "
        f"{', '.join(repr(n) for n in ('efficientnet_lite0', 'efficientnet_lite2'))}."
    )


def _state_dict_sha256(model):
    h = hashlib.sha256()
    for key, tensor in model.state_dict().items():
        h.update(key.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _build_bundled(spec):
    import timm
    import torch

    path = bundled_weights_path(spec)
    source = torch.load(path, map_location="cpu", weights_only=True)
    model = timm.create_model(spec.arch, pretrained=False)
    target = model.state_dict()
    if len(source) != len(target):
        raise BackboneUnavailableError(
            f"Backbone {spec.name!r}: {path} has {len(source)} tensors, "
            f"{spec.arch} expects {len(target)}; the weights package does not match."
        )
    mapped = {}
    for (src_key, tensor), (dst_key, expected) in zip(source.items(), target.items()):
        if tuple(tensor.shape) != tuple(expected.shape):
            raise BackboneUnavailableError(
                f"Backbone {spec.name!r}: tensor {src_key} {tuple(tensor.shape)} does not fit "
                f"{dst_key} {tuple(expected.shape)}."
            )
        mapped[dst_key] = tensor
    model.load_state_dict(mapped, strict=True)
    head = _linear_head(model.get_classifier())
    model.reset_classifier(0)  # keep global average pooling; the head is applied to the pooled feature
    return model, spec, weights_sha256(path), head


def _build_tuned(spec):
    """A bundled architecture with fine-tuned weights; the ImageNet head stays the pretrained one."""
    import torch

    base, state, sha = tuned_weights(spec.name)
    model, _, _, head = _build_bundled(get_backbone(base))
    model.load_state_dict({k: torch.tensor(v) for k, v in state.items()}, strict=True)
    return model, spec, sha, head


def _linear_head(module):
    """(weight, bias) as float32 arrays when ``module`` is an ImageNet-1k linear classifier, else None.

    A ``Sequential`` of dropout layers ending in the linear layer (torchvision's
    EfficientNets, MobileNets) counts too; anything else (no 1,000-class head,
    a head with its own normalisation) gives None.
    """
    import torch

    if isinstance(module, torch.nn.Sequential):
        layers = list(module)
        if not layers or not all(isinstance(m, torch.nn.Dropout) for m in layers[:-1]):
            return None
        module = layers[-1]
    if not isinstance(module, torch.nn.Linear) or module.out_features != 1000:
        return None
    bias = module.bias if module.bias is not None else torch.zeros(1000)
    return (module.weight.detach().cpu().float().numpy().copy(), bias.detach().cpu().float().numpy().copy())


def _reachable(url, timeout=3.0):
    """Whether a TCP connection to the URL's host opens within ``timeout`` seconds."""
    import socket
    from urllib.parse import urlparse

    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def _build_timm(spec):
    import huggingface_hub.constants as hub
    import timm

    # The Hub client retries an unreachable host with back-off for about a
    # minute. Probe once; when offline, ask it for the local cache only, so a
    # cached model still loads and a missing one fails at once.
    offline = hub.HF_HUB_OFFLINE or not _reachable(hub.ENDPOINT)
    saved = hub.HF_HUB_OFFLINE
    hub.HF_HUB_OFFLINE = offline
    try:
        model = timm.create_model(spec.arch, pretrained=True)
    except Exception as exc:  # network, hub or cache failures all mean "unavailable"
        raise BackboneUnavailableError(_offline_message(spec, exc)) from None
    finally:
        hub.HF_HUB_OFFLINE = saved
    head = _linear_head(model.get_classifier()) if hasattr(model, "get_classifier") else None
    model.reset_classifier(0)
    cfg = model.pretrained_cfg
    spec = BackboneSpec(
        name=spec.name, source="timm", arch=spec.arch, input_size=int(cfg["input_size"][-1]),
        crop_pct=float(cfg.get("crop_pct", 0.875)), mean=tuple(cfg["mean"]), std=tuple(cfg["std"]),
        embed_dim=int(model.num_features),
    )
    return model, spec, _state_dict_sha256(model), head


def _build_torchvision(spec):
    import torch
    import torchvision

    try:
        weights = torchvision.models.get_model_weights(spec.arch).DEFAULT
        model = torchvision.models.get_model(spec.arch, weights=weights)
    except Exception as exc:
        raise BackboneUnavailableError(_offline_message(spec, exc)) from None
    transform = weights.transforms()
    head = None
    for attr in ("fc", "classifier", "heads", "head"):
        if hasattr(model, attr):
            head = _linear_head(getattr(model, attr))
            setattr(model, attr, torch.nn.Identity())
            break
    with torch.inference_mode():
        dim = int(model.eval()(torch.zeros(1, 3, 224, 224)).shape[1])
    crop = int(transform.crop_size[0])
    spec = BackboneSpec(
        name=spec.name, source="torchvision", arch=spec.arch, input_size=crop,
        crop_pct=crop / float(transform.resize_size[0]), mean=tuple(transform.mean),
        std=tuple(transform.std), embed_dim=dim,
    )
    return model, spec, _state_dict_sha256(model), head


@lru_cache(maxsize=4)
def _load(name):
    spec = get_backbone(name)
    builder = {"bundled": _build_bundled, "timm": _build_timm, "torchvision": _build_torchvision,
               "tuned": _build_tuned}
    model, spec, sha, head = builder[spec.source](spec)
    _HEADS[name] = head
    import torch

    model = model.eval().to(memory_format=torch.channels_last)
    for p in model.parameters():
        p.requires_grad_(False)
    return model, spec, sha


def load_backbone(name):
    """Build a frozen backbone once per process.

    Parameters
    ----------
    name : str
        A bundled name (:func:`list_backbones`), a timm model name, or
        ``'torchvision/<arch>'``.

    Returns
    -------
    model : torch.nn.Module
        In eval mode, ``channels_last``, returning pooled embeddings.
    spec : BackboneSpec
        With the preprocessing of the weights filled in.
    weights_sha256 : str

    Raises
    ------
    BackboneUnavailableError
        Unknown name, or weights that are neither bundled nor downloadable now.
    """
    with _LOAD_LOCK:
        return _load(name)


def imagenet_head(name):
    """The backbone's ImageNet-1k classifier as ``(weight, bias)`` arrays, or None when it has none.

    ``weight`` has shape (1000, embed_dim); ``pooled @ weight.T + bias`` are the
    logits the pretrained network would give. Bundled backbones always have one.
    """
    load_backbone(name)
    return _HEADS.get(name)


def imagenet_groups(pooled, head):
    """Log-probabilities that ImageNet-1k's head puts on dog breeds, domestic cats and everything else.

    Parameters
    ----------
    pooled : ndarray of shape (n_images, embed_dim)
        Pooled features before any normalisation (what the head was trained on).
    head : (weight, bias) or None
        From :func:`imagenet_head`; None gives NaN columns.

    Returns
    -------
    groups : ndarray of shape (n_images, 3), dtype float32
        ``log P(dog)``, ``log P(cat)``, ``log P(other)`` under the softmax over
        the 1,000 classes (see ``IMAGENET_DOG_CLASSES``/``IMAGENET_CAT_CLASSES``).
    """
    if head is None:
        return np.full((len(pooled), len(HEAD_COLUMNS)), np.nan, dtype=np.float32)
    weight, bias = head
    logits = np.asarray(pooled, dtype=np.float32) @ weight.T + bias  # (n, 1000), one small matrix product
    probs = np.exp(logits - logits.max(axis=1, keepdims=True), dtype=np.float64)
    dog, cat = IMAGENET_DOG_CLASSES, IMAGENET_CAT_CLASSES  # contiguous ranges, dogs before cats
    mass = np.stack([probs[:, dog.start:dog.stop].sum(axis=1), probs[:, cat.start:cat.stop].sum(axis=1),
                     probs[:, :dog.start].sum(axis=1) + probs[:, dog.stop:cat.start].sum(axis=1)
                     + probs[:, cat.stop:].sum(axis=1)], axis=1)  # each group summed directly: no cancellation
    with np.errstate(divide="ignore"):
        return np.log(np.maximum(mass / probs.sum(axis=1)[:, None], 1e-300)).astype(np.float32)


RUNTIMES = ("openvino", "openvino-bf16", "torch")

#: Where the CNN runs: 'auto' is a CUDA GPU when PyTorch sees one, else the CPU runtime.
DEVICES = ("auto", "cpu", "cuda")

#: Images per forward pass on a GPU (large batches keep it busy; the CPU default stays small).
CUDA_BATCH_SIZE = 256

#: Who decodes JPEG files for the CNN. 'auto': nvjpeg on the GPU when the network runs there, else Pillow.
#: 'torch-cpu' is the GPU pipeline run on the CPU (torchvision's decoder, torch's resize): the tests' check.
DECODERS = ("auto", "pillow", "torch-cpu", "nvjpeg")


def cuda_available():
    """Whether PyTorch sees a CUDA GPU. Without NVIDIA device files, answered without importing torch."""
    import sys

    if "torch" not in sys.modules and not any(os.path.exists(p) for p in ("/dev/nvidiactl", "/dev/nvidia0",
                                                                          "/proc/driver/nvidia/version")):
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def resolve_device(device, *, caller="EmbeddingTransformer"):
    """'cpu' or 'cuda' for a ``device`` parameter; 'cuda' without a GPU fails at once, in one line."""
    from .._validation import check_choice

    check_choice(device, DEVICES, name="device", caller=caller)
    if device == "cpu":
        return "cpu"
    available = cuda_available()
    if device == "cuda" and not available:
        raise BackboneUnavailableError(
            f"{caller}: device='cuda' was asked for, but PyTorch sees no CUDA GPU on this machine "
            f"(torch.cuda.is_available() is False); use device='auto' (the GPU when there is one, else the "
            f"CPU) or device='cpu'."
        )
    return "cuda" if available else "cpu"

#: Images per forward pass. Small batches are faster on CPU: one image's activations stay in
#: the core's cache between layers. Measured on the 2-core x86_64 machine, Lite0 end to end
#: (decode included), batch 4 vs 64: OpenVINO fp32 287 vs 263 img/s, bf16 456 vs 403, eager
#: PyTorch 154 vs 51 (benchmarks/bench_cnn.py --batch-sizes 4,64).
DEFAULT_BATCH_SIZE = 4


def _openvino_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "catdog_sk", "openvino")


def _convert_openvino(model, spec):
    """PyTorch -> OpenVINO, with the weights' normalisation folded into the graph.

    The converted model takes ``uint8`` NHWC crops straight from the decoder;
    OpenVINO does the float conversion, mean and scale in one fused pass.
    """
    import openvino as ov
    import torch

    import warnings

    with warnings.catch_warnings():  # the converter traces with torch.jit, which warns about its own deprecation
        warnings.simplefilter("ignore", FutureWarning)
        converted = ov.convert_model(model, example_input=torch.zeros(1, 3, spec.input_size, spec.input_size))
    ppp = ov.preprocess.PrePostProcessor(converted)
    ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC"))
    ppp.input().model().set_layout(ov.Layout("NCHW"))
    ppp.input().preprocess().convert_element_type(ov.Type.f32) \
        .mean([255.0 * m for m in spec.mean]).scale([255.0 * s for s in spec.std])
    return ppp.build()


@lru_cache(maxsize=8)
def _load_openvino(name, precision):
    """Compile the backbone with OpenVINO; the converted model is stored once per weights checksum."""
    import openvino as ov

    model, spec, sha = load_backbone(name)
    version = ov.__version__.split("-")[0]
    folder = os.path.join(_openvino_dir(), f"{spec.name.replace('/', '_')}-{sha[:16]}-ov{version}-u8nhwc")
    xml = os.path.join(folder, "model.xml")
    core = ov.Core()
    if not os.path.exists(xml):
        import shutil
        import tempfile

        converted = _convert_openvino(model, spec)
        os.makedirs(os.path.dirname(folder), exist_ok=True)
        tmp = tempfile.mkdtemp(dir=os.path.dirname(folder), prefix=".tmp-")
        try:
            ov.save_model(converted, os.path.join(tmp, "model.xml"), compress_to_fp16=False)
            try:
                os.replace(tmp, folder)
            except OSError:  # another process finished first: use theirs
                pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    ir = core.read_model(xml)
    # The crop size is fixed, so fix height and width (the batch stays free): OpenVINO then picks
    # kernels for the real shapes. Measured 13% (fp32) to 19% (bf16) faster than all-dynamic shapes.
    ir.reshape([-1, spec.input_size, spec.input_size, 3])
    compiled = core.compile_model(ir, "CPU", {
        "INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"})
    return compiled, spec, sha


def _cuda_precision():
    import torch

    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


@lru_cache(maxsize=4)
def _load_cuda(name, device="cuda"):
    """The frozen backbone copied onto the GPU once per process (``device='cpu'``: a copy, for the tests)."""
    import copy

    import torch

    model, spec, _ = load_backbone(name)
    return copy.deepcopy(model).to(device, memory_format=torch.channels_last).eval(), spec


def _cuda_batch(crops, device="cuda"):
    """(n, 3, H, W) uint8 on the GPU from HWC numpy crops (pinned, one copy) and/or CHW GPU tensors."""
    import torch

    if all(isinstance(c, np.ndarray) for c in crops):
        batch = torch.from_numpy(np.stack(crops))
        if device == "cuda":
            batch = batch.pin_memory().to(device, non_blocking=True)
        return batch.permute(0, 3, 1, 2)
    return torch.stack([c.to(device) if isinstance(c, torch.Tensor) else
                        torch.from_numpy(c).permute(2, 0, 1).to(device) for c in crops])


def _to_tensor_batch(crops, spec):
    import torch

    batch = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float()
    batch = batch.div_(255.0)
    mean = torch.tensor(spec.mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, dtype=torch.float32).view(1, 3, 1, 1)
    return batch.sub_(mean).div_(std).contiguous(memory_format=torch.channels_last)


def embed(images, *, backbone="efficientnet_lite0", batch_size=DEFAULT_BATCH_SIZE, runtime="openvino",
          device="auto"):
    """Pooled embeddings of RGB images from a frozen, pretrained backbone.

    Parameters
    ----------
    images : sequence of ndarray of shape (height, width, 3), dtype uint8
    backbone : str, default='efficientnet_lite0'
    batch_size : int, default=4
        Images per forward pass (see ``DEFAULT_BATCH_SIZE``).
    runtime : {'openvino', 'openvino-bf16', 'torch'}, default='openvino'
        ``'torch'`` is eager PyTorch, the reference. ``'openvino'`` runs the
        same network compiled by OpenVINO in float32 (cosine to the reference
        > 0.99999, several times faster on CPU). ``'openvino-bf16'`` computes
        in bfloat16 where the CPU supports it: faster again; on the shared
        photos mean cosine 0.9993 (min 0.996) to the reference, same test
        accuracy (benchmarks/bench_cnn.py --accuracy).
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


def split_backbones(backbone):
    """The backbone names in ``backbone``: one name, or several joined with '+'.

    Several backbones are concatenated, each embedding L2-normalised first
    (see :class:`EmbeddingExtractor`).
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
    matrix product on the pooled feature). They say whether a cat or a dog is in
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
        parts = [{
            "backbone": spec.name, "arch": spec.arch, "weights_sha256": sha, "input_size": spec.input_size,
            "crop_pct": spec.crop_pct, "mean": list(spec.mean), "std": list(spec.std),
        } for spec, sha in self._resolved()]
        config = {"name": self.name, "version": self.version, "backbones": parts, "pooling": "avg",
                  "normalize": "l2 per backbone", "runtime": self.runtime}
        if self._device == "cuda":  # the cache key says what produced the embeddings
            config["runtime"] = f"torch-cuda-{_cuda_precision()}"
        if self._decoder != "pillow":
            config["decoder"] = self._decoder  # JPEGs decoded and resized by torch (others: Pillow)
        if self.head:
            config["head"] = {"columns": list(HEAD_COLUMNS), "classes": "imagenet-1k", "version": 1}
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
        from ..preprocess import resize_shorter_center_crop

        return self._crops(image, resize_shorter_center_crop)

    def prepare_encoded(self, data, path, max_pixels):
        """Worker stage for a file's bytes: an :class:`EncodedImage` for the batch decoder, or None.

        None (Pillow decoder, not an RGB/greyscale JPEG, or no end-of-image
        marker) means: decode on the CPU and call :meth:`prepare`. Header faults
        raise ``ImageDecodeError`` here, in the worker, as the CPU decoder would.
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
        blocks, heads = [], []
        for i, name in enumerate(self._names):
            crops = [p[i] for p in prepared]
            if self._device == "cuda":
                raw = self._run_cuda(name, crops)
            elif self.runtime.startswith("openvino"):
                raw = self._run_openvino(name, crops)
            else:
                raw = self._run_torch(name, crops)
            norms = np.linalg.norm(raw, axis=1, keepdims=True)
            blocks.append(raw / np.maximum(norms, 1e-12))
            if self.head:
                heads.append(imagenet_groups(raw, imagenet_head(name)))
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

        model, spec = _load_cuda(name, device)
        dtype = torch.bfloat16 if device == "cpu" or _cuda_precision() == "bf16" else torch.float16
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
        try:
            compiled, spec, _ = _load_openvino(name, "bf16" if self.runtime == "openvino-bf16" else "f32")
        except ImportError:
            raise BackboneUnavailableError(
                f"runtime={self.runtime!r} needs the 'openvino' package: pip install openvino, "
                f"or use runtime='torch'."
            ) from None
        out = np.empty((len(crops), spec.embed_dim), dtype=np.float32)
        for start in range(0, len(crops), self.batch_size):
            chunk = crops[start:start + self.batch_size]
            out[start:start + len(chunk)] = compiled(np.stack(chunk))[0]
        return out
