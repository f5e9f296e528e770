"""Where a number came from: package versions and the device, stored on every result row."""

from __future__ import annotations

import functools
import json
import platform
from importlib.metadata import PackageNotFoundError, version

import torch

import sr_bench
from sr_bench.errors import UserError

_PACKAGES = ("torch", "numpy", "pillow", "scikit-image", "pandas", "pyarrow", "lpips")
# the bridges' libraries decide numbers when installed (spandrel builds the network, pyiqa computes the metric)
_OPTIONAL = ("spandrel", "pyiqa")


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "sr_bench": sr_bench.__version__}
    for name in _PACKAGES + _OPTIONAL:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            if name in _PACKAGES:
                out[name] = "absent"
    return out


def package_versions_json() -> str:
    return json.dumps(package_versions(), sort_keys=True)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{platform.machine()}:{torch.get_num_threads()}threads"


def resolve_device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {spec}: CUDA is not available on this machine; use --device cpu")
    try:
        return torch.device(spec)
    except RuntimeError:
        raise UserError(f"bad --device {spec!r}; use auto, cpu, cuda or cuda:N") from None
