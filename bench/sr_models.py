"""SR networks: images/s of the app's inference path against a plain PyTorch eval loop, per architecture.

What is timed. For every checkpoint of ``--models`` (default: one per
architecture at x4, so that the 288x288 demo reference ``fixtures/demo/Ref/
D0001.png`` becomes a 72x72 LR input and a 288x288 output), two things run on
the same ``nn.Module`` object, hence the same weights:

- app: ``sr_models.inference.upscale(loaded, [lr] * batch, device=..., dtype=...)``
  on the uint8 LR image, as the ``sr_network`` / ``gan_sr_network`` distortion
  families call it: uint8 -> float64, for SRCNN and VDSR a MATLAB-bicubic
  pre-upsample to 288x288 (numpy), for the Y-channel models (SRCNN, FSRCNN,
  VDSR) the YCbCr conversion and a MATLAB-bicubic upscale of the chroma
  (numpy), the network under ``torch.inference_mode`` (and autocast for
  fp16/bf16), then the way back to RGB and uint8 rounding;
- plain: ``with torch.inference_mode(): model(x)`` on a tensor made once
  before the clock starts, already on the device, of the shape the network
  takes (N,3,72,72 or N,1,72,72; N,1,288,288 for the pre-upsampling SRCNN
  and VDSR) and holding the very values the app feeds it (made with the
  app's own conversions, outside the clock). For fp16/bf16 it runs under the
  same ``torch.autocast`` as the app, so both paths do the same network work.
  By default the tensor also has the strides of the app's batch (column
  "plain input layout"): the input's memory layout decides whether oneDNN
  runs NCHW or channels-last kernels through the whole network, which alone
  moves the time by tens of percent, so a plain NCHW tensor would mix that
  into the ratio. ``--plain-layout nchw`` or ``nhwc`` times the plain loop on
  a copy in that layout instead, to see what the layout is worth.

So the ratio app images/s ÷ plain images/s (below 1: the app is slower) and
the difference "app − plain" show what the app's pre- and post-processing
cost around the network. The last column checks that the two paths computed
the same thing: the largest difference, in uint8 levels, between the app's
output and the plain loop's output put through the same conversions (0 on
CPU; fp16/bf16 on a GPU may differ by a level).

Weights are RANDOM: the benchmark measures speed, not quality (no published
checkpoint can be downloaded here, and none is needed for a speed figure).
For each model a random state dict in our key layout (matrices scaled by 0.5,
as ``tests/factories.py`` does, to keep deep random networks' outputs in
range) is saved under the published file name in a temporary weights folder
and loaded with the app's own ``weights.load_checkpoint`` (or
``load_interpolated`` at alpha 0.5 for an interpolation checkpoint): the real
loading path (SHA-256, layout conversion, strict load), timed once and shown
as "load s". The file is deleted once loaded, and the model dropped before
the next one, so only one network is in memory at a time.

Method. The machine is noisy, so the plain loop is the baseline measured in
the same run, interleaved with the app model by model: one warm-up of each
path per model and dtype (oneDNN / cuDNN primitives, first-call
allocations), then ``--repeats`` rounds, each timing app and plain once per
dtype, alternating which of the two goes first from one round to the next.
Figures come from the median. On CUDA, ``torch.cuda.synchronize()`` is called
before the clock starts and before it stops (the app's ``.cpu()`` copy waits
for the GPU anyway; the plain loop's output stays on the GPU). Each
images/s counts ``--batch`` images per call (the app's generation path
calls it with one image).

The PIPAL-scale estimate: one SR distortion type is one output per reference
(a catalogue type with L levels, like the ESRGAN interpolation's 3 alphas,
costs L times as much), so the hours for ``--pipal-references`` references
(250: all of PIPAL; 200: the NTIRE training split) are the app's seconds per
image times that count, on this machine with these threads. The catalogue
uses x3 for SRCNN, FSRCNN and VDSR (PIPAL's 96x96 LR of a 288x288 image):
their cost per output pixel barely changes with the scale for the
pre-upsampling SRCNN and VDSR, and FSRCNN's trunk runs on the LR grid, so it
does about 16/9 times more trunk work at x3 than at x4.

Threads. Torch uses ``--threads`` intra-op threads (default: one per core).
numpy's OpenBLAS has its own pool, which the app's numpy matrix products
use (the YCbCr conversions, every MATLAB-bicubic resize): its threads keep
spinning for a while after each product, and on a small machine they take
cores from torch's threads in the network that follows. ``--blas-threads 1``
(OPENBLAS_NUM_THREADS=1, set before numpy is imported) shows how much of the
app's overhead that is; the default leaves the environment as the app runs.

``--device cuda`` (on a machine with a GPU) times ``--dtypes``, by default
fp32,fp16,bf16, and adds the ratio to fp32 and each precision's output against
the CPU fp32 output of the same weights (max and mean |difference| in grey
levels: the tolerance autocast keeps); on CPU the default is fp32 (bf16
is allowed; fp16 is refused on CPU by the app, and here). Asking for CUDA
where torch sees no GPU stops with a message. With the defaults on a quiet
2-core machine the CPU run takes about a minute, most of it EDSR (43M
parameters), RCAN and RRDBNet (ESRGAN), 0.6 to 1.5 s per image each; several
times longer when another process shares the cores.

Nothing here imports Django. The temporary folder is removed in a ``finally``.

Run from the repository root:

    .venv/bin/python bench/sr_models.py
    .venv/bin/python bench/sr_models.py --models srcnn_x4,fsrcnn_x4,vdsr_x4,edsr_baseline_x4 --repeats 9
    .venv/bin/python bench/sr_models.py --blas-threads 1
    .venv/bin/python bench/sr_models.py --device cuda --dtypes fp32,fp16,bf16 --batch 8 --repeats 10
    .venv/bin/python bench/sr_models.py --help
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import benchlib
from benchlib import ROOT, median, ratio

# This file has the name of the package it measures: put the repository root ahead of this folder
# (benchlib adds it only when absent, e.g. not under PYTHONPATH=.) so `import sr_models` is the package.
if str(ROOT) in sys.path:
    sys.path.remove(str(ROOT))
sys.path.insert(0, str(ROOT))

DEMO_REF = ROOT / "fixtures" / "demo" / "Ref" / "D0001.png"
# One checkpoint per architecture, each at x4 (72 -> 288 on the demo reference).
DEFAULT_MODELS = "srcnn_x4,fsrcnn_x4,vdsr_x4,edsr_baseline_x4,edsr_x4,rcan_x4,srresnet_x4,esrgan_x4,eusr_4pp_pirm_x4"
INTERPOLATION_ALPHA = 0.5


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Images/s of every SR architecture through the app's inference.upscale against a plain "
        "PyTorch eval loop on the same (random) weights, with a PIPAL-scale estimate; fp32 vs fp16/bf16 on a GPU.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated checkpoint names (sr_infer --list)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each path per model and dtype (median)")
    parser.add_argument("--batch", type=int, default=1, help="images per call (copies of the LR image)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="torch device")
    parser.add_argument(
        "--dtypes", default="", help="comma-separated precisions of fp32,fp16,bf16 (default: fp32 on CPU, all on CUDA)"
    )
    parser.add_argument(
        "--plain-layout",
        choices=["app", "nchw", "nhwc"],
        default="app",
        help="memory layout of the plain loop's input: the app's own strides, or a copy in NCHW / channels-last",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=0,
        help="OPENBLAS_NUM_THREADS for numpy's BLAS, set before numpy is imported (0: leave the environment as is)",
    )
    parser.add_argument("--reference", type=Path, default=DEMO_REF, help="HR image; the LR input is its downscale")
    parser.add_argument("--pipal-references", default="250,200", help="reference counts to extrapolate to")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    return parser.parse_args(argv)


def int_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def check_environment(args: argparse.Namespace) -> list[str]:
    """The dtypes to time, after refusing what cannot run here (with the reason)."""
    import torch

    from sr_models import inference

    if args.repeats < 1 or args.batch < 1:
        raise SystemExit("--repeats and --batch must be at least 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit(
            f"--device cuda: torch {torch.__version__} sees no CUDA GPU on this machine "
            f"(torch.cuda.is_available() is False); run it where a GPU is lent, or use --device cpu"
        )
    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()] or (
        list(inference.DTYPES) if args.device == "cuda" else ["fp32"]
    )
    for dtype in dtypes:
        try:
            inference.check_device_dtype(args.device, dtype)
        except inference.InferenceError as error:
            raise SystemExit(f"--dtypes {dtype}: {error}") from None
    if args.device == "cuda" and "bf16" in dtypes and not torch.cuda.is_bf16_supported():
        raise SystemExit(f"--dtypes bf16: {torch.cuda.get_device_name()} does not support bfloat16")
    return list(dict.fromkeys(dtypes))


# --- random checkpoints through the real loading path -------------------------------------


def write_random_checkpoint(name: str, weights_dir: Path, seed: int) -> list[Path]:
    """Save random weights in our layout under the published file name(s) (both ends of an interpolation)."""
    import torch

    from sr_models import archs, weights

    checkpoint = weights.get_checkpoint(name)
    parts = [weights.get_checkpoint(part) for part in (checkpoint.parts or (name,))]
    paths = []
    for offset, part in enumerate(parts):
        torch.manual_seed(seed + offset)
        model = archs.build(part.arch, part.scale, **part.build_options)
        with torch.no_grad():
            for tensor in model.state_dict().values():
                if tensor.is_floating_point() and tensor.ndim > 1:
                    tensor.mul_(0.5)
        path = weights_dir / part.file
        torch.save(model.state_dict(), path)
        paths.append(path)
    return paths


def load_random(name: str, weights_dir: Path, device: str, seed: int):
    """(LoadedModel, seconds the app's loader took, MB of weight files); the files are deleted afterwards."""
    from sr_models import weights

    paths = write_random_checkpoint(name, weights_dir, seed)
    megabytes = sum(path.stat().st_size for path in paths) / 1e6
    try:
        started = time.perf_counter()
        if weights.get_checkpoint(name).parts:
            loaded = weights.load_interpolated(name, INTERPOLATION_ALPHA, weights_dir=weights_dir, device=device)
        else:
            loaded = weights.load_checkpoint(name, weights_dir=weights_dir, device=device)
        seconds = time.perf_counter() - started
    finally:
        for path in paths:
            path.unlink(missing_ok=True)
    return loaded, seconds, megabytes


# --- the plain loop's input and output -----------------------------------------------------


def network_input(loaded, lr):
    """What the app hands the network for ``lr``, as an HxWxC float64 array, and the chroma it keeps
    aside for Y-channel models (None for RGB ones); made with the app's own conversions."""
    from sr_models import inference
    from sr_models.imresize import imresize

    spec, scale = loaded.spec, loaded.checkpoint.scale
    target = (lr.shape[0] * scale, lr.shape[1] * scale)
    rgb = lr.astype("float64") / 255.0
    if spec.pre_upsample:
        rgb = imresize(rgb, output_shape=target, method="bicubic")
    if spec.color != "y":
        return rgb, None
    ycbcr = inference.rgb_to_ycbcr(rgb)
    cbcr = ycbcr[..., 1:]
    return ycbcr[..., :1], cbcr if spec.pre_upsample else imresize(cbcr, output_shape=target, method="bicubic")


def plain_tensor(pixels, batch: int, input_range: float, layout: str):
    """The plain loop's input: ``batch`` copies of ``pixels`` (HxWxC float64) as an NCHW float32 tensor.

    "app" builds it exactly as ``inference.upscale`` builds its batch (a contiguous float32 NHWC stack
    seen as NCHW: PyTorch's channels-last layout), so oneDNN / cuDNN pick the same kernels for both
    paths. "nchw" and "nhwc" copy it into that layout instead."""
    import numpy as np
    import torch

    stacked = np.ascontiguousarray(np.stack([pixels] * batch), dtype=np.float32)
    x = torch.from_numpy(stacked).permute(0, 3, 1, 2) * input_range
    if layout == "nchw":
        return x.clone(memory_format=torch.contiguous_format)
    if layout == "nhwc":
        return x.clone(memory_format=torch.channels_last)
    return x


def layout_name(x) -> str:
    """NCHW (the default strides), channels-last, or other."""
    n, c, h, w = x.shape
    if x.stride() == (c * h * w, h * w, w, 1):
        return "NCHW"
    if x.stride() == (h * w * c, 1, w * c, c):
        return "channels-last"
    return "other: " + ",".join(str(stride) for stride in x.stride())


def plain_to_uint8(loaded, output, chroma):
    """The plain loop's first output (1xCxHxW tensor) through the app's conversions back to uint8 RGB."""
    import numpy as np

    from sr_models import inference

    planes = (output[0].float().cpu() / loaded.spec.input_range).permute(1, 2, 0).numpy().astype(np.float64)
    rgb = inference.ycbcr_to_rgb(np.concatenate([planes, chroma], axis=-1)) if chroma is not None else planes
    return np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)


