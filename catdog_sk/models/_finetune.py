"""Fine-tuning a bundled backbone on the training photos: a linear probe first, then the network (LP-FT).

The recipe is the one that measured best on the shared 2,000 training photos (issue #15): fit a linear
classifier on the frozen unit embeddings, put it on top of the network as its head, then train both
with a small learning rate, BatchNorm frozen (running statistics and affine parameters kept: left in
training mode, the same recipe fell to 94%), random crops and flips, and early stopping on a held-out
validation split. Epoch 0 is the linear probe alone: when no epoch of fine-tuning beats it on the
validation split, the frozen weights are kept, so fine-tuning never returns a worse network than it
was given (on that split).

Only this module (and the CNN modules of :mod:`catdog_sk.features`) imports torch, lazily.
"""

import copy
import functools
import time
from dataclasses import dataclass, field

import numpy as np

__all__ = ["FinetuneResult", "finetune_backbone", "probe_head", "training_bases"]


@dataclass
class FinetuneResult:
    """What :func:`finetune_backbone` returns.

    Attributes
    ----------
    state : dict of str to ndarray
        The backbone's tensors after fine-tuning (timm names, no classifier); the frozen
        weights when ``best_epoch`` is 0.
    history : list of dict
        Per epoch (0 = the linear probe): ``train_loss`` (None for epoch 0, so the model card stays
        strict JSON), ``val_loss``, ``val_accuracy``, ``seconds``.
    best_epoch : int
        The epoch whose weights were kept (lowest validation log loss).
    val_accuracy : float
        Validation accuracy of the kept epoch.
    n_train, n_val : int
    seconds : float
    """

    state: dict
    history: list = field(default_factory=list)
    best_epoch: int = 0
    val_accuracy: float = float("nan")
    n_train: int = 0
    n_val: int = 0
    seconds: float = 0.0


def probe_head(embeddings, y, *, C=1.0, scale="standard", class_weight=None):
    """The linear probe: logistic regression on the frozen unit embeddings, as one linear layer.

    With ``scale='standard'`` the standardisation is folded into the weights, so the head acts on
    the unit embeddings the network produces.

    Returns
    -------
    coef : ndarray of shape (embed_dim,)
    intercept : float
    """
    from sklearn.linear_model import LogisticRegression

    E = np.asarray(embeddings, dtype=np.float64)
    mean, std = (E.mean(axis=0), E.std(axis=0)) if scale == "standard" else (np.zeros(E.shape[1]), np.ones(E.shape[1]))
    std = np.where(std > 0, std, 1.0)
    clf = LogisticRegression(C=C, class_weight=class_weight, max_iter=5000).fit((E - mean) / std, y)
    coef = clf.coef_[0] / std
    return coef.astype(np.float32), float(clf.intercept_[0] - coef @ mean)


def training_bases(images, backbone, *, n_jobs=None):
    """Each image's centre square at the backbone's resize size (``int(input_size / crop_pct)``), uint8.

    The evaluation crop is its centre; :func:`catdog_sk.preprocess.training_crop` draws the training
    crops from it. Decoding is :func:`catdog_sk.preprocess.centre_squares`' (models open no image).

    Parameters
    ----------
    images : sequence of str, os.PathLike or ndarray
    backbone : str
        A bundled backbone name.
    n_jobs : int, default=None
        Decoding threads (None or -1: all CPUs).

    Returns
    -------
    bases : list of ndarray of shape (side, side, 3), dtype uint8
    """
    from ..features import effective_n_jobs, get_backbone
    from ..preprocess import centre_squares

    spec = get_backbone(backbone)
    return centre_squares(images, int(spec.input_size / spec.crop_pct), n_jobs=effective_n_jobs(n_jobs))


def _centre(base, size):
    off = (base.shape[0] - size) // 2
    return base[off:off + size, off:off + size]


