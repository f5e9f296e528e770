"""Run any architecture from BasicSR's registry as an sr_bench model: ``--models basicsr:ARCH=net_g.pth``.

basicsr is imported only here and only when such a model is named. Arch options come from, in order: ``--model-opt
k=v``; an ``options=FILE.yml`` model option; a BasicSR options YAML next to the checkpoint (its folder or up to two
parents: ``experiments/X/X.yml`` for ``experiments/X/models/net_g_latest.pth``) whose ``network_g.type`` is ARCH.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import types
from fractions import Fraction
from pathlib import Path

import torch

from sr_bench.errors import UserError, unknown
from sr_bench.imaging.resize import imresize
from sr_bench.models.archs.blocks import NetworkUpscaler, build_module, crop_to, load_strict, read_checkpoint
from sr_bench.models.interface import ScaleSupport, Upscaler, scale_refusal
from sr_bench.models.tiling import run_network

PREFIX = "basicsr:"


def arch_registry():
    """BasicSR's ARCH_REGISTRY, loaded without its package ``__init__``, which imports the whole trainer (and breaks
    with newer torchvision in basicsr 1.4.2)."""
    spec = importlib.util.find_spec("basicsr")
    if spec is None:
        raise UserError("basicsr models need BasicSR: pip install --no-build-isolation basicsr-fixed==1.4.2")
    if "basicsr" not in sys.modules:
        pkg = types.ModuleType("basicsr")
        pkg.__path__ = list(spec.submodule_search_locations)
        pkg.__spec__ = spec
        sys.modules["basicsr"] = pkg
    import basicsr.archs  # noqa: F401  (fills ARCH_REGISTRY)
    from basicsr.utils.registry import ARCH_REGISTRY

    return ARCH_REGISTRY


def _yaml_options(path: Path, arch: str) -> dict | None:
    import yaml

    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise UserError(f"BasicSR options {str(path)!r} could not be read ({e})") from None
    net = (doc or {}).get("network_g") if isinstance(doc, dict) else None
    if not isinstance(net, dict) or net.get("type") != arch:
        return None
    return {k: v for k, v in net.items() if k != "type"}


def find_options(checkpoint: Path | None, arch: str) -> tuple[dict, str | None]:
    if checkpoint is None:
        return {}, None
    folder = checkpoint.resolve().parent
    for d in [folder, *list(folder.parents)[:2]]:
        for yml in sorted([*d.glob("*.yml"), *d.glob("*.yaml")]):
            opts = _yaml_options(yml, arch)
            if opts is not None:
                return opts, str(yml)
    return {}, None


class BasicSRModel(NetworkUpscaler):
    example_weights = "net_g_latest.pth"
    tiles_networks = True

    def __init__(self, arch: str, checkpoint=None, allow_untrained: bool = False, options: str | None = None,
                 param_key: str | None = None, **opts):
        registry = arch_registry()
        if arch not in registry:
            raise unknown("BasicSR arch", arch, list(registry.keys()))
        self.model_name = f"{PREFIX}{arch}"
        # no card: the scale is the network's own (checked when it runs), and the weights are BasicSR's
        Upscaler.__init__(self, name=self.model_name, scales=ScaleSupport(), learned=True, config={})
        paths = self._weights(checkpoint, allow_untrained)
        if len(paths) > 1:
            raise UserError(f"model {self.model_name!r} takes one checkpoint, got {len(paths)}")
        path = paths[0] if paths else None
        if options is not None:
            found = _yaml_options(Path(options), arch)
            if found is None:
                raise UserError(f"{options} has no network_g of type {arch}; point options= at the training YAML")
            base, source = found, options
        else:
            base, source = find_options(path, arch)
        arch_opts = {**base, **opts}
        cls = registry.get(arch)
        try:
            inspect.signature(cls).bind(**arch_opts)
        except TypeError as e:
            raise UserError(f"BasicSR {arch}{inspect.signature(cls)} rejects options {arch_opts}: {e}; "
                            f"fix --model-opt or the options YAML") from None
        self.config = {"arch": arch, "options": arch_opts, "options_source": source}
        self._net = build_module(lambda: cls(**arch_opts), meta=path is not None)
        if path is not None:
            obj, sha = read_checkpoint(path, self.model_name)
            if not isinstance(obj, dict):
                raise UserError(f"checkpoint {str(path)!r} is not a dict; BasicSR saves {{'params': state_dict}}")
            key = param_key or next((k for k in ("params_ema", "params") if k in obj), None)
            sd = obj[key] if key else obj
            if not isinstance(sd, dict):
                raise UserError(f"checkpoint {str(path)!r} has no {param_key!r}; keys: {', '.join(map(str, obj))}")
            load_strict(self._net, {k.removeprefix("module."): v for k, v in sd.items()}, self.model_name, path)
            self.checkpoint_sha256 = sha
            self.config["param_key"] = key
        self._net = self._prepare(self._net)
        self.native_scale = self._probe_scale()
        self.scales = ScaleSupport(integers=frozenset({self.native_scale}))
        self.strategy = "ceil-then-down"

    def _probe_scale(self) -> int:
        # BasicSR archs name their scale differently (upscale, scale, upscale_factor); the output size tells.
        with torch.inference_mode():
            y = self._net(torch.zeros(1, 3, 16, 16, device=self._device))
        k = y.shape[-1] // 16
        if k * 16 != y.shape[-1] or k < 1:
            raise UserError(f"{self.model_name} maps 16 px to {y.shape[-1]} px: not an integer-scale SR network")
        return k

    def scale_problem(self, scale: Fraction) -> str | None:
        if Fraction(scale) <= self.native_scale:
            return None
        return f"it is a x{self.native_scale} network and ceil-then-down needs a larger scale"

    def super_resolve(self, lr: torch.Tensor, scale: Fraction, size: tuple[int, int]) -> torch.Tensor:
        s, k = Fraction(scale), self.native_scale
        if s > k:
            raise scale_refusal(self.model_name, s, self.scale_problem(s))
        with torch.inference_mode():
            y = run_network(self._net, self._input(lr), k).to(torch.float64)
        if s == k:
            return crop_to(y, size, self.model_name).clamp(0.0, 1.0)
        return (imresize(y * 255.0, size=(int(size[0]), int(size[1]))) / 255.0).clamp_(0.0, 1.0)
