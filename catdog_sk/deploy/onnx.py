"""One portable ONNX file per saved CNN model: uint8 crops in; probabilities, presence and label out.

The graph is put together from the ecosystem's converters, not written by hand:

1. ``torch.onnx`` exports the network part, built from the fitted estimator as a ``torch.nn.Module``
   (:class:`_Network`): uint8 NHWC crops -> float, the weights' mean/std, each frozen backbone,
   global average pooling, unit L2 norm per backbone, the ImageNet-1k head grouped into
   dog / cat / other log-probabilities, and the presence score of
   :class:`~catdog_sk.models.PresenceDetector` (a linear model on the embeddings plus the head's
   log-odds, so it is a few tensor operations).
2. ``skl2onnx`` converts the fitted scikit-learn pipeline (scaling, PCA, the calibrated SVM or
   logistic regression) that maps the embeddings to class probabilities.
3. ``onnx.compose.merge_models`` joins the two on the embeddings, and a last graph of three nodes
   applies the abstain rule: ``label = -1`` ("unknown") where ``presence < threshold``, else the
   index of the larger probability.

The graph sees crops, not the photo: the size rule (``CatDogClassifier(min_side=...)``: a photo whose
shorter side is below ``min_side`` pixels is answered 'unknown', reason ``'too_small'``) is applied
by whoever decodes the photo, from ``min_side`` in the JSON, before cropping (:class:`OnnxModel`,
the web page).

Only models whose features are computed inside the network export: ``features='cnn'``. HOG,
colour histograms and the VLAD pipeline run scikit-image code on the image that has no ONNX form.
"""

import json
import os

import numpy as np

from ..exceptions import ExportError  # re-exported here

__all__ = ["ExportError", "OPSET", "VERSION_KEY", "check_exportable", "check_onnx_file", "onnx_graph", "preprocessing",
           "prepare_inputs", "write_onnx", "OnnxModel"]

#: ONNX opset of the exported graphs (ONNX Runtime >= 1.14 and ONNX Runtime Web run it).
OPSET = 18
_ML_OPSET = 3
#: Output names of the graph, in order.
OUTPUTS = ("probabilities", "presence", "label")


def check_exportable(clf):
    """Refuse, before any work, a classifier the ONNX graph cannot reproduce.

    Parameters
    ----------
    clf : CatDogClassifier
        The classifier to export.

    Raises
    ------
    ExportError
        ``clf`` is not fitted, or some of its features are not computed by the network (HOG, colour,
        the local descriptors).
    """
    from sklearn.utils.validation import check_is_fitted

    from ..registry import FEATURE_SETS

    check_is_fitted(clf)
    if FEATURE_SETS[clf.features] != ("cnn",):
        extra = ", ".join(n for n in FEATURE_SETS[clf.features] if n != "cnn")
        raise ExportError(
            f"Cannot export a model with features={clf.features!r} to ONNX: its {extra} features are computed "
            f"by scikit-image code on the image, which has no ONNX form. Export a features='cnn' model "
            f"(fit --features cnn)."
        )