def _build_net(backbone, coef, intercept, device):
    """The backbone + unit normalisation + the probe as a linear head, on ``device`` (norm layers frozen)."""
    import torch

    from ..features import load_backbone

    frozen, spec, _ = load_backbone(backbone)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = copy.deepcopy(frozen)
            self.head = torch.nn.Linear(coef.shape[0], 1)
            with torch.no_grad():
                self.head.weight.copy_(torch.as_tensor(coef, dtype=torch.float32)[None])
                self.head.bias.fill_(float(intercept))
            mean = torch.tensor(spec.mean, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
            std = torch.tensor(spec.std, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
            self.register_buffer("mean", mean)
            self.register_buffer("std", std)

        def forward(self, crops):  # uint8 NHWC
            x = ((crops.permute(0, 3, 1, 2).float() - self.mean) / self.std).contiguous(
                memory_format=torch.channels_last)
            z = self.body(x)
            z = z / z.norm(dim=1, keepdim=True).clamp_min(1e-12)
            return self.head(z)[:, 0]

    net = Net().to(device)
    for p in net.body.parameters():
        p.requires_grad_(True)  # the frozen copy came with every gradient off
    for module in net.body.modules():
        if isinstance(module, torch.nn.modules.batchnorm._NormBase):  # BatchNorm stays as pretrained
            for p in module.parameters(recurse=False):
                p.requires_grad_(False)
    return net, spec


def _evaluate(net, crops, y, device, batch_size):
    import torch

    logits = []
    with torch.inference_mode():
        for start in range(0, len(crops), batch_size):
            batch = torch.from_numpy(np.stack(crops[start:start + batch_size])).to(device)
            logits.append(net(batch).float().cpu().numpy())
    z = np.concatenate(logits) if logits else np.zeros(0)
    loss = float(np.mean(np.logaddexp(0, z) - y * z)) if len(z) else float("nan")  # binary cross-entropy
    return loss, float(np.mean((z > 0) == (y == 1))) if len(z) else float("nan")


def finetune_backbone(bases, y, probe, *, backbone, train, val, epochs=3, learning_rate=5e-5, weight_decay=0.01,
                      batch_size=32, patience=2, device="cpu", random_state=None, progress=False):
    """Linear probe, then fine-tuning of a bundled backbone with BatchNorm frozen and early stopping.

    Parameters
    ----------
    bases : list of ndarray of shape (S, S, 3), dtype uint8
        Each photo's centre square at the backbone's resize size ``S = int(input_size / crop_pct)``.
    y : ndarray of shape (n_images,)
        0/1 targets.
    probe : (coef, intercept)
        The linear probe on the unit embeddings (fitted by the caller on the ``train`` rows): the
        head the network starts with.
    backbone : str
        A bundled backbone name.
    train, val : ndarray of int
        Rows of ``bases`` to train on and to stop early on.
    epochs : int, default=3
        Most epochs of fine-tuning.
    learning_rate : float, default=5e-5
        Peak AdamW learning rate (linear warm-up over the first 10% of steps, cosine decay after).
    weight_decay : float, default=0.01
    batch_size : int, default=32
    patience : int, default=2
        Stop after this many epochs without a lower validation log loss.
    device : {'cpu', 'cuda'}, default='cpu'
        On CUDA the forward pass runs under bfloat16 (or float16) autocast.
    random_state : int, RandomState or None
        Seeds the crops, the batch order and torch.
    progress : bool, default=False
        A progress bar per epoch on stderr.

    Returns
    -------
    result : FinetuneResult
    """
    import torch
    from sklearn.utils import check_random_state

    start_time = time.perf_counter()
    rng = check_random_state(random_state)
    torch.manual_seed(int(rng.randint(0, 2**31 - 1)))
    net, spec = _build_net(backbone, *probe, device)
    y = np.asarray(y, dtype=np.float32)
    val_crops = [_centre(bases[i], spec.input_size) for i in val]
    opt, sched = _optimizer(net, learning_rate, weight_decay, steps=-(-len(train) // batch_size) * epochs)
    net.eval()  # BatchNorm frozen: running statistics are never updated (and dropout stays off)
    history = []
    validate = functools.partial(_validate, net, val_crops, y[val], device, 2 * batch_size, history=history,
                                 epochs=epochs, progress=progress)
    train_epoch = functools.partial(_train_epoch, net, opt, sched, bases, y, size=spec.input_size, rng=rng,
                                    batch_size=batch_size, device=device)
    _, best_epoch, state = _early_stopping(train_epoch, validate, net, train, rng, epochs=epochs, patience=patience,
                                           progress=progress)
    return FinetuneResult(state=state, history=history, best_epoch=best_epoch,
                          val_accuracy=history[best_epoch]["val_accuracy"], n_train=len(train), n_val=len(val),
                          seconds=round(time.perf_counter() - start_time, 2))


def _early_stopping(train_epoch, validate, net, train, rng, *, epochs, patience, progress):
    """Epochs until the validation loss stops falling; ``(val_loss, epoch, state)`` of the best (0: the probe)."""
    from .._progress import progress_bar

    best = (validate(0, None, time.perf_counter()), 0, _state(net))  # epoch 0: the linear probe alone
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        with progress_bar(len(train), f"fine-tune epoch {epoch}/{epochs}", "img", enabled=progress,
                          leave=False) as bar:
            train_loss = train_epoch(rng.permutation(np.asarray(train)), bar=bar)
        val_loss = validate(epoch, train_loss, t0)
        if val_loss < best[0]:
            best = (val_loss, epoch, _state(net))
        elif epoch - best[1] >= patience:
            break
    return best


def _validate(net, val_crops, y_val, device, batch_size, epoch, train_loss, t0, *, history, epochs, progress):
    """Validation loss after ``epoch`` (0: the probe alone), appended to ``history`` and printed with ``progress``."""
    from tqdm.auto import tqdm

    val_loss, val_acc = _evaluate(net, val_crops, y_val, device, batch_size)
    history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "val_accuracy": val_acc,
                    "seconds": round(time.perf_counter() - t0, 2)})
    if progress and epoch:
        tqdm.write(f"fine-tune epoch {epoch}/{epochs}: train loss {train_loss:.4f}, validation loss "
                   f"{val_loss:.4f}, accuracy {val_acc:.4f}")
    return val_loss


def _optimizer(net, learning_rate, weight_decay, steps):
    """AdamW on the trainable parameters; linear warm-up over the first 10% of steps, then cosine decay."""
    import torch

    total = max(1, steps)
    warmup = max(1, total // 10)

    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + np.cos(np.pi * (step - warmup) / max(1, total - warmup)))

    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=learning_rate,
                            weight_decay=weight_decay)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


def _train_epoch(net, opt, sched, bases, y, order, *, size, rng, batch_size, device, bar):
    """One pass over ``order`` in batches of random training crops; returns the mean training loss."""
    import torch

    from ..preprocess import training_crop

    losses = []
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        batch = torch.from_numpy(np.stack([training_crop(bases[i], size, rng) for i in idx])).to(device)
        target = torch.from_numpy(y[idx]).to(device)
        with _autocast(device):
            logits = net(batch)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        bar.update(len(idx))
        bar.set_postfix_str(f"loss {np.mean(losses):.4f}")
    return float(np.mean(losses))


def _state(net):
    """The backbone's tensors as numpy arrays (copies, dtypes kept)."""
    return {k: v.detach().cpu().numpy().copy() for k, v in net.body.state_dict().items()}


def _autocast(device):
    import contextlib

    import torch

    if device != "cuda":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
