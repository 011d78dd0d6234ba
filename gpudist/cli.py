"""Command line: `gpudist bench` (also `python -m gpudist.cli bench`).

    gpudist bench --quick                      # a few cases, under two minutes on two cores
    gpudist bench --json out.json --plot out.png --threads 8
    gpudist bench --cases 'blobs3d-*,noise*'   # a subset (shell-style patterns on case names)
    gpudist bench --list                       # the cases of the mode, without running them
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib.util
import json
import sys
from collections.abc import Sequence

import torch

from . import bench


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gpudist", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    command = sub.add_parser(
        "bench", help="time gpudist.edt against scipy, edt and other installed peers",
        description="Time gpudist.edt against scipy, edt, CuPy, torch-distmap, MONAI and kornia "
                    "(whichever are installed), after checking every result against scipy.")
    mode = command.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true",
                      help="a handful of cases (the default of `make bench`); else the full set")
    mode.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)  # tiny, for tests
    command.add_argument("--cases", metavar="PATTERNS",
                         help="comma-separated shell patterns selecting cases by name")
    command.add_argument("--list", action="store_true", help="list the selected cases and exit")
    command.add_argument("--json", metavar="PATH",
                         help="write the full report (with metadata) here")
    command.add_argument("--plot", metavar="PATH",
                         help="write a PNG of time vs size per runner (needs matplotlib)")
    command.add_argument("--threads", type=int, default=torch.get_num_threads(),
                         help="CPU threads for gpudist, torch, numba and edt "
                              "(default: %(default)s)")
    command.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return parser


def _run_bench(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    cases = bench.CASE_SETS[mode]()
    if args.cases:
        patterns = [p.strip() for p in args.cases.split(",") if p.strip()]
        cases = [c for c in cases if any(fnmatch.fnmatchcase(c.name, p) for p in patterns)]
        if not cases:
            parser.error(f"--cases {args.cases!r} selects none of the {mode} cases "
                         f"(see `gpudist bench --list{' --quick' if args.quick else ''}`)")
    if args.list:
        for c in cases:
            print(f"{c.name:24} {'x'.join(map(str, c.shape)):20} ndim={c.ndim} {c.kind}"
                  + "".join(f" {k}={v}" for k, v in c.params.items())
                  + (" inverted" if c.invert else "")
                  + (f" classes={c.classes}" if c.classes else "")
                  + (f" spacing={c.spacing}" if c.spacing else ""))
        return 0
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        parser.error("--plot needs matplotlib: pip install matplotlib (or drop --plot)")
    progress = (lambda line: None) if args.quiet else (
        lambda line: print(line, file=sys.stderr, flush=True))
    report = bench.run(cases, threads=args.threads, settings=bench.SETTINGS[mode], mode=mode,
                        progress=progress)
    print(bench.format_report(report))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
        print(f"report written to {args.json}")
    if args.plot:
        bench.write_plot(report, args.plot)
        print(f"plot written to {args.plot}")
    return 0 if report["gpudist_correct"] else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `gpudist` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "bench":
        return _run_bench(args, parser)
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