def preprocessing(clf):
    """How to turn a photo into the graph's inputs, as plain data (written beside the ONNX file).

    Parameters
    ----------
    clf : CatDogClassifier
        A fitted classifier whose features all come from the network.

    Returns
    -------
    spec : dict
        ``inputs``: one entry per distinct crop (name, size, crop_pct, layout); ``resize``: the rule;
        ``classes``; ``threshold``; ``min_side`` (applied before cropping: a photo whose shorter side is
        below it is 'unknown', reason 'too_small'; None: no size rule); ``unknown_reasons``; ``outputs``.
    """
    from ..models.classifier import NOT_CAT_OR_DOG, TOO_SMALL
    from ..preprocess import MAX_ASPECT_RATIO

    abstains = getattr(clf, "presence_", None) is not None

    return {
        "inputs": _inputs(_specs(clf)),
        "resize": (f"Decode to RGB (EXIF orientation applied). If the longer side exceeds {MAX_ASPECT_RATIO:g} times "
                   f"the shorter, keep its centre {MAX_ASPECT_RATIO:g} : 1. Resize with a bicubic filter so the "
                   f"shorter side is shorter_side pixels (the other side int(shorter_side * long / short)), "
                   f"then crop size x size from the centre (offsets rounded). Pixel values stay 0-255; the "
                   f"graph normalises."),
        "max_aspect_ratio": MAX_ASPECT_RATIO,
        "classes": [str(c) for c in clf.classes_],
        "threshold": float(clf.presence_threshold_) if abstains else None,
        "min_side": int(clf.min_side) if abstains and clf.min_side is not None else None,
        "unknown_label": -1,
        "unknown_reasons": {
            TOO_SMALL: "the decoded photo's shorter side is below min_side pixels: answered 'unknown' before "
                       "cropping, whatever the graph says",
            NOT_CAT_OR_DOG: "the graph's label is -1: presence below threshold",
        },
        "outputs": {
            "probabilities": "float32 (n, 2), columns in the order of classes",
            "presence": "float32 (n,), in (0, 1); below threshold the model answers 'unknown' "
                        "(1.0 for a model that never abstains)",
            "label": "int64 (n,), index into classes, or -1 for 'unknown'",
        },
    }


def _specs(clf):
    from ..features import load_backbone, split_backbones

    return [load_backbone(name)[1] for name in split_backbones(clf.feature_backbone())]


def _input_name(spec):
    return f"image_{spec.input_size}_{int(round(spec.crop_pct * 1000))}"


def _inputs(specs):
    """The graph's inputs: one per distinct crop (backbones with the same crop share one), in first-use order."""
    inputs = {}
    for spec in specs:
        inputs.setdefault(_input_name(spec), {
            "name": _input_name(spec), "size": spec.input_size, "crop_pct": spec.crop_pct,
            "shorter_side": int(spec.input_size / spec.crop_pct), "layout": "NHWC", "dtype": "uint8",
            "channels": "RGB"})
    return list(inputs.values())


def _backbone_parts(clf):
    """(networks, specs, ImageNet heads) of the model's backbones; ExportError when 'unknown' lacks a head."""
    from ..features import imagenet_head, load_backbone, split_backbones

    nets, specs, heads = [], [], []
    for name in split_backbones(clf.feature_backbone()):
        model, spec, _ = load_backbone(name)
        head = imagenet_head(name)
        if head is None and getattr(clf, "presence_", None) is not None:
            raise ExportError(f"Backbone {name!r} has no ImageNet-1k head, which the model's 'unknown' rule needs.")
        nets.append(model)
        specs.append(spec)
        heads.append(head)
    return nets, specs, heads


def prepare_inputs(images, spec):
    """The graph's inputs for RGB images, following ``spec`` (from :func:`preprocessing`).

    Parameters
    ----------
    images : sequence of ndarray of shape (H, W, 3), dtype uint8
    spec : dict

    Returns
    -------
    feeds : dict of str to ndarray of shape (n, size, size, 3), dtype uint8
    """
    from ..preprocess import resize_shorter_center_crop

    return {i["name"]: np.stack([resize_shorter_center_crop(im, i["size"], crop_pct=i["crop_pct"])
                                 for im in images]) for i in spec["inputs"]}


