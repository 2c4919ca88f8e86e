"""Where and how the CNN runs: OpenVINO on the CPU, eager PyTorch, CUDA; the device and batch choices."""

import os
from functools import lru_cache

import numpy as np

from ..exceptions import BackboneUnavailableError
from ._loading import known_without_building, load_backbone

__all__ = ["RUNTIMES", "DEVICES", "DECODERS", "CUDA_BATCH_SIZE", "DEFAULT_BATCH_SIZE", "cuda_available",
           "resolve_device", "load_openvino", "load_cuda", "cuda_precision"]

#: How the CNN runs on the CPU (see :func:`catdog_sk.features.embed`).
RUNTIMES = ("openvino", "openvino-bf16", "torch")

#: Where the CNN runs: 'auto' is a CUDA GPU when PyTorch sees one, else the CPU runtime.
DEVICES = ("auto", "cpu", "cuda")

#: Images per forward pass on a GPU (large batches keep it busy; the CPU default stays small).
CUDA_BATCH_SIZE = 256

#: Who decodes JPEG files for the CNN. 'auto': nvjpeg on the GPU when the network runs there, else Pillow.
#: 'torch-cpu' is the GPU pipeline run on the CPU (torchvision's decoder, torch's resize): the tests' check.
DECODERS = ("auto", "pillow", "torch-cpu", "nvjpeg")


def cuda_available():
    """Whether PyTorch sees a CUDA GPU. Without NVIDIA device files, answered without importing torch.

    Returns
    -------
    available : bool
    """
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
    """'cpu' or 'cuda' for a ``device`` parameter; 'cuda' without a GPU fails at once, in one line.

    Parameters
    ----------
    device : {'auto', 'cpu', 'cuda'}
        The parameter's value; 'auto' is the GPU when there is one.
    caller : str, default='EmbeddingTransformer'
        Named in the error.

    Returns
    -------
    device : {'cpu', 'cuda'}

    Raises
    ------
    InvalidParameterError
        ``device`` is another value.
    BackboneUnavailableError
        'cuda' was asked for and PyTorch sees no GPU.
    """
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
def load_openvino(name, precision):
    """Compile the backbone with OpenVINO; the converted model is stored once per weights checksum."""
    import openvino as ov

    known = known_without_building(name)  # bundled: no PyTorch model is needed when the IR is cached
    if known is not None:
        model, (spec, sha) = None, known
    else:
        model, spec, sha = load_backbone(name)
    version = ov.__version__.split("-")[0]
    folder = os.path.join(_openvino_dir(), f"{spec.name.replace('/', '_')}-{sha[:16]}-ov{version}-u8nhwc")
    xml = os.path.join(folder, "model.xml")
    core = ov.Core()
    if not os.path.exists(xml):
        import shutil
        import tempfile

        if model is None:
            model, spec, sha = load_backbone(name)
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


def cuda_precision():
    """The GPU's autocast precision: bfloat16 where the GPU supports it (Ampere and later), else float16.

    Returns
    -------
    precision : {'bf16', 'fp16'}
    """
    import torch

    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


@lru_cache(maxsize=4)
def load_cuda(name, device="cuda"):
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
