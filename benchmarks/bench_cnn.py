"""CNN embeddings: a typical tutorial pipeline vs catdog_sk's extractor, side by side in one run.

Usage::

    python benchmarks/bench_cnn.py [--limit N] [--accuracy] [--json-out artifacts/bench/cnn.json]

The naive pipeline is what tutorials do: PIL decode, torchvision Resize(256, bicubic) /
CenterCrop(224) / ToTensor / Normalize, eager timm tf_efficientnet_lite0 with the same weights,
batches of 64 under ``torch.inference_mode``, one image after another. catdog_sk's extractor is
run with each runtime, no cache, end to end (decode included), with its default batch size
(``--batch-sizes 4,64`` adds rows with other batch sizes). Each pipeline runs ``--repeat`` times,
interleaved with the others, and its fastest run counts. For each we report images/s, the
ratio to the naive pipeline, and the cosine similarity of every embedding to the naive one.
catdog_sk's rows include the ImageNet head's columns ('unknown' is decided from them; OpenVINO computes
them as the compiled network's second output); one more run of the default runtime without them, and the
network alone on ready crops with and without that output, print what the head costs (target: >= 0.98).
With ``--accuracy`` the train and test sets are embedded by each and StandardScaler +
LogisticRegression(C=0.01) fitted on train is scored on test.

On the CPU the same run also times, side by side, the network alone (Lite0's compiled OpenVINO model on
crops decoded and cropped beforehand, at the extractor's batch size and thread count: the physical limit)
and decoding + cropping alone through the same engine, and prints the end-to-end rate as a share of the
network alone (target: at least 85%) and the share of the end-to-end time each stage would take alone.

With ``--device cuda`` (a CUDA GPU), the same run also times, side by side: catdog_sk on the GPU end to
end (decode included, ``device='cuda'``: bf16 autocast, batches of 256), once with JPEGs decoded by
Pillow on the CPU and once by nvjpeg on the GPU (the default there), the network alone on the GPU
(random uint8 batches already in GPU memory: the physical limit), and decoding + cropping alone through
the same engine for each decoder (the share of the end-to-end time spent decoding), against the CPU
default path; each GPU path's embeddings are compared with the CPU path's (cosine).
"""

import argparse
import time

import numpy as np

from _report import BENCH_DIR, SHARED, write_report


