"""Benchmark of `gpudist.edt` against its peers: timing, peak memory, correctness, report.

Method (also in benchmarks/README.md), per case and runner:

1. The scipy float64 reference is computed per image (+inf on images with no background, gpudist's
   rule); that call doubles as scipy's warm-up.
2. The input is converted to the runner's natural form outside the timed region.
3. A warm-up call, untimed, gives the output checked against the reference: gpudist must match
   with rtol 1e-6 everywhere; a peer's max absolute/relative error is recorded on the images that
   have background (approximate peers are marked).
4. Timed calls (CUDA synchronised inside the timed region) repeat until `min_time` seconds or
   `max_repeats` calls; the median is reported. Then one more call, untimed, gives the peak memory:
   host RSS high-water mark reset through /proc/self/clear_refs (after malloc_trim, so that freed
   heap pages count again), or the CUDA allocators' peaks. The probe stays out of the timed calls:
   its malloc_trim would make every call fault its output's pages in afresh, which a loop calling
   a transform repeatedly (a data loader, a training step) does not pay.
5. Roofline: the device's memory bandwidth is measured once per run (a large copy, same thread
   count); each case's floor is `Case.min_bytes` at that bandwidth, and every gpudist result
   gets its time as a multiple of the floor (`x_floor`).
6. A call whose estimated time or memory exceeds the limits is skipped with the reason. Time is
   extrapolated from the runner's largest case so far that took over 50 ms (below that, fixed
   costs dominate), else from a pessimistic prior per runner.
"""

from __future__ import annotations

import ctypes
import gc
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

import gpudist

from .cases import Case
from .peers import Runner, discover, scipy_runner

RTOL = 1e-6


@dataclass(frozen=True)
class Settings:
    """Repetition and skip limits of one benchmark mode."""

    min_time: float  # keep timing until this many seconds are spent...
    max_repeats: int  # ...or this many timed calls were made
    call_limit: float  # skip a call estimated to take longer (seconds)
    memory_fraction: float = 0.7  # skip a call estimated to need more of the free memory


SETTINGS = {
    "smoke": Settings(min_time=0.0, max_repeats=2, call_limit=5.0),
    "quick": Settings(min_time=0.3, max_repeats=3, call_limit=8.0),
    "full": Settings(min_time=2.0, max_repeats=15, call_limit=120.0),
}


class _PeakMemory:
    """Peak memory of a call above the level before it: host RSS or CUDA allocations (bytes)."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.base = 0

    @staticmethod
    def _status_kib(field: str) -> int:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise OSError(f"{field} not in /proc/self/status")

    def start(self) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            pool = _cupy_pool()
            if pool is not None:
                pool.free_all_blocks()
            self.base = torch.cuda.memory_allocated() + (pool.total_bytes() if pool else 0)
        else:
            if _LIBC is not None:
                _LIBC.malloc_trim(0)  # return freed heap pages, else reusing them looks free
            try:
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")  # resets VmHWM to the current RSS
                self.base = self._status_kib("VmRSS")
            except OSError:
                self.base = -1

    def stop(self) -> int | None:
        if self.device == "cuda":
            pool = _cupy_pool()  # a pool keeps freed blocks, so its size is its peak
            pooled = pool.total_bytes() if pool is not None else 0
            return torch.cuda.max_memory_allocated() + pooled - self.base
        if self.base < 0:
            return None
        return max(0, self._status_kib("VmHWM") - self.base) * 1024


def _load_libc() -> Any:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim  # noqa: B018  (glibc only)
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _load_libc()


def _cupy_pool() -> Any:
    cupy = sys.modules.get("cupy")
    return cupy.get_default_memory_pool() if cupy is not None else None


def synchronizer(device: str) -> Callable[[], None]:
    """The function that waits for `device`'s queued work (a no-op on the CPU)."""
    return torch.cuda.synchronize if device == "cuda" else lambda: None


