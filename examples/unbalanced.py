"""Does the boundary loss help on a highly unbalanced task? Kervadec et al.'s comparison (MIDL
2019, Table 1) on synthetic data: GDL alone vs GDL + boundary loss with the paper's "rebalance"
schedule vs GDL + boundary loss with the reference code's StealWeight schedule.

    python examples/unbalanced.py                 # 2-D, 3 seeds (make example)
    python examples/unbalanced.py --quick         # small and short: a smoke test
    python examples/unbalanced.py --3d --out runs # 3-D variant; runs/results.json, runs/curves.png

Task (`synthetic.py`): small lesions (about 2% of the pixels) on textured backgrounds with
look-alike distractors. Model: a small UNet (`unet.py`), trained with Adam (lr 1e-3, betas
(0.9, 0.99)) on batches of 8 with random flips and transposes applied on the device; the losses
compute their distance maps from each augmented target, on the device, in the step. GDL uses
idc=[0, 1] and the boundary loss idc=[1], as the paper's binary tasks.

Schedules: the paper moves alpha by 0.01 per epoch over 100 epochs; runs here are shorter, so the
step defaults to 0.99 / (epochs - 1), which takes alpha from 1 to its floor 0.01 at the last
epoch as the paper's 100 epochs do (`--step-size 0.01` uses the paper's step as is).

Each epoch ends with a validation pass: mean per-image DSC and HD95 (pixels; `gpudist.metrics`,
an empty prediction scores the image diagonal) over a fixed validation set. The table printed
last has the final epoch's values, mean +- std over the seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from torch import nn

import gpudist
from gpudist.losses import BoundaryLoss, GeneralizedDiceLoss, RebalancedLoss
from gpudist.metrics import hausdorff_distance

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic import foreground_fraction, make_dataset  # noqa: E402
from unet import UNet  # noqa: E402

METHODS = ("gdl", "gdl+bl rebalance", "gdl+bl steal")


@dataclass(frozen=True)
class Config:
    ndim: int = 2
    size: int = 64
    n_train: int = 320
    n_val: int = 100
    epochs: int = 20
    batch: int = 8
    seeds: int = 3
    base: int = 16
    depth: int = 3
    lr: float = 1e-3


PRESETS = {  # (ndim, quick) -> Config
    (2, False): Config(),
    (2, True): Config(size=48, n_train=96, n_val=32, epochs=5, base=8, depth=2),
    (3, False): Config(ndim=3, size=32, n_train=96, n_val=24, epochs=15, batch=4, base=8),
    (3, True): Config(ndim=3, size=16, n_train=16, n_val=8, epochs=3, batch=4, base=4, depth=2),
}


def make_loss(method: str, step_size: float) -> nn.Module:
    """The training loss of `method`; it takes logits (B, 2, *spatial) and labels (B, *spatial)."""
    gdl = GeneralizedDiceLoss(idc=[0, 1], from_logits=True)
    if method == "gdl":
        return gdl
    strategy = {"gdl+bl rebalance": "rebalance", "gdl+bl steal": "steal"}[method]
    return RebalancedLoss(gdl, BoundaryLoss(idc=[1], from_logits=True), strategy,
                          step_size=step_size)


def augment(x: torch.Tensor, y: torch.Tensor, gen: torch.Generator
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random flips and axis transposition for a batch of images (B, 1, *spatial) and
    labels (B, *spatial) (one draw per batch: cheap on any device)."""
    ndim = y.dim() - 1
    flips = [d for d in range(ndim) if torch.rand((), generator=gen) < 0.5]
    perm = torch.randperm(ndim, generator=gen).tolist()
    x = x.flip([2 + d for d in flips]).permute(0, 1, *[2 + p for p in perm])
    y = y.flip([1 + d for d in flips]).permute(0, *[1 + p for p in perm])
    return x.contiguous(), y.contiguous()


@torch.no_grad()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch: int
             ) -> tuple[float, float]:
    """Mean per-image DSC and HD95 (pixels) of the foreground class over a validation set."""
    model.eval()
    pred = torch.cat([model(images[i:i + batch]).argmax(1) for i in range(0, len(images), batch)])
    p, g = pred == 1, labels == 1
    dims = tuple(range(1, p.dim()))
    dsc = 2 * (p & g).sum(dims) / (p.sum(dims) + g.sum(dims)).clamp(min=1)
    hd95 = hausdorff_distance(p[:, None], g[:, None], percentile=95, empty_distance="diagonal")
    return dsc.mean().item(), hd95.mean().item()


