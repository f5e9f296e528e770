"""``srbench doctor``: what this installation runs with (versions, device, caches, native kernels), one line each.

Asking about a kernel builds and probes it, as a run's first use would; nothing else is written.
"""

from __future__ import annotations

import platform


def report() -> list[tuple[str, str]]:
    """(label, value) pairs, in display order."""
    import torch

    import sr_bench
    from sr_bench import cache
    from sr_bench.native import pixels, ssim_map

    device = f"cpu ({torch.get_num_threads()} threads)"
    if torch.cuda.is_available():
        device += f", cuda: {torch.cuda.get_device_name(0)}"
    rows = [("sr_bench", sr_bench.__version__), ("python", platform.python_version()), ("torch", torch.__version__),
            ("device", device), ("cache root", f"{cache.root()}  ({cache.RULE})")]
    for piece in (ssim_map, pixels):
        why = piece.unavailable()
        rows.append((f"native {piece.__name__.rsplit('.', 1)[-1]}", f"off: {why}" if why else "active"))
    return rows


def text() -> str:
    rows = report()
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)