def copy_bandwidth(device: str, nbytes: int = 1 << 28) -> float:
    """Bytes per second a large copy moves on `device` (read + written, best of 5), with torch's
    threads: the machine's memory bandwidth as a transform can use it."""
    src = torch.ones(nbytes, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    sync = synchronizer(device)
    best = math.inf
    for _ in range(6):  # the first one faults dst in
        sync()
        t0 = time.perf_counter()
        dst.copy_(src)
        sync()
        best = min(best, time.perf_counter() - t0)
    return 2 * nbytes / best


def _free_bytes(device: str) -> int:
    if device == "cuda":
        return torch.cuda.mem_get_info()[0]
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 1 << 62


def _array(out: Any) -> np.ndarray:
    if isinstance(out, (list, tuple)):  # per-image outputs
        return np.stack([_array(o) for o in out])
    if isinstance(out, torch.Tensor):
        return out.detach().cpu().numpy().astype(np.float64)
    if hasattr(out, "get"):  # cupy
        out = out.get()
    return np.asarray(out, np.float64)


def to_numpy(out: Any, case: Case) -> np.ndarray:
    """A runner's output (tensor, numpy/cupy array, or a list of per-image ones) as float64."""
    return _array(out).reshape(case.shape)


def _has_background(mask: np.ndarray, case: Case) -> np.ndarray:
    """Per image: does it hold at least one zero?"""
    return ~mask.reshape(case.items, -1).all(axis=1)


def _check(out: np.ndarray, ref: np.ndarray, bg: np.ndarray, case: Case) -> dict[str, Any]:
    """Errors of `out` against the reference on the images with background (`matches`: within
    rtol), and whether the images without background are +inf (None when there are none)."""
    out_i, ref_i = out.reshape(case.items, -1), ref.reshape(case.items, -1)
    o, r = out_i[bg], ref_i[bg]
    err = np.abs(o - r)
    pos = r > 0
    return {
        "max_abs_err": float(err.max()) if err.size else None,
        "max_rel_err": float((err[pos] / r[pos]).max()) if pos.any() else None,
        "matches": bool(np.isclose(o, r, rtol=RTOL, atol=0.0).all()),
        "no_background_inf": bool(np.isinf(out_i[~bg]).all()) if (~bg).any() else None,
    }


def _correct(res: dict[str, Any]) -> bool | None:
    """gpudist's verdict: matches scipy, and +inf where there is no background (None: unchecked)."""
    if "matches" not in res:
        return None
    return res["matches"] and res["no_background_inf"] is not False


def reference(mask: np.ndarray, case: Case, scipy: Runner | None = None
              ) -> tuple[np.ndarray, Any]:
    """scipy's float64 EDT per image with +inf on images without background (gpudist's rule),
    and scipy's raw output."""
    scipy = scipy or scipy_runner()
    raw = scipy.run(scipy.prepare(mask, case), case)
    ref = to_numpy(raw, case)
    ref.reshape(case.items, -1)[~_has_background(mask, case)] = np.inf
    return ref, raw


class Bench:
    """Runs cases through runners and collects one result dict per (case, runner)."""

    def __init__(self, runners: Sequence[Runner], settings: Settings,
                 progress: Callable[[str], None]) -> None:
        self.runners = list(runners)
        self.settings = settings
        self.progress = progress
        self.rates: dict[str, tuple[float, float]] = {}  # runner -> (work, seconds per work)
        self.reference_runner = scipy_runner()
        self.bandwidth = {device: copy_bandwidth(device)
                          for device in sorted({r.device for r in self.runners if r.gpudist})}

    def _memory_reason(self, runner: Runner, case: Case) -> str | None:
        pixels = math.prod(case.spatial) if runner.per_image else case.voxels
        need = runner.bytes_per_voxel * pixels + case.voxels * 4
        free = _free_bytes(runner.device)
        if need > self.settings.memory_fraction * free:
            return f"needs ~{need / 2**30:.1f} GiB, {free / 2**30:.1f} GiB free"
        return None

    def _time_reason(self, runner: Runner, case: Case) -> str | None:
        rate = self.rates.get(runner.name, (0.0, runner.prior_s_per_work))[1]
        est = rate * runner.work(case)
        if est > self.settings.call_limit:
            return f"estimated {est:.0f} s per call > {self.settings.call_limit:.0f} s limit"
        return None

    def _time(self, runner: Runner, x: Any, case: Case) -> tuple[list[float], int | None]:
        """Seconds of each timed call, then the peak memory of one more call."""
        sync, mem = synchronizer(runner.device), _PeakMemory(runner.device)
        times: list[float] = []
        while not times or (sum(times) < self.settings.min_time
                            and len(times) < self.settings.max_repeats):
            t0 = time.perf_counter()
            out = runner.run(x, case)
            sync()
            times.append(time.perf_counter() - t0)
            del out
        mem.start()
        out = runner.run(x, case)
        sync()
        peak = mem.stop()
        del out
        return times, peak

    def _run_one(self, runner: Runner, case: Case, mask: np.ndarray, ref: np.ndarray | None,
                 ref_out: Any, bg: np.ndarray) -> dict[str, Any]:
        res: dict[str, Any] = {"case": case.name, "runner": runner.name, "status": "ok"}
        reason = runner.supports(case)
        if reason:
            return res | {"status": "unsupported", "reason": reason}
        reason = self._memory_reason(runner, case) or self._time_reason(runner, case)
        if reason:
            return res | {"status": "skipped", "reason": reason}
        try:
            x = runner.prepare(mask, case)
            if runner.name == self.reference_runner.name and ref_out is not None:
                out = ref_out  # the reference call was this runner's warm-up
            else:
                t0 = time.perf_counter()
                out = runner.run(x, case)
                synchronizer(runner.device)()
                res["warmup_s"] = time.perf_counter() - t0
            if ref is not None:
                res.update(_check(to_numpy(out, case), ref, bg, case))
            del out
            times, peak = self._time(runner, x, case)
        except Exception as exc:  # a peer failing must not stop the benchmark
            return res | {"status": "error", "reason": f"{type(exc).__name__}: {exc}"[:300]}
        finally:
            _release(runner.device)
        med = statistics.median(times)
        work = runner.work(case)
        if med >= 0.05 and work >= self.rates.get(runner.name, (0.0, 0.0))[0]:  # not overhead
            self.rates[runner.name] = (work, med / work)
        return res | {"median_s": med, "min_s": min(times), "times_s": times,
                      "repeats": len(times), "peak_mem_bytes": peak,
                      "mem_kind": "cuda" if runner.device == "cuda" else "rss"}

    def run_case(self, case: Case, index: str) -> list[dict[str, Any]]:
        """All runners on one case; peers get the speed-up of the fastest gpudist on their
        device."""
        t_gen = time.perf_counter()
        mask = case.mask()
        self.progress(f"{index} {case.name} {'x'.join(map(str, case.shape))} "
                      f"(mask {time.perf_counter() - t_gen:.1f} s)")
        bg = _has_background(mask, case)
        ref = ref_out = None
        ref_reason = self._memory_reason(self.reference_runner, case)
        if ref_reason is None:
            ref, ref_out = reference(mask, case, self.reference_runner)
        else:
            self.progress(f"    reference skipped: {ref_reason}; correctness unchecked")
        results = []
        for runner in self.runners:
            res = self._run_one(runner, case, mask, ref, ref_out, bg)
            results.append(res)
            self.progress("    " + _progress_line(runner, res))
        del ref_out
        best: dict[str, float] = {}
        for runner, res in zip(self.runners, results):
            if runner.gpudist and res["status"] == "ok":
                best[runner.device] = min(best.get(runner.device, np.inf), res["median_s"])
        for runner, res in zip(self.runners, results):
            if not runner.gpudist and res["status"] == "ok" and runner.device in best:
                res["speedup"] = res["median_s"] / best[runner.device]
            if runner.gpudist and res["status"] == "ok":
                floor = case.min_bytes / self.bandwidth[runner.device]
                res |= {"floor_s": floor, "x_floor": res["median_s"] / floor}
        return results


def _release(device: str) -> None:
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
        pool = _cupy_pool()
        if pool is not None:
            pool.free_all_blocks()


def _progress_line(runner: Runner, res: dict[str, Any]) -> str:
    if res["status"] != "ok":
        return f"{runner.name}: {res['status']} ({res['reason']})"
    err = "" if res.get("max_abs_err") is None else f", max err {res['max_abs_err']:.3g}"
    return (f"{runner.name}: {format_seconds(res['median_s'])} median of {res['repeats']}"
            f"{err}")


def format_seconds(s: float) -> str:
    """Seconds as a short human string: 12.3 ms, 1.23 s."""
    if s >= 10:
        return f"{s:.1f} s"
    if s >= 1:
        return f"{s:.2f} s"
    ms = s * 1e3
    return f"{ms:.0f} ms" if ms >= 100 else f"{ms:.1f} ms" if ms >= 10 else f"{ms:.2f} ms"


def _git(*args: str) -> str | None:
    root = Path(gpudist.__file__).resolve().parent.parent
    try:
        proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                              timeout=10, env=os.environ | {"GIT_OPTIONAL_LOCKS": "0"})
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def metadata(threads: int, mode: str) -> dict[str, Any]:
    """Where and with what the benchmark ran."""
    import numba
    import scipy

    commit = _git("rev-parse", "HEAD")
    meta: dict[str, Any] = {
        "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "mode": mode, "argv": sys.argv, "git_commit": commit,
        "git_dirty": None if commit is None else bool(_git("status", "--porcelain",
                                                          "--untracked-files=no")),
        "gpudist": gpudist.__version__, "python": platform.python_version(),
        "torch": torch.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
        "numba": numba.__version__, "platform": platform.platform(), "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(), "threads": threads,
        "backends": gpudist.available_backends(), "gpu": None, "cuda": None,
    }
    if torch.cuda.is_available():
        meta |= {"gpu": torch.cuda.get_device_name(0), "cuda": torch.version.cuda}
    return meta


