"""Metrics from pyiqa (IQA-PyTorch, optional extra ``sr_bench[iqa]``): ``--metrics pyiqa:ms_ssim`` adds the column
``pyiqa_ms_ssim``. Column names, direction and range, the view, options, provenance and weights: docs/pyiqa.md."""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import inspect
import io
import math
import os
import pkgutil
import re
import runpy
from functools import lru_cache
from urllib.parse import urlparse

import torch

from sr_bench.errors import UserError, closest, unknown
from sr_bench.metrics.base import Metric, MetricInfo, MetricUnavailable

PREFIX = "pyiqa:"  # how a user names a pyiqa metric
COLUMN_PREFIX = "pyiqa_"  # how its row column starts
INSTALL_HINT = "pip install 'sr_bench[iqa]' (or pip install pyiqa)"
NOT_INSTALLED = f"pyiqa metrics need pyiqa, which is not installed; {INSTALL_HINT}"


def column_name(pyiqa_name: str) -> str:
    return COLUMN_PREFIX + pyiqa_name.lower().replace("+", "_plus").replace("-", "_")


def canonical(name: str) -> str:
    """The row column of a metric name: ``pyiqa:NAME`` -> ``pyiqa_...``; any other name as given."""
    return column_name(name.removeprefix(PREFIX)) if name.startswith(PREFIX) else name


@lru_cache(maxsize=1)
def _configs() -> dict:
    """pyiqa's ``DEFAULT_CONFIGS`` (metric name -> options, mode, direction, range), loaded from its file alone:
    importing pyiqa pulls transformers and takes seconds, which tables of a finished run need not pay."""
    spec = importlib.util.find_spec("pyiqa")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(NOT_INSTALLED)
    for location in spec.submodule_search_locations:
        path = os.path.join(location, "default_model_configs.py")
        if os.path.isfile(path):
            return dict(runpy.run_path(path)["DEFAULT_CONFIGS"])
    raise UserError(f"the installed pyiqa has no default_model_configs.py; reinstall it: {INSTALL_HINT}")


@lru_cache(maxsize=1)
def _by_column() -> dict[str, str]:
    return {column_name(n): n for n in _configs()}


def pyiqa_name(name: str) -> str:
    """pyiqa's own name of ``pyiqa:NAME`` or of its column ``pyiqa_...``; an unknown one suggests the closest."""
    bare = name.removeprefix(PREFIX)
    if bare != name and bare in _configs():
        return bare
    found = _by_column().get(canonical(name))
    if found is None:
        raise unknown("pyiqa metric", bare.removeprefix(COLUMN_PREFIX), _configs())
    return found


def version() -> str:
    try:
        return importlib.metadata.version("pyiqa")
    except importlib.metadata.PackageNotFoundError:
        raise UserError(NOT_INSTALLED) from None


def parse_range(text: str) -> tuple[float, float]:
    """(lower, upper) of pyiqa's ``score_range`` text: ``"0, 1"`` is a bound; ``"~0, ~40"`` is pyiqa's rough
    estimate, not a bound, so it becomes unbounded (the text stays in the description). ``"quality: 0, 1; rank: ..."``
    (one metric, several outputs) takes the first."""
    parts = [p.strip() for p in text.split(";")[0].split(":")[-1].split(",")]
    if len(parts) != 2:
        return -math.inf, math.inf
    lo, hi = (float(p) if p and not p.startswith("~") else None for p in parts)
    return (-math.inf if lo is None else lo), (math.inf if hi is None else hi)


def options(name: str) -> dict:
    """The options pyiqa builds ``name`` with by default (``type`` is its network class)."""
    return dict(_configs()[pyiqa_name(name)]["metric_opts"])


# network classes whose ``**kwargs`` reach a function (the rest ignore theirs, so an option there would do nothing)
_KWARGS_TO = {"PSNR": ("pyiqa.archs.psnr_arch", "psnr"), "Entropy": ("pyiqa.archs.entropy_arch", "entropy")}


def accepted_options(name: str) -> dict | None:
    """Option -> pyiqa's default for every option ``pyiqa.create_metric(name, **options)`` passes on to the metric:
    the parameters of its network class (and of the function its ``**kwargs`` reach, ``_KWARGS_TO``); None when
    the class cannot be imported here (its own import error then stops the run)."""
    from pyiqa.utils.registry import ARCH_REGISTRY

    kind = options(name)["type"]
    # pyiqa imports a network class on first use, from its module pyiqa.archs.<name>_arch (or, for a class that
    # shares a module, from any *_arch module): the same public modules are imported here
    import pyiqa.archs

    snake = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", kind)).lower()
    every = sorted(f"pyiqa.archs.{m.name}" for m in pkgutil.iter_modules(pyiqa.archs.__path__)
                   if m.name.endswith("_arch"))
    for module in dict.fromkeys((f"pyiqa.archs.{kind.lower()}_arch", f"pyiqa.archs.{snake}_arch", *every)):
        if kind in ARCH_REGISTRY:
            break
        with contextlib.suppress(Exception):
            importlib.import_module(module)
    if kind not in ARCH_REGISTRY:
        return None
    targets = [ARCH_REGISTRY.get(kind).__init__]
    if kind in _KWARGS_TO:
        module, attr = _KWARGS_TO[kind]
        targets.append(getattr(importlib.import_module(module), attr))
    out = {}
    for fn in targets:
        for key, p in inspect.signature(fn).parameters.items():
            if key != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is not p.empty:
                out.setdefault(key, p.default)
    return out


