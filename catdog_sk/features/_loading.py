"""Building frozen backbones: bundled ImageNet checkpoints, timm and torchvision downloads, tuned weights.

Torch and timm are imported lazily, when a network is first built; each backbone is built once per
process. The ImageNet-1k head of each backbone is kept for :func:`imagenet_groups`.
"""

import hashlib
import os
import threading
from functools import lru_cache

import numpy as np

from ..exceptions import BackboneUnavailableError
from ._backbones import (IMAGENET_CAT_CLASSES, IMAGENET_DOG_CLASSES, BackboneSpec, bundled_weights_path,
                         get_backbone, tuned_weights, weights_sha256)

__all__ = ["load_backbone", "imagenet_head", "imagenet_groups", "known_without_building", "HEAD_COLUMNS"]

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


def known_without_building(name):
    """A bundled backbone's spec and weights checksum, read without importing torch or timm.

    With a compiled network cached on disk (OpenVINO) and its ImageNet head cached too, a process that
    only predicts never builds the PyTorch model: a first ``predict`` saves the ~3 s of importing timm
    and torchvision and building the network. Other backbones learn their preprocessing only once
    built: None.

    Parameters
    ----------
    name : str

    Returns
    -------
    known : (BackboneSpec, str) or None
    """
    spec = get_backbone(name)
    if spec.source != "bundled":
        return None
    return spec, weights_sha256(bundled_weights_path(spec))


def _head_file(name, sha):
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "catdog_sk", "heads", f"{name}-{sha[:16]}.npz")


def _save_head(name, sha, head):
    """Keep a bundled backbone's head beside the compiled networks (best effort: a read-only home is fine)."""
    import tempfile

    path = _head_file(name, sha)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".npz")
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, weight=head[0], bias=head[1])
        os.replace(tmp, path)
    except OSError:
        pass


def _cached_head(name):
    known = known_without_building(name)
    if known is None:
        return None
    try:
        with np.load(_head_file(name, known[1])) as z:
            return z["weight"].astype(np.float32), z["bias"].astype(np.float32)
    except (OSError, KeyError, ValueError):
        return None


@lru_cache(maxsize=4)
def _load(name):
    spec = get_backbone(name)
    builder = {"bundled": _build_bundled, "timm": _build_timm, "torchvision": _build_torchvision,
               "tuned": _build_tuned}
    model, spec, sha, head = builder[spec.source](spec)
    _HEADS[name] = head
    if spec.source == "bundled" and head is not None and _cached_head(name) is None:
        _save_head(name, sha, head)
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

    Parameters
    ----------
    name : str
        A backbone name (see :func:`catdog_sk.list_backbones`).

    Returns
    -------
    head : tuple of ndarray, or None
    """
    if name not in _HEADS:
        cached = _cached_head(name)  # a bundled backbone's head, kept when it was first built
        if cached is not None:
            _HEADS[name] = cached
            return cached
        load_backbone(name)
    return _HEADS.get(name)


@lru_cache(maxsize=1)
def _blas():
    from threadpoolctl import ThreadpoolController  # a scikit-learn dependency

    return ThreadpoolController()


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
    # One BLAS thread: OpenBLAS's threads spin on after a product, and that stole ~10% of the CPU from the
    # OpenVINO network running next (bench_cnn: 0.93x with the head, 1.00x with it on one thread).
    with _blas().limit(limits=1, user_api="blas"):
        logits = np.asarray(pooled, dtype=np.float32) @ weight.T + bias  # (n, 1000), one small matrix product
    probs = np.exp(logits - logits.max(axis=1, keepdims=True), dtype=np.float64)
    dog, cat = IMAGENET_DOG_CLASSES, IMAGENET_CAT_CLASSES  # contiguous ranges, dogs before cats
    mass = np.stack([probs[:, dog.start:dog.stop].sum(axis=1), probs[:, cat.start:cat.stop].sum(axis=1),
                     probs[:, :dog.start].sum(axis=1) + probs[:, dog.stop:cat.start].sum(axis=1)
                     + probs[:, cat.stop:].sum(axis=1)], axis=1)  # each group summed directly: no cancellation
    with np.errstate(divide="ignore"):
        return np.log(np.maximum(mass / probs.sum(axis=1)[:, None], 1e-300)).astype(np.float32)