def set_threads(threads: int) -> int:
    """One thread count for torch (gpudist's CPU extension, torch peers) and numba; returns the
    previous torch count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        import numba
    except ImportError:
        return previous
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    return previous


def run(cases: Sequence[Case], *, threads: int, settings: Settings, mode: str,
        progress: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """Benchmark `cases`; returns the JSON-ready report."""
    t0 = time.perf_counter()
    previous = set_threads(threads)
    runners, missing = discover(threads)
    progress(f"runners: {', '.join(r.name for r in runners)}"
             + "".join(f"; {name}: {why}" for name, why in missing.items()))
    bench = Bench(runners, settings, progress)
    gc.freeze()  # the objects of the imported modules: later collections skip them (0.3 s -> ms)
    try:
        results = [res for i, case in enumerate(cases)
                   for res in bench.run_case(case, f"[{i + 1}/{len(cases)}]")]
    finally:
        gc.unfreeze()
        set_threads(previous)
    gpudist_names = {r.name for r in runners if r.gpudist}
    checked = [r for r in results if r["runner"] in gpudist_names and r["status"] != "unsupported"]
    return {
        "meta": metadata(threads, mode),
        "settings": asdict(settings) | {"rtol": RTOL},
        "runners": [{"name": r.name, "device": r.device, "version": r.version,
                     "gpudist": r.gpudist, "exact": r.exact} for r in runners],
        "missing_peers": missing,
        "bandwidth_bytes_per_s": bench.bandwidth,
        "cases": [c.describe() for c in cases],
        "results": results,
        "gpudist_correct": all(r["status"] == "ok" and _correct(r) is not False for r in checked),
        "wall_s": time.perf_counter() - t0,
    }


def _mismatch(res: dict[str, Any], runner: dict[str, Any]) -> bool:
    """gpudist not matching scipy, or an exact peer not matching it on images with background."""
    if runner["gpudist"]:
        return _correct(res) is False
    return runner["exact"] and res.get("matches") is False


def _cell(res: dict[str, Any], runner: dict[str, Any]) -> str:
    if res["status"] != "ok":
        return {"unsupported": "n/a", "skipped": "skip", "error": "error"}[res["status"]]
    text = format_seconds(res["median_s"])
    if "speedup" in res:
        x = res["speedup"]
        text += f" x{x:.0f}" if x >= 100 else f" x{x:.1f}"
    return ("" if runner["exact"] else "~") + text + (" !" if _mismatch(res, runner) else "")


def _mib(n: int) -> str:
    mib = n / 2**20
    return f"{mib:.0f}" if mib >= 10 else f"{mib:.1f}"


def _grid(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def fmt(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(row, widths)))

    return "\n".join([fmt(header), "  ".join("-" * w for w in widths), *map(fmt, rows)])


def format_report(report: dict[str, Any]) -> str:
    """The time table, the peak-memory table and notes, as printed by the CLI."""
    runners = report["runners"]
    by_key = {(r["case"], r["runner"]): r for r in report["results"]}
    header = ["case"] + [r["name"] for r in runners]
    times, mems, notes = [], [], []
    for case in report["cases"]:
        row, mrow = [case["name"]], [case["name"]]
        for runner in runners:
            res = by_key[(case["name"], runner["name"])]
            row.append(_cell(res, runner))
            peak = res.get("peak_mem_bytes")
            mrow.append("-" if peak is None else _mib(peak))
            if res["status"] in ("skipped", "error"):
                notes.append(f"{case['name']} / {runner['name']}: {res['status']}: {res['reason']}")
            elif res["status"] == "ok" and res.get("max_abs_err") is not None and (
                    not runner["exact"] or _mismatch(res, runner)):
                notes.append(f"{case['name']} / {runner['name']}: max error vs scipy "
                             f"{res['max_abs_err']:.3g} abs, {res['max_rel_err']:.3g} rel")
            if res.get("no_background_inf") is False and not runner["gpudist"]:
                notes.append(f"{case['name']} / {runner['name']}: finite values on images "
                             "without background (gpudist gives +inf)")
        times.append(row)
        mems.append(mrow)
    meta = report["meta"]
    lines = [
        f"gpudist {meta['gpudist']} @ {(meta['git_commit'] or '?')[:10]}"
        f"{' (dirty)' if meta['git_dirty'] else ''}, {meta['mode']} mode, {meta['threads']} "
        f"threads, CPU {meta['cpu']}" + (f", GPU {meta['gpu']}" if meta["gpu"] else ""),
        "",
        "Median time per call; peers: x = peer time / fastest gpudist time on the same device",
        "(~ approximate method, ! differs from scipy beyond rtol 1e-6, n/a unsupported, "
        "skip: see notes)",
        _grid(header, times),
        "",
        "Peak memory above the input, MiB (host RSS for CPU runners, CUDA allocators for GPU)",
        _grid(header, mems),
        "",
        *_roofline(report, by_key),
    ]
    missing = report["missing_peers"]
    if missing:
        lines += ["", "Peers not run: " + "; ".join(f"{k} {v}" for k, v in missing.items())]
    if notes:
        lines += ["", "Notes:", *("  " + n for n in notes)]
    verdict = "all match scipy" if report["gpudist_correct"] else "MISMATCH OR ERROR"
    lines += ["", f"gpudist correctness (rtol {RTOL:g} vs scipy float64): {verdict}; "
              f"wall time {report['wall_s']:.1f} s"]
    return "\n".join(lines)


def _roofline(report: dict[str, Any], by_key: dict[tuple[str, str], dict[str, Any]]
              ) -> list[str]:
    """The roofline table: each case's least bytes moved, the floor time that takes at the
    measured bandwidth, and each gpudist runner's time as a multiple of it."""
    ours = [r for r in report["runners"] if r["gpudist"]]
    bandwidth = report["bandwidth_bytes_per_s"]
    rows = []
    for case in report["cases"]:
        row = [case["name"], f"{case['min_bytes'] / case['voxels']:.0f}"]
        row += [format_seconds(case["min_bytes"] / bandwidth[d]) for d in sorted(bandwidth)]
        for runner in ours:
            res = by_key[(case["name"], runner["name"])]
            x = res.get("x_floor")
            row.append("-" if x is None else f"x{x:.0f}" if x >= 100 else f"x{x:.1f}")
        rows.append(row)
    header = (["case", "B/voxel"] + [f"floor {d}" for d in sorted(bandwidth)]
              + [r["name"] for r in ours])
    speeds = ", ".join(f"{d} {b / 1e9:.1f} GB/s" for d, b in sorted(bandwidth.items()))
    return ["Memory floor: the least bytes moved (1-byte mask in, float32 out, one float32 round",
            f"trip per further axis) at the measured copy bandwidth ({speeds});",
            "gpudist's time as a multiple of it", _grid(header, rows)]


