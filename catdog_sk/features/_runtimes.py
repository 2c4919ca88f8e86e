"""Where and how the CNN runs: OpenVINO on the CPU, eager PyTorch, CUDA; the device and batch choices."""

import os
from functools import lru_cache

import numpy as np

from ..exceptions import BackboneUnavailableError
from ._loading import imagenet_head, known_without_building, load_backbone

__all__ = ["RUNTIMES", "DEVICES", "DECODERS", "CUDA_BATCH_SIZE", "DEFAULT_BATCH_SIZE", "cuda_available",
           "resolve_device", "load_openvino", "load_cuda", "cuda_precision", "quantize_openvino_int8",
           "int8_calibration", "INT8_CALIBRATION_SIZE"]

#: How the CNN runs on the CPU (see :func:`catdog_sk.features.embed`).
RUNTIMES = ("openvino", "openvino-bf16", "openvino-int8", "torch")

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


def _ir_folder(spec, sha, precision="f32"):
    import openvino as ov

    version = ov.__version__.split("-")[0]
    suffix = "-int8" if precision == "int8" else ""
    return os.path.join(_openvino_dir(), f"{spec.name.replace('/', '_')}-{sha[:16]}-ov{version}-u8nhwc{suffix}")


def _fp32_ir(name):
    """The backbone's OpenVINO model file (converted once per weights checksum), its spec and checksum."""
    import openvino as ov

    known = known_without_building(name)  # bundled: no PyTorch model is needed when the IR is cached
    if known is not None:
        model, (spec, sha) = None, known
    else:
        model, spec, sha = load_backbone(name)
    folder = _ir_folder(spec, sha)
    xml = os.path.join(folder, "model.xml")
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
    return xml, spec, sha


#: Photos an int8 network is calibrated on (NNCF's default subset size).
INT8_CALIBRATION_SIZE = 300


def _int8_folder(name):
    """Where backbone ``name``'s int8 network is kept, with its spec and weights checksum (no fp32 model built)."""
    known = known_without_building(name)
    spec, sha = known if known is not None else load_backbone(name)[1:]
    return _ir_folder(spec, sha, "int8"), spec, sha


def int8_calibration(name):
    """What the cached int8 network of backbone ``name`` was calibrated on (None: not calibrated here).

    Returns
    -------
    calibration : dict or None
        ``{"photos_sha256", "n", "nncf"}``: a checksum of the calibration photos' content hashes, their
        number and NNCF's version.
    """
    import json

    path = os.path.join(_int8_folder(name)[0], "calibration.json")
    if not os.path.exists(path):
        return None
    with open(path) as fh:
        return json.load(fh)


def quantize_openvino_int8(name, crops, photos_sha256):
    """Post-training int8 quantisation of the backbone with NNCF on ``crops``; cached by weights checksum.

    Parameters
    ----------
    name : str
        Backbone name.
    crops : list of ndarray of shape (size, size, 3), dtype uint8
        Calibration crops of training photos, as the network sees them.
    photos_sha256 : str
        Checksum of the calibration photos (recorded beside the network and in the feature-cache key).

    Returns
    -------
    folder : str
        Where the int8 network is stored.
    """
    import json
    import shutil
    import tempfile

    import openvino as ov
    try:
        import nncf
    except ImportError:
        raise BackboneUnavailableError("runtime='openvino-int8' needs NNCF to calibrate the int8 network: "
                                       "pip install -e '.[int8]' (or pip install nncf).") from None

    xml, spec, sha = _fp32_ir(name)
    ir = ov.Core().read_model(xml)
    ir.reshape([-1, spec.input_size, spec.input_size, 3])
    data = nncf.Dataset([np.asarray(c)[None] for c in crops])
    # MIXED: symmetric weights, asymmetric activations (the activations after swish are not centred).
    quantized = nncf.quantize(ir, data, preset=nncf.QuantizationPreset.MIXED, subset_size=len(crops))
    folder = _ir_folder(spec, sha, "int8")
    os.makedirs(os.path.dirname(folder), exist_ok=True)
    tmp = tempfile.mkdtemp(dir=os.path.dirname(folder), prefix=".tmp-")
    try:
        ov.save_model(quantized, os.path.join(tmp, "model.xml"), compress_to_fp16=False)
        with open(os.path.join(tmp, "calibration.json"), "w") as fh:
            json.dump({"photos_sha256": photos_sha256, "n": len(crops), "nncf": nncf.__version__}, fh)
        shutil.rmtree(folder, ignore_errors=True)  # a new calibration replaces the old one
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load_openvino.cache_clear()
    return folder


