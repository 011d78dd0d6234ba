"""Time per training step with the boundary loss: distance maps from scipy in the data loader (the
reference practice) vs gpudist maps in the step vs gpudist's fused from-logits loss.

    python benchmarks/bench_training.py                       # 2-D 256x256, batch 8
    python benchmarks/bench_training.py --ndim 3 --size 64 --batch 2
    python benchmarks/bench_training.py --json out.json

Same model (the example's UNet), data (the example's synthetic lesions, generated once, in
memory), batch, optimiser (Adam) and loss (GDL, idc=[0, 1], + boundary loss, idc=[1]) in every
variant; the loader applies the same random flips and transposition in `Dataset.__getitem__`:

- (a) "scipy in loader": `__getitem__` also computes the level-set maps of every class of the
  augmented label with scipy, the reference code's `one_hot2dist` (written below from its
  published formula, in float32), and the step uses them as precomputed maps;
- (b) "gpudist in step": the step computes the maps from the augmented labels on the model's
  device (`BoundaryLoss` given labels: one batched `gpudist.labels_to_dist` call);
- (c) "gpudist fused": as (b), with GDL and the boundary loss taking the logits
  (`from_logits=True`: the fused boundary-loss op).

Per variant: a warm-up epoch (workers started, persistent), then `--epochs` timed epochs. Reported:
seconds per step (epoch time / steps), seconds per epoch, and the loader stall per step (time
the training loop waits in `next(loader)`), medians over the timed epochs. On CUDA the step ends
with a synchronize.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage
from torch.utils.data import DataLoader, Dataset

import gpudist
from gpudist.losses import BoundaryLoss, GeneralizedDiceLoss

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from synthetic import make_dataset  # noqa: E402
from unet import UNet  # noqa: E402

VARIANTS = ("scipy in loader", "gpudist in step", "gpudist fused")


def one_hot2dist(seg: np.ndarray) -> np.ndarray:
    """The reference code's level-set maps (float32 (K, *spatial)) of a one-hot (K, *spatial):
    EDT(neg) * neg - (EDT(pos) - 1) * pos per class present, 0 for an absent class."""
    res = np.zeros(seg.shape, dtype=np.float32)
    for k in range(len(seg)):
        pos = seg[k].astype(bool)
        if pos.any():
            neg = ~pos
            res[k] = (ndimage.distance_transform_edt(neg) * neg
                      - (ndimage.distance_transform_edt(pos) - 1) * pos)
    return res


class Lesions(Dataset):
    """Images (1, *spatial) and labels (*spatial) held in memory, randomly flipped and transposed
    per item; with `maps`, also the reference maps (2, *spatial) of the augmented label."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, maps: bool) -> None:
        self.images, self.labels, self.maps = images.numpy(), labels.numpy(), maps

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[np.ndarray, ...]:
        rng = np.random.default_rng()
        ndim = self.labels.ndim - 1
        axes = tuple(a for a in range(ndim) if rng.random() < 0.5)
        perm = rng.permutation(ndim)
        x = np.flip(self.images[i], [1 + a for a in axes]).transpose(0, *(1 + perm))
        y = np.flip(self.labels[i], axes).transpose(*perm)
        x, y = np.ascontiguousarray(x), np.ascontiguousarray(y)
        if not self.maps:
            return x, y
        return x, y, one_hot2dist(np.stack([y == 0, y == 1]))


def loss_of(variant: str, logits: torch.Tensor, labels: torch.Tensor,
            maps: torch.Tensor | None) -> torch.Tensor:
    """GDL (idc [0, 1]) + boundary loss (idc [1]) as each variant computes it."""
    if variant == "gpudist fused":
        return (GeneralizedDiceLoss(idc=[0, 1], from_logits=True)(logits, labels)
                + BoundaryLoss(idc=[1], from_logits=True)(logits, labels))
    probs = torch.softmax(logits, 1)
    target = labels if maps is None else maps
    return GeneralizedDiceLoss(idc=[0, 1])(probs, labels) + BoundaryLoss(idc=[1])(probs, target)


def run_variant(variant: str, images: torch.Tensor, labels: torch.Tensor, args: argparse.Namespace,
                device: torch.device) -> dict:
    """Times `args.epochs` epochs (after a warm-up one) of `variant`."""
    torch.manual_seed(0)
    model = UNet(1, 2, base=args.base, ndim=args.ndim).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(Lesions(images, labels, maps=variant == "scipy in loader"),
                        batch_size=args.batch, shuffle=True, drop_last=True,
                        num_workers=args.workers, persistent_workers=args.workers > 0)
    epochs = []
    for _ in range(args.epochs + 1):
        stall = 0.0
        t_epoch = time.perf_counter()
        it = iter(loader)
        while True:
            t0 = time.perf_counter()
            batch = next(it, None)
            stall += time.perf_counter() - t0
            if batch is None:
                break
            x, y, *maps = (b.to(device, non_blocking=True) for b in batch)
            loss = loss_of(variant, model(x), y, maps[0] if maps else None)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
        epochs.append((time.perf_counter() - t_epoch, stall))
    steps = len(loader)
    timed = epochs[1:]
    return {"variant": variant, "steps_per_epoch": steps,
            "s_per_epoch": statistics.median(e for e, _ in timed),
            "s_per_step": statistics.median(e for e, _ in timed) / steps,
            "stall_per_step": statistics.median(s for _, s in timed) / steps,
            "epochs_s": [e for e, _ in timed]}


def table(rows: list[dict]) -> str:
    base = rows[0]["s_per_step"]
    lines = [f"{'variant':<18}  {'s/step':>8}  {'s/epoch':>8}  {'loader stall/step':>17}  "
             f"{'vs (a)':>6}", "-" * 66]
    for r in rows:
        lines.append(f"{r['variant']:<18}  {r['s_per_step']:>8.3f}  {r['s_per_epoch']:>8.2f}  "
                     f"{r['stall_per_step']:>17.3f}  {base / r['s_per_step']:>5.2f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ndim", type=int, default=2, choices=(2, 3))
    ap.add_argument("--size", type=int, default=256, help="image side (default 256)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=8, help="steps per epoch (default 8)")
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs (default 3)")
    ap.add_argument("--base", type=int, default=16, help="UNet width (default 16)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="DataLoader workers (default: the CPU count)")
    ap.add_argument("--device", help="default: cuda when available, else cpu")
    ap.add_argument("--json", type=Path, help="write the rows and settings here")
    args = ap.parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    images, labels = make_dataset(args.steps * args.batch, args.size, args.ndim, seed=0)
    print(f"{args.ndim}-D {args.size}^{args.ndim}, batch {args.batch}, {args.steps} steps/epoch, "
          f"UNet base {args.base}, {args.workers} workers, device {device}, "
          f"{torch.get_num_threads()} torch threads", flush=True)
    rows = [run_variant(v, images, labels, args, device) for v in VARIANTS]
    print(table(rows))
    if args.json is not None:
        meta = {"torch": torch.__version__, "gpudist": gpudist.__version__,
                "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                "load_average": os.getloadavg()}
        args.json.write_text(json.dumps({"settings": {k: str(v) for k, v in vars(args).items()},
                                         "meta": meta, "rows": rows}, indent=1))
    return rows


if __name__ == "__main__":
    main()