def train_one(method: str, seed: int, data: dict[str, torch.Tensor], cfg: Config,
              step_size: float, device: torch.device) -> dict:
    """Trains one model; returns its per-epoch curves, final values and timings."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = UNet(1, 2, base=cfg.base, depth=cfg.depth, ndim=cfg.ndim).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.99))
    loss_fn = make_loss(method, step_size)
    x_tr, y_tr = data["x_train"], data["y_train"]
    curves: dict[str, list[float]] = {"dsc": [], "hd95": [], "train_loss": [], "epoch_seconds": [],
                                      "boundary_weight": []}
    for _ in range(cfg.epochs):
        model.train()
        curves["boundary_weight"].append(getattr(loss_fn, "weights", (1.0, 0.0))[1])
        t0 = time.perf_counter()
        order = torch.randperm(len(x_tr), generator=gen)
        losses = []
        for i in range(0, len(order) - cfg.batch + 1, cfg.batch):
            idx = order[i:i + cfg.batch]
            x, y = augment(x_tr[idx], y_tr[idx], gen)
            loss = loss_fn(model(x.to(device)), y.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.detach())
        curves["train_loss"].append(torch.stack(losses).mean().item())
        if device.type == "cuda":
            torch.cuda.synchronize()
        curves["epoch_seconds"].append(time.perf_counter() - t0)
        dsc, hd95 = evaluate(model, data["x_val"], data["y_val"], 4 * cfg.batch)
        curves["dsc"].append(dsc)
        curves["hd95"].append(hd95)
        if isinstance(loss_fn, RebalancedLoss):
            loss_fn.step()
    return {"final_dsc": curves["dsc"][-1], "final_hd95": curves["hd95"][-1],
            "seconds_per_epoch": statistics.mean(curves["epoch_seconds"]), **curves}


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summarize(results: dict[str, dict[int, dict]]) -> dict[str, dict[str, float]]:
    """Per method: mean and sample std over seeds of the final DSC and HD95, seconds per epoch."""
    out = {}
    for method, runs in results.items():
        dsc = mean_std([r["final_dsc"] for r in runs.values()])
        hd = mean_std([r["final_hd95"] for r in runs.values()])
        out[method] = {"dsc_mean": dsc[0], "dsc_std": dsc[1], "hd95_mean": hd[0],
                       "hd95_std": hd[1], "seconds_per_epoch": statistics.mean(
                           r["seconds_per_epoch"] for r in runs.values())}
    return out


def table(summary: dict[str, dict[str, float]], n_seeds: int) -> str:
    lines = [f"{'method':<18}  {'DSC':^16}  {'HD95 (px)':^16}  {'s/epoch':>7}   ({n_seeds} seeds, "
             "final epoch, mean +- std)", "-" * 63]
    for method, s in summary.items():
        lines.append(f"{method:<18}  {s['dsc_mean']:>7.3f} +- {s['dsc_std']:.3f}  "
                     f"{s['hd95_mean']:>7.2f} +- {s['hd95_std']:<5.2f}  "
                     f"{s['seconds_per_epoch']:>7.2f}")
    return "\n".join(lines)


def plot(results: dict[str, dict[int, dict]], path: Path) -> None:
    """DSC and HD95 against epoch: one line (the seeds' mean) per method, the seeds' range shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for method, runs in results.items():
        for ax, key in zip(axes, ("dsc", "hd95")):
            curves = torch.tensor([r[key] for r in runs.values()])
            epochs = range(1, curves.shape[1] + 1)
            line, = ax.plot(epochs, curves.mean(0), label=method)
            ax.fill_between(epochs, curves.min(0).values, curves.max(0).values,
                            color=line.get_color(), alpha=0.2)
    for ax, name in zip(axes, ("validation DSC", "validation HD95 (pixels)")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[1].set_yscale("log")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small images, few epochs (smoke test)")
    ap.add_argument("--3d", dest="three_d", action="store_true", help="3-D volumes and UNet")
    ap.add_argument("--seeds", type=int, help="number of seeds (0, 1, ...); default 3")
    ap.add_argument("--epochs", type=int, help="epochs per run (default: the preset's)")
    ap.add_argument("--step-size", type=float,
                    help="schedule step per epoch (default 0.99 / (epochs - 1))")
    ap.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    ap.add_argument("--device", help="default: cuda when available, else cpu")
    ap.add_argument("--out", type=Path, help="write OUT/results.json and OUT/curves.png")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    cfg = PRESETS[(3 if args.three_d else 2, args.quick)]
    cfg = replace(cfg, **{k: v for k, v in (("seeds", args.seeds), ("epochs", args.epochs))
                          if v is not None})
    if cfg.epochs < 2:
        raise SystemExit("--epochs must be at least 2")
    step_size = args.step_size if args.step_size is not None else 0.99 / (cfg.epochs - 1)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))

    x_tr, y_tr = make_dataset(cfg.n_train, cfg.size, cfg.ndim, seed=1000)
    x_val, y_val = make_dataset(cfg.n_val, cfg.size, cfg.ndim, seed=2000)
    data = {"x_train": x_tr.to(device), "y_train": y_tr.to(device),
            "x_val": x_val.to(device), "y_val": y_val.to(device)}
    print(f"{cfg.ndim}-D task: {cfg.n_train} training / {cfg.n_val} validation images of "
          f"{cfg.size}^{cfg.ndim}, foreground {100 * foreground_fraction(y_tr):.2f}% of the "
          f"pixels; device {device}, {torch.get_num_threads()} threads; schedule step "
          f"{step_size:.4f}/epoch", flush=True)

    t_start = time.perf_counter()
    results: dict[str, dict[int, dict]] = {m: {} for m in args.methods}
    for seed in range(cfg.seeds):
        for method in args.methods:
            run = train_one(method, seed, data, cfg, step_size, device)
            results[method][seed] = run
            print(f"seed {seed}  {method:<18} DSC {run['final_dsc']:.3f}  HD95 "
                  f"{run['final_hd95']:6.2f}  ({run['seconds_per_epoch']:.2f} s/epoch)",
                  flush=True)
    summary = summarize(results)
    report = {
        "config": {**asdict(cfg), "step_size": step_size, "device": str(device),
                   "methods": args.methods},
        "meta": {"argv": sys.argv, "torch": torch.__version__, "gpudist": gpudist.__version__,
                 "threads": torch.get_num_threads(), "machine": platform.processor() or
                 platform.machine(), "load_average": os.getloadavg(),
                 "wall_s": time.perf_counter() - t_start},
        "summary": summary,
        "runs": results,
    }
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(report, indent=1))
        plot(results, args.out / "curves.png")
    print()
    print(table(summary, cfg.seeds))
    return report


if __name__ == "__main__":
    main()