# --- timing --------------------------------------------------------------------------------


def autocast(device: str, dtype: str):
    import torch

    if dtype == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device, dtype=torch.float16 if dtype == "fp16" else torch.bfloat16)


def timed(run: Callable[[], object], device: str) -> tuple[float, object]:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    result = run()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started, result


def bench_model(name: str, lr, args: argparse.Namespace, dtypes: list[str], weights_dir: Path) -> list[dict]:
    """Load ``name`` with random weights, time app and plain per dtype, interleaved; one row per dtype."""
    import numpy as np
    import torch

    from sr_models import inference

    loaded, load_seconds, megabytes = load_random(name, weights_dir, args.device, args.seed)
    model = loaded.model
    params = sum(p.numel() for p in model.parameters()) / 1e6
    pixels, chroma = network_input(loaded, lr)
    x = plain_tensor(pixels, args.batch, loaded.spec.input_range, args.plain_layout).to(args.device)
    images = [lr] * args.batch

    def app(dtype: str) -> Callable[[], object]:
        return lambda: inference.upscale(loaded, images, device=args.device, dtype=dtype)

    def plain(dtype: str) -> Callable[[], object]:
        def run():
            with torch.inference_mode(), autocast(args.device, dtype):
                return model(x)

        return run

    samples = {(path, dtype): [] for path in ("app", "plain") for dtype in dtypes}
    differences, versus_cpu = {}, {}
    cpu_fp32 = None
    if args.device == "cuda":  # the same random weights (same seed) on the CPU in fp32: the reference output
        cpu_loaded, _, _ = load_random(name, weights_dir, "cpu", args.seed)
        cpu_fp32 = inference.upscale(cpu_loaded, [lr], device="cpu", dtype="fp32")[0].astype(np.int16)
        del cpu_loaded
    for dtype in dtypes:  # warm-up, and the check that both paths compute the same output
        _, outputs = timed(app(dtype), args.device)
        _, output = timed(plain(dtype), args.device)
        expected = plain_to_uint8(loaded, output, chroma)
        differences[dtype] = int(np.abs(outputs[0].astype(np.int16) - expected.astype(np.int16)).max())
        if cpu_fp32 is not None:
            gap = np.abs(outputs[0].astype(np.int16) - cpu_fp32)
            versus_cpu[dtype] = f"max {int(gap.max())}, mean {gap.mean():.3f}"
    for round_ in range(args.repeats):
        for dtype in dtypes:
            order = ("app", "plain") if round_ % 2 == 0 else ("plain", "app")
            for path in order:
                seconds, _ = timed(app(dtype) if path == "app" else plain(dtype), args.device)
                samples[(path, dtype)].append(seconds / args.batch)
    rows = [
        {
            "name": name,
            "arch": loaded.checkpoint.arch,
            "params": params,
            "megabytes": megabytes,
            "load": load_seconds,
            "input": "x".join(str(n) for n in x.shape),
            "layout": layout_name(x),
            "dtype": dtype,
            "app": median(samples[("app", dtype)]),
            "plain": median(samples[("plain", dtype)]),
            "difference": differences[dtype],
            "versus_cpu": versus_cpu.get(dtype, ""),
        }
        for dtype in dtypes
    ]
    return rows