def _network_module(clf):
    """The estimator's network part as a torch module: crops -> (classifier features, presence)."""
    import torch

    from ..features._backbones import imagenet_group_indices

    nets, specs, heads = _backbone_parts(clf)
    inputs = _inputs(specs)
    input_names = [i["name"] for i in inputs]
    presence = getattr(clf, "presence_", None)

    class _Network(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.nets = torch.nn.ModuleList(nets)
            self.slots = [input_names.index(_input_name(s)) for s in specs]
            for i, s in enumerate(specs):
                self.register_buffer(f"mean{i}", torch.tensor([255.0 * m for m in s.mean]).view(1, 3, 1, 1))
                self.register_buffer(f"std{i}", torch.tensor([255.0 * v for v in s.std]).view(1, 3, 1, 1))
            self.with_presence = presence is not None
            if self.with_presence:
                for i, (w, b) in enumerate(heads):
                    self.register_buffer(f"head_w{i}", torch.from_numpy(np.asarray(w, np.float32)))
                    self.register_buffer(f"head_b{i}", torch.from_numpy(np.asarray(b, np.float32)))
                for group, idx in zip(("dog", "cat", "other"), imagenet_group_indices()):
                    self.register_buffer(f"{group}_idx", torch.from_numpy(idx).long())
                lr = presence.model_
                self.register_buffer("pw", torch.tensor(lr.coef_.ravel(), dtype=torch.float32))
                self.pb = float(lr.intercept_[0])
                self.head_weight = float(presence.head_weight)
                self.learned_offset = float(presence.learned_offset_)
                self.head_offset = float(presence.head_offset_)

        def forward(self, *crops):
            blocks, odds = [], []
            for i, net in enumerate(self.nets):
                x = crops[self.slots[i]].permute(0, 3, 1, 2).to(torch.float32)
                x = (x - getattr(self, f"mean{i}")) / getattr(self, f"std{i}")
                pooled = net(x)
                blocks.append(pooled / pooled.norm(dim=1, keepdim=True).clamp_min(1e-12))
                if self.with_presence:
                    logp = torch.log_softmax(pooled @ getattr(self, f"head_w{i}").T + getattr(self, f"head_b{i}"), 1)
                    dog = torch.logsumexp(logp.index_select(1, self.dog_idx), 1)
                    cat = torch.logsumexp(logp.index_select(1, self.cat_idx), 1)
                    other = torch.logsumexp(logp.index_select(1, self.other_idx), 1)
                    odds.append(torch.logaddexp(dog, cat) - other)
            emb = blocks[0] if len(blocks) == 1 else torch.cat(blocks, 1)
            if not self.with_presence:
                return emb, torch.ones(emb.shape[0], dtype=torch.float32)
            head_odds = torch.stack(odds, 1).mean(1)
            fused = emb @ self.pw + self.pb + self.head_weight * head_odds - self.learned_offset
            margin = torch.minimum(fused, head_odds - self.head_offset)
            return emb, torch.sigmoid(margin.clamp(-50.0, 50.0))

    return _Network().eval(), input_names, {i["name"]: i["size"] for i in inputs}


def _export_network(clf):
    import warnings

    import torch

    module, input_names, sizes = _network_module(clf)
    examples = tuple(torch.zeros(2, sizes[n], sizes[n], 3, dtype=torch.uint8) for n in input_names)
    batch = torch.export.Dim("batch", min=1, max=4096)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module, examples, None, input_names=input_names, output_names=["embeddings", "net_presence"],
            opset_version=OPSET, dynamo=True, external_data=False, verbose=False,
            dynamic_shapes=(tuple({0: batch} for _ in input_names),))
    program.optimize()
    return program.model_proto


def _sklearn_graph(clf, width):
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.pipeline import Pipeline

    steps = [(n, s) for n, s in clf.pipeline_.steps if s != "passthrough" and s is not None]
    pipeline = Pipeline(steps) if len(steps) > 1 else steps[0][1]
    try:
        return convert_sklearn(pipeline, initial_types=[("features", FloatTensorType([None, width]))],
                               target_opset={"": OPSET, "ai.onnx.ml": _ML_OPSET},
                               options={id(steps[-1][1]): {"zipmap": False}})
    except Exception as exc:  # noqa: BLE001 - any converter failure is "this head does not export"
        raise ExportError(f"skl2onnx cannot convert this model's classifier ({type(exc).__name__}: {exc}).") from None