def write_plot(report: dict[str, Any], path: str | Path) -> None:
    """PNG of median time vs voxels per runner, log-log, one panel per case series."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, list[dict[str, Any]]] = {}
    for case in report["cases"]:
        if case["series"]:
            series.setdefault(case["series"], []).append(case)
    if not series:
        series = {"all cases": report["cases"]}
    by_key = {(r["case"], r["runner"]): r for r in report["results"]}
    fig, axes = plt.subplots(1, len(series), figsize=(6 * len(series), 4.5), squeeze=False)
    for ax, (title, cases) in zip(axes[0], series.items()):
        cases = sorted(cases, key=lambda c: c["voxels"])
        for runner in report["runners"]:
            pts = [(c["voxels"], by_key[(c["name"], runner["name"])]["median_s"]) for c in cases
                   if by_key[(c["name"], runner["name"])]["status"] == "ok"]
            if pts:
                label = runner["name"] + ("" if runner["exact"] else " (approx.)")
                ax.plot(*zip(*pts), marker="o", label=label,
                        linewidth=2.5 if runner["gpudist"] else 1.2)
        ax.set(xscale="log", yscale="log", xlabel="voxels", ylabel="median time per call (s)",
               title=title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    meta = report["meta"]
    fig.suptitle(f"gpudist.edt, {meta['threads']} threads, {meta['cpu']}"
                 + (f", {meta['gpu']}" if meta["gpu"] else ""), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