# --- report --------------------------------------------------------------------------------


def report(rows: list[dict], args: argparse.Namespace, dtypes: list[str]) -> None:
    references = int_list(args.pipal_references)
    fp32 = {row["name"]: row["app"] for row in rows if row["dtype"] == "fp32"}
    multi = len(dtypes) > 1 and "fp32" in dtypes
    headers = ["checkpoint", "arch", "M params", "load s", "network input", "plain input layout"]
    headers += ["dtype"] * (len(dtypes) > 1)
    headers += ["app s/image", "plain s/image", "app images/s", "plain images/s", "app ÷ plain images/s"]
    headers += ["app − plain, ms"] + ["app ÷ app fp32 images/s"] * multi + ["max |app − plain|, uint8"]
    cuda = args.device == "cuda"
    headers += ["|app − CPU fp32 app|, uint8"] * cuda
    table = []
    for row in rows:
        line = [row["name"], row["arch"], row["params"], row["load"], row["input"], row["layout"]]
        line += [row["dtype"]] * (len(dtypes) > 1)
        line += [row["app"], row["plain"], 1 / row["app"], 1 / row["plain"], ratio(1 / row["app"], 1 / row["plain"])]
        line += [(row["app"] - row["plain"]) * 1e3]
        line += [ratio(1 / row["app"], 1 / fp32[row["name"]]) if row["name"] in fp32 else float("nan")] * multi
        line += [row["difference"]] + [row["versus_cpu"]] * cuda
        table.append(line)
    print(benchlib.table(headers, table))

    print(
        f"\n-- PIPAL-scale estimate: hours of app time to make one SR type (one output per reference) "
        f"on this machine, device {args.device} --"
    )
    headers = ["checkpoint"] + ["dtype"] * (len(dtypes) > 1) + [f"h for {count} refs" for count in references]
    table = []
    for row in rows:
        table.append([row["name"]] + [row["dtype"]] * (len(dtypes) > 1) + [row["app"] * n / 3600 for n in references])
    for dtype in dtypes:
        total = sum(row["app"] for row in rows if row["dtype"] == dtype)
        table.append(
            [f"all {len({row['name'] for row in rows})} above"]
            + [dtype] * (len(dtypes) > 1)
            + [total * n / 3600 for n in references]
        )
    print(benchlib.table(headers, table))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.blas_threads:
        if "numpy" in sys.modules:
            raise SystemExit("--blas-threads must be set before numpy is imported: run this file as a script")
        os.environ["OPENBLAS_NUM_THREADS"] = str(args.blas_threads)
    import numpy as np
    import torch
    from PIL import Image

    from sr_models import weights
    from sr_models.distortions import ops

    dtypes = check_environment(args)
    names = [name.strip() for name in args.models.split(",") if name.strip()]
    for name in names:
        try:
            weights.get_checkpoint(name)
        except KeyError as error:
            raise SystemExit(str(error.args[0])) from None
    if args.threads:
        torch.set_num_threads(args.threads)
    with Image.open(args.reference) as image:
        reference = np.asarray(image.convert("RGB"))

    tmp = Path(tempfile.mkdtemp(prefix="pipal-bench-sr-"))
    started = time.perf_counter()
    try:
        benchlib.header("sr_models: app inference.upscale vs a plain PyTorch eval loop")
        device = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
        print(
            f"torch {torch.__version__}, device {args.device} ({device}), {torch.get_num_threads()} intra-op threads; "
            f"numpy {np.__version__}, OPENBLAS_NUM_THREADS {os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}; "
            f"dtypes {','.join(dtypes)}; batch {args.batch}; {args.repeats} timed runs per path (median)"
        )
        print("RANDOM weights (saved and loaded through weights.load_checkpoint): speed only, outputs meaningless")
        rows = []
        lr_cache: dict[int, np.ndarray] = {}
        for name in names:
            scale = weights.get_checkpoint(name).scale
            if scale not in lr_cache:
                lr_cache[scale] = ops.downscale(reference, scale)
                lr = lr_cache[scale]
                print(
                    f"input: {args.reference.name} {reference.shape[1]}x{reference.shape[0]} -> MATLAB-bicubic "
                    f"x1/{scale} -> LR {lr.shape[1]}x{lr.shape[0]} -> SR x{scale} "
                    f"{lr.shape[1] * scale}x{lr.shape[0] * scale}"
                )
            model_started = time.perf_counter()
            rows += bench_model(name, lr_cache[scale], args, dtypes, tmp)
            gc.collect()  # the model went out of scope with bench_model: free it before the next one
            if args.device == "cuda":
                torch.cuda.empty_cache()
            print(f"  {name}: {time.perf_counter() - model_started:.1f} s", flush=True)
        print()
        report(rows, args, dtypes)
        print(f"\nwhole run {time.perf_counter() - started:.0f} s")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