def _abstain_graph(threshold):
    """probabilities, presence -> the same two plus label (-1 where presence < threshold)."""
    from onnx import TensorProto, helper

    thr = helper.make_tensor("threshold", TensorProto.FLOAT, [], [-1.0 if threshold is None else threshold])
    minus1 = helper.make_tensor("unknown", TensorProto.INT64, [], [-1])
    nodes = [
        helper.make_node("ArgMax", ["p_in"], ["argmax"], axis=1, keepdims=0),
        helper.make_node("Less", ["s_in", "threshold"], ["absent"]),
        helper.make_node("Where", ["absent", "unknown", "argmax"], ["label"]),
        helper.make_node("Identity", ["p_in"], ["probabilities"]),
        helper.make_node("Identity", ["s_in"], ["presence"]),
    ]
    graph = helper.make_graph(
        nodes, "abstain",
        [helper.make_tensor_value_info("p_in", TensorProto.FLOAT, ["n", 2]),
         helper.make_tensor_value_info("s_in", TensorProto.FLOAT, ["n"])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["n", 2]),
         helper.make_tensor_value_info("presence", TensorProto.FLOAT, ["n"]),
         helper.make_tensor_value_info("label", TensorProto.INT64, ["n"])],
        initializer=[thr, minus1])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])


def onnx_graph(clf):
    """The fitted estimator as one ONNX model (see the module docstring).

    Parameters
    ----------
    clf : CatDogClassifier
        Fitted, with ``features='cnn'``.

    Returns
    -------
    model : onnx.ModelProto
        Inputs: one uint8 NHWC crop batch per distinct preprocessing (see
        :func:`preprocessing`). Outputs: ``probabilities``, ``presence``, ``label``.

    Raises
    ------
    ExportError
        The features are not computed by the network, or a part has no converter.
    """
    check_exportable(clf)
    try:
        import onnx
        import onnxscript  # noqa: F401 - torch.onnx's exporter needs it
        import skl2onnx  # noqa: F401
        from onnx import compose
    except ImportError:
        raise ExportError("Exporting to ONNX needs the 'onnx', 'onnxscript' and 'skl2onnx' packages: "
                          "pip install 'catdog_sk[export]'.") from None
    network = _export_network(clf)
    width = clf.split_features(np.zeros((1, clf.n_features_)))[0].shape[1]
    head = _sklearn_graph(clf, width)
    prob_name = [o.name for o in head.graph.output if "prob" in o.name][0]
    ir = max(network.ir_version, head.ir_version)
    abstain = _abstain_graph(None if getattr(clf, "presence_", None) is None else clf.presence_threshold_)
    for m in (network, head, abstain):
        m.ir_version = ir
    network = compose.add_prefix(network, "net/", rename_inputs=False, rename_outputs=False)
    head = compose.add_prefix(head, "clf/", rename_inputs=False, rename_outputs=True)
    merged = compose.merge_models(network, head, io_map=[("embeddings", "features")],
                                  outputs=["clf/" + prob_name, "net_presence"])
    merged = compose.merge_models(merged, abstain, io_map=[("clf/" + prob_name, "p_in"), ("net_presence", "s_in")])
    merged.producer_name = "catdog_sk"
    from .._version import __version__

    merged.producer_version = __version__
    onnx.checker.check_model(merged)
    return merged


def write_onnx(clf, path, *, version=""):
    """Write ``clf`` as an ONNX file and, beside it, ``<name>.json`` describing its preprocessing.

    Parameters
    ----------
    clf : CatDogClassifier
    path : str or os.PathLike
        The ``.onnx`` file to write (its folder must exist). Written atomically.
    version : str
        Model version recorded in the JSON (e.g. the first 12 characters of the model's SHA-256).

    Returns
    -------
    paths : (str, str)
        The ONNX file and the JSON file.
    """
    import onnx

    from .._io import atomic_write

    model = onnx_graph(clf)
    meta = preprocessing(clf)
    meta.update({"format": "onnx", "opset": OPSET, "model_version": version or "unversioned",
                 "backbone": clf.feature_backbone(), "input_names": [i.name for i in model.graph.input]})
    path = os.fspath(path)
    if not path.endswith(".onnx"):
        raise ExportError(f"The ONNX file's name must end in .onnx (its description is written beside it as "
                          f"<name>.json). Got {path!r} instead.")
    meta_path = os.path.splitext(path)[0] + ".json"
    onnx.helper.set_model_props(model, {VERSION_KEY: meta["model_version"]})
    atomic_write(path, model.SerializeToString())
    atomic_write(meta_path, (json.dumps(meta, indent=2) + "\n").encode())
    return path, meta_path


