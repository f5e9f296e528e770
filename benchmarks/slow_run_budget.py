"""A slow model under a memory budget, killed mid-run: what is on disk, and how much memory did it take?

Runs `srbench run` in a subprocess (default: untrained ASDN on Set5 at x2.5 with --tile 128 --max-memory 4GB),
samples the process's resident memory from /proc twice a second, sends SIGKILL after --kill-after seconds (or lets
it finish), then reads the run folder back: the images with rows on disk, the rows' tiles, peak_memory and seconds.
The peak RSS printed is the kernel's high-water mark (VmHWM) read just before the kill, so no sampling gap hides a
peak; the budget applies to the forward passes the guard watches (docs/tiling.md).

    python benchmarks/slow_run_budget.py [--models asdn] [--datasets set5] [--scales 2.5] [--tile 128]
        [--max-memory 4GB] [--kill-after 120] [--data-root ../shared/datasets]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from sr_bench.run.memory import parse_size, size_text


def _status(pid: int) -> dict[str, int]:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="asdn")
    ap.add_argument("--datasets", default="set5")
    ap.add_argument("--scales", default="2.5")
    ap.add_argument("--tile", default="128")
    ap.add_argument("--max-memory", default="4GB")
    ap.add_argument("--kill-after", type=float, default=120.0, help="seconds; 0: let the run finish")
    ap.add_argument("--data-root", default=os.environ.get("SRBENCH_DATA", "../shared/datasets"))
    args = ap.parse_args()
    budget = parse_size(args.max_memory)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "sr_bench.cli", "run", "--models", args.models, "--datasets", args.datasets,
               "--scales", args.scales, "--allow-untrained", "--device", "cpu", "--metrics", "psnr,ssim",
               "--data-root", args.data_root, "--out", str(out), "--no-progress", "--max-memory", args.max_memory]
        if args.tile:
            cmd += ["--tile", args.tile]
        print(" ".join(cmd[1:]))
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        peak_sampled, hwm = 0, 0
        killed = False
        while proc.poll() is None:
            st = _status(proc.pid)
            peak_sampled = max(peak_sampled, st.get("VmRSS", 0))
            hwm = max(hwm, st.get("VmHWM", 0))
            if args.kill_after and time.perf_counter() - start > args.kill_after:
                hwm = max(hwm, _status(proc.pid).get("VmHWM", 0))
                proc.send_signal(signal.SIGKILL)
                killed = True
                break
            time.sleep(0.5)
        log = proc.communicate()[0]
        wall = time.perf_counter() - start
        print(f"{'killed (SIGKILL)' if killed else f'exited {proc.returncode}'} after {wall:.0f} s")
        print(f"peak RSS: {size_text(hwm)} (VmHWM), sampled max {size_text(peak_sampled)}; budget "
              f"{size_text(budget)}: {'under' if hwm <= budget else 'OVER'} it")
        rows_dir = out / "rows"
        if rows_dir.is_dir() and any(rows_dir.glob("*.parquet")):
            from sr_bench.store import load_rows

            rows = load_rows(out)
            done = rows[rows["error"].fillna("") == ""]
            print(f"on disk: {len(rows)} rows, {done['image'].nunique()} image(s) measured: "
                  f"{', '.join(sorted(done['image'].unique()))}")
            for _, r in rows.iterrows():
                peak = None if pd.isna(r["peak_memory"]) else int(r["peak_memory"])
                print(f"  {r['image']} x{r['scale_text']}: {r['seconds']:.1f} s, tiles {r['tile']}, peak_memory "
                      f"{size_text(peak)}{', error: ' + r['error'] if r['error'] else ''}")
        else:
            print("on disk: no rows (nothing flushed before the kill)")
        tail = [line for line in log.splitlines() if line.strip()][-5:]
        print("last lines of the run's output:\n  " + "\n  ".join(tail))


if __name__ == "__main__":
    main()