def naive_embeddings(paths, batch_size=64):
    import torch
    from PIL import Image
    from torchvision import transforms

    from catdog_sk.features import load_backbone

    model, _, _ = load_backbone("efficientnet_lite0")
    model = model.to(memory_format=torch.contiguous_format)
    tf = transforms.Compose([
        transforms.Resize(256, interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.CenterCrop(224), transforms.ToTensor(),
        transforms.Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
    ])
    out = []
    with torch.inference_mode():
        for start in range(0, len(paths), batch_size):
            batch = torch.stack([tf(Image.open(p).convert("RGB")) for p in paths[start:start + batch_size]])
            out.append(model(batch).numpy())
    return np.concatenate(out)


def ours(paths, runtime, batch_size, head=True, device="cpu", decoder="auto"):
    """catdog_sk's extractor (with the ImageNet head columns, as the catalogue computes it); embeddings only."""
    from catdog_sk.features import extract_features
    from catdog_sk.features import EmbeddingExtractor

    ex = EmbeddingExtractor(runtime=runtime, batch_size=batch_size, head=head, device=device, decoder=decoder)
    res = extract_features(paths, [ex])  # the engine's chunks: 64 images on the CPU, 256 on a GPU
    return res.features[0][:, :ex.embedding_dim]


class _CropOnly:
    """An extractor plan that decodes and crops like the CNN's, and computes nothing: the decode cost."""

    name, version, n_features_out = "crop-only", 1, 1

    def config(self):
        return {"name": self.name}

    def prepare(self, image):
        from catdog_sk.preprocess import resize_shorter_center_crop

        return resize_shorter_center_crop(image, 224, crop_pct=0.875)

    def finalize(self, prepared):
        return np.zeros((len(prepared), 1), np.float32)


class _GpuCropOnly:
    """Decodes and crops like the CNN on a GPU (nvjpeg, torch resize), and computes nothing."""

    name, version, n_features_out = "gpu-crop-only", 1, 1

    def __init__(self):
        from catdog_sk.features import EmbeddingExtractor

        self._cnn = EmbeddingExtractor(device="cuda", decoder="nvjpeg")
        self.prepare, self.prepare_encoded = self._cnn.prepare, self._cnn.prepare_encoded
        self.decode_prepared = self._cnn.decode_prepared
        self.preferred_chunk_size = self._cnn.preferred_chunk_size  # the same chunks as the CNN's GPU run

    def config(self):
        return {"name": self.name}

    def finalize(self, prepared):
        import torch

        torch.cuda.synchronize()
        return np.zeros((len(prepared), 1), np.float32)


def decode_only(paths, plan=None):
    from catdog_sk.features import extract_features

    extract_features(paths, [plan or _CropOnly()])


def crops_of(paths, size=224, crop_pct=0.875):
    """The network's input for each photo, decoded and cropped once, outside any timing."""
    from catdog_sk.preprocess import decode_image, read_bytes, resize_shorter_center_crop

    return [resize_shorter_center_crop(decode_image(read_bytes(p), path=p), size, crop_pct=crop_pct) for p in paths]


def network_alone_cpu(crops, batch_size, precision="f32", head=False):
    """Seconds for Lite0's compiled OpenVINO model on ready crops, in the extractor's batches (no decode).

    ``head=True``: the network as the extractor compiles it for the ImageNet head's columns (a second output).
    """
    from catdog_sk.features import load_openvino

    compiled, _, _ = load_openvino("efficientnet_lite0", precision, head)
    compiled(np.stack(crops[:batch_size]))  # warm
    start = time.perf_counter()
    for i in range(0, len(crops), batch_size):
        compiled(np.stack(crops[i:i + batch_size]))[0]
    return time.perf_counter() - start


def network_alone_cuda(n, batch_size=256):
    """Images/s of Lite0 on the GPU, bf16 autocast, inputs already on the device (the physical limit)."""
    import torch

    from catdog_sk.features import cuda_precision, load_cuda

    model, _ = load_cuda("efficientnet_lite0")
    dtype = torch.bfloat16 if cuda_precision() == "bf16" else torch.float16
    x = torch.randint(0, 255, (batch_size, 3, 224, 224), device="cuda").float().contiguous(
        memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast("cuda", dtype=dtype):
        model(x)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(max(1, n // batch_size)):
            model(x)
        torch.cuda.synchronize()
    return max(1, n // batch_size) * batch_size / (time.perf_counter() - start)


def gpu_rows(sample, repeat):
    """CPU default path vs CUDA end to end (Pillow or nvjpeg decoding) vs network alone vs decode only.

    Interleaved, fastest run counts; the embeddings of each GPU path are compared with the CPU path's.
    """
    runs = {"cpu": lambda: ours(sample, "openvino", 4, True, "cpu"),
            "cuda_pillow": lambda: ours(sample, "torch", 256, True, "cuda", "pillow"),
            "cuda_nvjpeg": lambda: ours(sample, "torch", 256, True, "cuda", "nvjpeg"),
            "decode_pillow": lambda: decode_only(sample),
            "decode_nvjpeg": lambda: decode_only(sample, _GpuCropOnly())}
    best, out = {key: float("inf") for key in runs}, {}
    ours(sample[:8], "openvino", 4, True, "cpu")  # compile and copy the network once, outside the timings
    ours(sample[:8], "torch", 256, True, "cuda", "nvjpeg")
    for _ in range(repeat):
        for key, fn in runs.items():
            out[key], seconds = timed(fn)
            best[key] = min(best[key], seconds)
    net = network_alone_cuda(max(len(sample), 2048))
    rate = {key: len(sample) / best[key] for key in runs}
    row = {"cpu_img_s": rate["cpu"], "network_alone_img_s": net}
    for decoder in ("pillow", "nvjpeg"):
        cos = cosine(out["cpu"], out[f"cuda_{decoder}"])
        row[decoder] = {"cuda_img_s": rate[f"cuda_{decoder}"], "cuda_vs_cpu": rate[f"cuda_{decoder}"] / rate["cpu"],
                        "cuda_vs_network_alone": rate[f"cuda_{decoder}"] / net,
                        "decode_img_s": rate[f"decode_{decoder}"],
                        "decode_share_of_cuda_time": best[f"decode_{decoder}"] / best[f"cuda_{decoder}"],
                        "cos_min_vs_cpu": float(cos.min()), "cos_mean_vs_cpu": float(cos.mean())}
    return row


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def cosine(a, b):
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def main(argv=None):
    from catdog_sk.features import DEFAULT_BATCH_SIZE, load_openvino

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(SHARED))
    parser.add_argument("--limit", type=int, default=512, help="images of train/ to time (default 512)")
    parser.add_argument("--runtimes", default="torch,openvino,openvino-bf16,openvino-int8")
    parser.add_argument("--batch-sizes", default=str(DEFAULT_BATCH_SIZE), metavar="N[,N...]",
                        help=f"catdog_sk's batch sizes to time (default {DEFAULT_BATCH_SIZE}, the library default)")
    parser.add_argument("--repeat", type=int, default=3, metavar="N",
                        help="timed runs per pipeline, interleaved; the fastest counts (default 3)")
    parser.add_argument("--accuracy", action="store_true", help="also fit on train, score on test (slow)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cuda: also time the GPU path side by side with the CPU one (needs a CUDA GPU)")
    parser.add_argument("--json-out", default=str(BENCH_DIR / "cnn.json"))
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat must be >= 1; got {args.repeat}")
    if args.device == "cuda":
        from catdog_sk.features import cuda_available

        if not cuda_available():
            parser.error("--device cuda: PyTorch sees no CUDA GPU on this machine (torch.cuda.is_available() is False)")

    from catdog_sk.data import load_dataset
    from catdog_sk.features import load_backbone

    splits = load_dataset(args.data)
    paths = splits["train"].paths
    rng = np.random.RandomState(0)
    sample = [paths[i] for i in sorted(rng.choice(len(paths), size=min(args.limit, len(paths)), replace=False))]
    runtimes = args.runtimes.split(",")
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    configs = [(rt, bs) for rt in runtimes for bs in batch_sizes]
    # The same default pipeline without the ImageNet head's columns: what the head costs.
    headless = (runtimes[0] if "openvino" not in runtimes else "openvino", batch_sizes[0], False)
    load_backbone("efficientnet_lite0")  # one-off costs outside the timings
    if "openvino-int8" in runtimes:  # NNCF calibration on 300 training photos, once, outside the timings
        from catdog_sk.features import calibrate_int8

        calibrate_int8(splits["train"].paths, backbone="efficientnet_lite0")
    for rt in runtimes:
        if rt.startswith("openvino"):
            load_openvino("efficientnet_lite0", {"openvino-bf16": "bf16", "openvino-int8": "int8"}.get(rt, "f32"))
    naive_embeddings(sample[:8])
    for rt, bs in configs:
        ours(sample[:8], rt, bs)

    # Every pipeline runs --repeat times, interleaved, and keeps its fastest run: the machine's
    # background load then weighs on all of them alike instead of on whichever ran during a spike.
    ours(sample[:8], *headless)
    crops = crops_of(sample)
    pipelines = [(None, lambda: naive_embeddings(sample))] + \
        [(cfg, lambda cfg=cfg: ours(sample, *cfg)) for cfg in configs] + \
        [("network", lambda: (None, network_alone_cpu(crops, batch_sizes[0]))),
         ("network+head", lambda: (None, network_alone_cpu(crops, batch_sizes[0], head=True))),
         ("decode", lambda: decode_only(sample))] + \
        [(headless, lambda: ours(sample, *headless))]
    best = [float("inf")] * len(pipelines)
    embeddings = [None] * len(pipelines)
    # The pairs a ratio is taken of (with / without the head, end to end and on ready crops) run back to
    # back, in turn first and second, so a change in the machine's load falls on both sides alike.
    with_head, without_head = 1 + configs.index(headless[:2]), len(pipelines) - 1
    net, net_head = len(pipelines) - 4, len(pipelines) - 3
    for r in range(args.repeat):
        order = [k for k in range(len(pipelines)) if k not in (without_head, net_head)]
        for first, second in ((with_head, without_head), (net, net_head)):
            pair = [first, second] if r % 2 == 0 else [second, first]
            order[order.index(first):order.index(first) + 1] = pair
        for k in order:
            fn = pipelines[k][1]
            emb, s = timed(fn)
            if isinstance(emb, tuple):  # the network alone times itself, without np.stack's copies
                emb, s = emb
            best[k] = min(best[k], s)
            if embeddings[k] is None:
                embeddings[k] = emb
    ref, naive_s = embeddings[0], best[0]
    rows = [{"pipeline": "naive (PIL + torchvision + eager timm)", "img_s": len(sample) / naive_s,
             "ratio": 1.0, "cos_min": 1.0, "cos_mean": 1.0}]
    net_s, net_head_s, decode_s = best[-4], best[-3], best[-2]
    for (rt, bs), emb, s in zip(configs, embeddings[1:-4], best[1:-4]):
        cos = cosine(emb, ref)
        label = f"catdog_sk runtime={rt}" + (f" batch={bs}" if len(batch_sizes) > 1 else "")
        rows.append({"pipeline": label, "batch_size": bs, "img_s": len(sample) / s, "ratio": naive_s / s,
                     "cos_min": float(cos.min()), "cos_mean": float(cos.mean())})
    head_row = next(r for r, cfg in zip(rows[1:], configs) if cfg == headless[:2])
    head_cost = {"with_head_img_s": head_row["img_s"], "without_head_img_s": len(sample) / best[-1],
                 "ratio": head_row["img_s"] / (len(sample) / best[-1]), "runtime": headless[0],
                 "batch_size": headless[1], "network_alone_img_s": len(sample) / net_s,
                 "network_with_head_img_s": len(sample) / net_head_s, "network_ratio": net_s / net_head_s}
    default = next(r for r, cfg in zip(rows[1:], configs) if cfg[0] == "openvino") if "openvino" in runtimes else None
    stages = None
    if default is not None:
        e2e_s = len(sample) / default["img_s"]
        stages = {"end_to_end_img_s": default["img_s"], "network_alone_img_s": len(sample) / net_s,
                  "decode_alone_img_s": len(sample) / decode_s, "end_to_end_vs_network_alone": net_s / e2e_s,
                  "decode_share_of_end_to_end": decode_s / e2e_s,
                  # Both stages alone use every core, so on the same cores they add up: the best overlap
                  # can give is one photo per (network + decode) time.
                  "shared_cores_ceiling_img_s": len(sample) / (net_s + decode_s),
                  "batch_size": batch_sizes[0]}
    if args.accuracy:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        tr, te = splits["train"], splits["test"]
        for row, cfg in zip(rows, [None] + configs):
            fn = naive_embeddings if cfg is None else (lambda p, cfg=cfg: ours(p, *cfg))
            # standardised first: catdog_sk's embeddings are unit vectors, the naive ones are not
            clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=5000))
            clf.fit(fn(tr.paths), tr.labels)
            row["test_accuracy"] = float(clf.score(fn(te.paths), te.labels))
    print(f"{'pipeline':<50}{'img/s':>8}{'ratio':>8}{'cos min':>10}{'cos mean':>10}"
          + (f"{'test acc':>10}" if args.accuracy else ""))
    for r in rows:
        print(f"{r['pipeline']:<50}{r['img_s']:>8.1f}{r['ratio']:>7.2f}x{r['cos_min']:>10.5f}{r['cos_mean']:>10.5f}"
              + (f"{r['test_accuracy']:>10.4f}" if args.accuracy else ""))
    print(f"ImageNet head ('unknown'): runtime={headless[0]} batch={headless[1]}: "
          f"{head_cost['with_head_img_s']:.1f} img/s with the head columns, {head_cost['without_head_img_s']:.1f} "
          f"without: {head_cost['ratio']:.3f}x (target >= 0.98); the network alone on ready crops "
          f"{head_cost['network_with_head_img_s']:.1f} img/s with the head as its second output, "
          f"{head_cost['network_alone_img_s']:.1f} without: {head_cost['network_ratio']:.3f}x")
    if stages is not None:
        print(f"CPU stages (runtime=openvino, batch {stages['batch_size']}): end to end {stages['end_to_end_img_s']:.1f} "
              f"img/s = {stages['end_to_end_vs_network_alone']:.1%} of the network alone "
              f"({stages['network_alone_img_s']:.1f} img/s on ready crops; target 85%); decoding + cropping alone "
              f"{stages['decode_alone_img_s']:.1f} img/s, {stages['decode_share_of_end_to_end']:.0%} of the "
              f"end-to-end time if it did not overlap the network. Both use every core alone, so together "
              f"they cannot beat {stages['shared_cores_ceiling_img_s']:.1f} img/s "
              f"({stages['shared_cores_ceiling_img_s'] / stages['network_alone_img_s']:.1%} of the network alone); "
              f"end to end reaches {stages['end_to_end_img_s'] / stages['shared_cores_ceiling_img_s']:.1%} of that")
    report = {"images": len(sample), "repeat": args.repeat, "rows": rows, "imagenet_head": head_cost,
              "cpu_stages": stages}
    if args.device == "cuda":
        import torch

        g = gpu_rows(sample, args.repeat)
        report["cuda"] = dict(g, gpu=torch.cuda.get_device_name(0))
        print(f"GPU ({report['cuda']['gpu']}), Lite0 end to end, decode included:")
        print(f"  CPU default path (OpenVINO, batch 4)          {g['cpu_img_s']:>9.1f} img/s")
        for decoder, what in (("pillow", "Pillow on the CPU"), ("nvjpeg", "nvjpeg on the GPU")):
            d = g[decoder]
            print(f"  device=cuda, decoded by {what:<18}{d['cuda_img_s']:>9.1f} img/s  {d['cuda_vs_cpu']:.2f}x the "
                  f"CPU path (target 5x), {d['cuda_vs_network_alone']:.1%} of the network alone; decoding "
                  f"{d['decode_share_of_cuda_time']:.0%} of its time; cosine to the CPU path min "
                  f"{d['cos_min_vs_cpu']:.5f} (target 0.999)")
        print(f"  network alone on the GPU (batch 256)           {g['network_alone_img_s']:>9.1f} img/s")
    write_report(report, args.json_out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
