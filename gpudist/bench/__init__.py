"""The benchmark tool behind `gpudist bench`: `gpudist.edt` against its peers.

- `cases`: seeded mask generators and the case lists (`CASE_SETS`: "smoke", "quick", "full");
- `peers`: the runners (gpudist's backends, scipy, edt, CuPy, MONAI, torch-distmap, kornia);
- `runner`: timing, peak memory, correctness against scipy, the report, its table and plot.

The scripts of `benchmarks/` reuse these names.
"""

from .cases import CASE_SETS, Case
from .peers import Runner, discover
from .runner import (
    RTOL,
    SETTINGS,
    Settings,
    format_report,
    format_seconds,
    reference,
    run,
    set_threads,
    synchronizer,
    to_numpy,
    write_plot,
)

__all__ = ["CASE_SETS", "RTOL", "SETTINGS", "Case", "Runner", "Settings", "discover",
           "format_report", "format_seconds", "reference", "run", "set_threads", "synchronizer",
           "to_numpy", "write_plot"]