def check_options(name: str, given: dict) -> None:
    """A one-line error for an option pyiqa's metric ``name`` does not take, suggesting the closest it does."""
    accepted = accepted_options(name) if given else None
    wrong = [key for key in given if accepted is not None and key not in accepted]
    if wrong:
        key, real, near = wrong[0], pyiqa_name(name), closest(wrong[0], accepted, n=1)
        hint = f"did you mean {near[0]!r}?" if near else f"its options: {', '.join(sorted(accepted)) or 'none'}"
        raise UserError(f"pyiqa metric {real!r} has no option {key!r} (--metric-opt pyiqa:{real}.{key}=...); {hint}")


def source(name: str, given: dict | None = None) -> str:
    """Provenance on every row (``metric_weights``' ``<column>_plugin``): pyiqa's version, the metric, the options
    it ran with and which of them the run gave (``--metric-opt``)."""
    given = dict(given or {})
    opts = {**options(name), **given}
    kind = opts.pop("type")
    args = ", ".join(f"{k}={v!r}" for k, v in sorted(opts.items()))
    chosen = ("default options" if not given else
              f"--metric-opt {', '.join(f'{k}={v!r}' for k, v in sorted(given.items()))}, else pyiqa's defaults")
    return (f"pyiqa {version()} metric {pyiqa_name(name)!r} = {kind}({args}), {chosen}, on RGB in [0, 1] float32, "
            "not shaved")


def info(name: str) -> MetricInfo:
    real = pyiqa_name(name)
    cfg = _configs()[real]
    rough = str(cfg.get("score_range", ""))
    lower, upper = parse_range(rough)
    mode = "no-reference" if cfg.get("metric_mode") == "NR" else "full-reference"
    psnr_like = cfg["metric_opts"].get("type") == "PSNR"
    return MetricInfo(
        name=column_name(real), higher_is_better=not cfg.get("lower_better", False), lower=lower, upper=upper,
        view="rgb", unit="dB" if psnr_like else "", decimals=2 if psnr_like else 4,
        description=f"pyiqa {real} ({mode}), pyiqa's score range {rough!r}",
    )


class MissingWeights(Exception):
    """A download pyiqa started; ``args`` are its URL and destination."""


@contextlib.contextmanager
def _no_downloads():
    """Turn every download pyiqa (or torchvision under it) starts into ``MissingWeights``: both end in
    ``torch.hub.download_url_to_file``, which pyiqa's download_util imported by name."""
    from pyiqa.utils import download_util

    def refuse(url, dst, *args, **kwargs):
        raise MissingWeights(url, os.fspath(dst))

    saved = torch.hub.download_url_to_file, download_util.download_url_to_file
    torch.hub.download_url_to_file = download_util.download_url_to_file = refuse
    try:
        yield
    finally:
        torch.hub.download_url_to_file, download_util.download_url_to_file = saved


def missing_weights_message(name: str, url: str, dst: str) -> str:
    if dst.endswith(".partial"):  # torch.hub writes to a temporary name and renames it; the user wants the final name
        dst = os.path.join(os.path.dirname(dst), os.path.basename(urlparse(url).path))
    return (f"metric pyiqa:{name} needs the weights file {os.path.basename(dst)}, which is not on this machine "
            f"(sr_bench never downloads during a run): put {url} at {dst} (pyiqa's cache under $TORCH_HOME), or "
            f"let pyiqa fetch it once: python -c \"import pyiqa; pyiqa.create_metric('{name}', device='cpu')\"")


class PyiqaMetric(Metric):
    """One pyiqa metric; ``load`` builds it (weights from the cache only), ``compute`` scores one image pair."""

    def __init__(self, name: str, given: dict | None = None):
        self.pyiqa_name = pyiqa_name(name)
        self.info = info(name)
        self.given = dict(given or {})  # --metric-opt: passed to pyiqa.create_metric over its defaults
        check_options(name, self.given)
        self.version = version()
        self._net = None
        self._device = torch.device("cpu")

    def load(self, device: torch.device) -> None:
        import pyiqa

        try:
            # pyiqa prints "Downloading: ..." before it asks torch.hub; the one line below says it better
            with _no_downloads(), contextlib.redirect_stdout(io.StringIO()):
                self._net = pyiqa.create_metric(self.pyiqa_name, device=device, **self.given)
        except MissingWeights as e:
            raise MetricUnavailable(missing_weights_message(self.pyiqa_name, *e.args)) from None
        except Exception as e:  # e.g. a Hugging Face model that is not cached: still one line, naming the metric
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            given = f" with --metric-opt {self.given}" if self.given else ""
            raise MetricUnavailable(f"metric pyiqa:{self.pyiqa_name} (pyiqa {self.version}){given} failed to start: "
                                    f"{type(e).__name__}: {first}") from None
        self._device = device

    def compute(self, sr: torch.Tensor, hr: torch.Tensor) -> float:
        if self._net is None:
            self.load(self._device)
        x = sr.to(self._device, torch.float32)
        if self._net.metric_mode == "NR":
            return float(self._net(x).item())
        return float(self._net(x, hr.to(self._device, torch.float32)).item())