#: The ONNX file's metadata_props key holding the model version it was exported from.
VERSION_KEY = "catdog_sk_model_version"


def check_onnx_file(path, version):
    """Raise :class:`ExportError` unless ``path`` is a valid ONNX graph of model ``version``, with its JSON.

    The graph is loaded and checked with ``onnx.checker`` (a truncated or empty file, or any other file
    named ``.onnx``, fails here), the version stored in its ``metadata_props`` at export must be
    ``version``, and the description ``<name>.json`` beside it must name the same version.

    Parameters
    ----------
    path : str or os.PathLike
    version : str
        The model version (:func:`catdog_sk.models.card.model_version`).
    """
    import onnx

    path = os.fspath(path)
    meta_path = os.path.splitext(path)[0] + ".json"
    try:
        model = onnx.load(path)
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001 - protobuf and checker errors have no common base; all mean "not valid"
        raise ExportError(f"{path} is not a valid ONNX file ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else 'unreadable'}).") from None
    stored = {p.key: p.value for p in model.metadata_props}.get(VERSION_KEY)
    if stored != version:
        raise ExportError(f"{path} was not exported from model {version!r} (its metadata names "
                          f"{stored!r}); export this model again.")
    try:
        meta = json.loads(open(meta_path, encoding="utf-8").read())
    except (OSError, ValueError) as exc:
        raise ExportError(f"{path}: its description {meta_path} cannot be read ({type(exc).__name__}).") from None
    named = meta.get("model_version") if isinstance(meta, dict) else None
    if named != version:
        raise ExportError(f"Cannot reuse {path}: its description {meta_path} says it was exported from model "
                          f"{named!r}, not {version!r}.")


class OnnxModel:
    """Run an exported file with ONNX Runtime (CPU): the reference consumer of :func:`write_onnx`.

    Parameters
    ----------
    path : str
        The ``.onnx`` file; its ``.json`` must sit beside it.
    """

    def __init__(self, path):
        import onnxruntime as ort

        self.path = os.fspath(path)
        with open(os.path.splitext(self.path)[0] + ".json", encoding="utf-8") as f:
            self.meta = json.load(f)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(self.path, options, providers=["CPUExecutionProvider"])

    def run(self, images):
        """Answers of the ONNX graph for decoded photos, the size rule (``min_side``) applied.

        Parameters
        ----------
        images : sequence of ndarray of shape (height, width, 3), dtype uint8
            RGB images (see :func:`catdog_sk.preprocess.read_image`).

        Returns
        -------
        labels : ndarray of str
            Class names, ``'unknown'`` included.
        probabilities : ndarray of shape (n_images, 2)
            In the order of the model's classes.
        presence : ndarray of shape (n_images,)
            Presence scores.
        """
        return self.decide(images)[:3]

    def decide(self, images):
        """The estimator's :class:`~catdog_sk.models.Decision` for decoded photos, reasons included.

        Parameters
        ----------
        images : sequence of ndarray of shape (height, width, 3), dtype uint8

        Returns
        -------
        decision : catdog_sk.models.Decision
            ``(labels, proba, presence, reasons)``; a photo below ``min_side`` is 'unknown', reason
            'too_small', whatever the graph answers.
        """
        from ..models.classifier import NOT_CAT_OR_DOG, TOO_SMALL, Decision

        feeds = prepare_inputs(images, self.meta)
        proba, presence, label = self.session.run(list(OUTPUTS), feeds)
        classes = np.asarray(self.meta["classes"] + ["unknown"], dtype=object)
        reasons = np.where(label < 0, NOT_CAT_OR_DOG, None).astype(object)
        min_side = self.meta.get("min_side")  # files exported before the size rule have none
        if min_side is not None:
            small = np.array([min(im.shape[:2]) < min_side for im in images], dtype=bool)
            reasons[small] = TOO_SMALL
            label = np.where(small, -1, label)
        return Decision(classes[label], proba, presence, reasons)
