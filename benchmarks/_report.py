"""What every benchmark shares: where the data is and how results are written."""

import json
import sys
from pathlib import Path

from catdog_sk._testing import PEAK_RSS_CODE  # noqa: F401  (the benchmarks import it from here)

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data" / "catsdogs"
BENCH_DIR = HERE.parent / "artifacts" / "bench"


def write_report(report, json_out):
    """Write the report as JSON to ``json_out`` and to stdout (after the printed table)."""
    Path(json_out).parent.mkdir(parents=True, exist_ok=True)
    Path(json_out).write_text(json.dumps(report, indent=2))
    json.dump(report, sys.stdout, indent=2)
    print()