def _append_imagenet_head(ir, head):
    """The network with a second output: the ImageNet head's three group log-probabilities.

    The same numbers as :func:`catdog_sk.features.imagenet_groups` on the pooled output (to 3e-6), computed by
    OpenVINO in the same inference call: one float32 product with the head's weights, then a log-sum-exp
    over each group minus the one over all 1,000 classes (no probability is formed, so none underflows).
    No copy of the pooled features, no NumPy, no BLAS threads of its own beside the network's.
    """
    import openvino as ov
    from openvino import opset13 as ops

    from ._backbones import imagenet_group_indices

    weight, bias = head
    pooled = ir.output(0).get_node().input_value(0)  # what the Result node holds
    logits = ops.add(ops.matmul(pooled, ops.constant(np.ascontiguousarray(weight.T, dtype=np.float32)), False, False),
                     ops.constant(np.asarray(bias, dtype=np.float32)[None]))

    def logsumexp(x):
        top = ops.reduce_max(x, np.array([1]), True)
        return ops.add(ops.log(ops.reduce_sum(ops.exp(ops.subtract(x, top)), np.array([1]), True)), top)

    groups = imagenet_group_indices(weight.shape[0])
    total = logsumexp(logits)
    columns = [ops.subtract(logsumexp(ops.gather(logits, ops.constant(idx.astype(np.int64)), ops.constant(np.int64(1)))),
                            total) for idx in groups]
    return ov.Model([pooled, ops.concat(columns, 1).output(0)], ir.get_parameters(), ir.get_friendly_name())


@lru_cache(maxsize=8)
def load_openvino(name, precision, head=False):
    """Compile the backbone with OpenVINO; the converted model is stored once per weights checksum.

    ``precision`` 'f32' or 'bf16' (the inference precision hint), or 'int8': the network
    :func:`quantize_openvino_int8` calibrated (FileNotFoundError when there is none).

    With ``head=True`` (and a backbone that has an ImageNet head) the compiled network has a second
    output, the head's group log-probabilities (see :func:`_append_imagenet_head`), and ``head`` in the
    return value is True. Not under 'bf16': there OpenVINO would run the head's product in bfloat16
    too (log-probabilities off by up to 0.03), so the head stays a float32 product outside
    (:func:`catdog_sk.features.imagenet_groups`) and ``head`` is False.

    Returns
    -------
    compiled : openvino.CompiledModel
    spec : BackboneSpec
    head : bool
        Whether ``compiled``'s second output holds the head's columns.
    """
    import openvino as ov

    if precision == "int8":  # the calibrated network alone: no fp32 model is needed
        folder, spec, sha = _int8_folder(name)
        xml = os.path.join(folder, "model.xml")
        if not os.path.exists(xml):
            raise FileNotFoundError(xml)
    else:
        xml, spec, sha = _fp32_ir(name)
    core = ov.Core()
    ir = core.read_model(xml)
    # The crop size is fixed, so fix height and width (the batch stays free): OpenVINO then picks
    # kernels for the real shapes. Measured 13% (fp32) to 19% (bf16) faster than all-dynamic shapes.
    ir.reshape([-1, spec.input_size, spec.input_size, 3])
    weights = imagenet_head(name) if head and precision != "bf16" else None
    if weights is not None:
        ir = _append_imagenet_head(ir, weights)
    compiled = core.compile_model(ir, "CPU", {
        "INFERENCE_PRECISION_HINT": "f32" if precision == "int8" else precision, "PERFORMANCE_HINT": "LATENCY"})
    return compiled, spec, weights is not None


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
