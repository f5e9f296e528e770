"""Any single-image SR checkpoint spandrel (chaiNNer's model loader) recognises, as an sr_bench model:
``--models spandrel=PATH`` (row ``spandrel:ARCH(FILE STEM)``) or ``--models NAME=spandrel:PATH`` (row NAME).

What sr_bench takes from spandrel's descriptor (scale, size requirements, fp16/bf16 support, purpose): README,
"Models from other libraries". spandrel is imported only here and only when such a model is named.
"""

from __future__ import annotations

import contextlib
import functools
import os
import warnings
from fractions import Fraction
from pathlib import Path

import torch

from sr_bench.errors import UserError
from sr_bench.hashing import file_sha256
from sr_bench.models.archs.blocks import crop_to
from sr_bench.models.interface import ScaleSupport, Upscaler, scale_refusal
from sr_bench.models.strategies import NATIVE, PLUGIN_STRATEGIES, PluginStrategy, held_scale
from sr_bench.models.tiling import run_network
from sr_bench.scales import scale_text

NAME = "spandrel"
PREFIX = "spandrel:"
INSTALL = "pip install 'sr_bench[spandrel]'"
EXTENSIONS = (".pth", ".pt", ".ckpt", ".safetensors")  # what spandrel's loader reads


def spandrel_package():
    try:
        import spandrel
    except ImportError:
        raise UserError(f"spandrel models need the spandrel package: {INSTALL}") from None
    return spandrel


def is_spandrel(name: str, checkpoint: str | None = None) -> bool:
    """Whether ``--models name[=checkpoint]`` is run by this bridge (``spandrel=``, ``spandrel:...=``,
    ``=spandrel:``)."""
    return name == NAME or name.startswith(PREFIX) or (isinstance(checkpoint, str) and checkpoint.startswith(PREFIX))


def checkpoint_path(checkpoint: str) -> str:
    return checkpoint[len(PREFIX):] if checkpoint.startswith(PREFIX) else checkpoint


def spec_of(name: str, path: str | None) -> tuple[str, str | None]:
    """The (row name, checkpoint) of a ``--models`` entry: ``spandrel=PATH`` becomes ``spandrel:ARCH(STEM)`` with
    checkpoint ``spandrel:PATH``; every other entry is returned as written."""
    if name != NAME or not path:
        return name, path
    path = checkpoint_path(path)
    return f"{PREFIX}{architecture_of(path)}({Path(path).stem})", PREFIX + path


def architecture_of(path: str) -> str:
    """The spandrel architecture id of the checkpoint at ``path`` (detection only: no network is built)."""
    p = _existing(path, NAME)
    st = p.stat()
    return _detected(str(p.resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _detected(path: str, size: int, mtime_ns: int) -> str:  # size and mtime: a rewritten file is read again
    spandrel = spandrel_package()
    sd = read_state_dict(Path(path), NAME)
    found = next((s.architecture.id for s in spandrel.MAIN_REGISTRY.architectures("detection") if s.detect(sd)), None)
    if found is None:
        raise _unsupported(Path(path), spandrel)
    return str(found)


def _existing(path: str, name: str) -> Path:
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"checkpoint for model {name!r} not found: {str(p)!r}; check the path after "
                        f"'{NAME}=' (or 'NAME=spandrel:')")
    if p.suffix.lower() not in EXTENSIONS:
        raise UserError(f"spandrel reads {', '.join(EXTENSIONS)} files, not {str(p)!r}; rename or convert it")
    return p


def _unsupported(path: Path, spandrel) -> UserError:
    return UserError(f"spandrel {spandrel.__version__} does not recognise the architecture of {str(path)!r}; "
                     f"`srbench models spandrel` lists the ones it knows")


def read_state_dict(path: Path, name: str) -> dict:
    """The checkpoint's state dict as spandrel reads it (restricted unpickler, safetensors, TorchScript .pt),
    canonicalised (container keys such as ``params_ema`` and ``module.`` prefixes removed)."""
    spandrel = spandrel_package()
    try:
        return spandrel.ModelLoader("cpu").load_state_dict_from_file(path)
    except Exception as e:  # a truncated download, a pickle spandrel's unpickler refuses, not a torch file
        reason = " ".join(str(e).split())[:160] or type(e).__name__
        raise UserError(f"checkpoint {str(path)!r} for model {name!r} could not be read by spandrel "
                        f"({type(e).__name__}: {reason})") from None


def architectures_text() -> str:
    """What ``srbench models spandrel`` prints: every architecture the installed spandrel detects."""
    spandrel = spandrel_package()
    archs = sorted(((str(s.architecture.id), s.architecture.name) for s in spandrel.MAIN_REGISTRY.architectures(
        "detection")), key=lambda a: a[0].lower())
    width = max(len(i) for i, _ in archs)
    lines = [f"spandrel {spandrel.__version__}: {len(archs)} architectures, detected from a checkpoint's keys",
             f"{'id':<{width}}  name"]
    lines += [f"{i:<{width}}  {n}" for i, n in archs]
    lines.append("\nRun one: --models spandrel=PATH (row spandrel:ARCH(FILE)) or --models NAME=spandrel:PATH. Only "
                 "SR models (purpose SR, scale > 1) run; face restoration, inpainting and 1x restoration "
                 "checkpoints of these architectures are refused.")
    return "\n".join(lines)


_PURPOSES = {"FaceSR": "a face restoration model", "Inpainting": "an inpainting model",
             "Restoration": "a 1x restoration model"}


def _refuse_non_sr(descriptor, path: Path, name: str) -> None:
    """A UserError when the descriptor is not a single-image SR network sr_bench can run."""
    arch = descriptor.architecture.id
    purpose = getattr(descriptor, "purpose", "?")
    spandrel = spandrel_package()
    if not isinstance(descriptor, spandrel.ImageModelDescriptor) or purpose != "SR" or descriptor.scale < 2:
        what = _PURPOSES.get(purpose, f"a {purpose!r} model at x{descriptor.scale}")
        raise UserError(f"model {name!r}: {str(path)!r} is {what} (spandrel {arch}, purpose {purpose}), not "
                        f"single-image SR; sr_bench runs spandrel's SR models (purpose SR, scale > 1)")
    if descriptor.input_channels != 3 or descriptor.output_channels != 3:
        raise UserError(f"model {name!r}: {str(path)!r} (spandrel {arch}) maps {descriptor.input_channels} to "
                        f"{descriptor.output_channels} channels; sr_bench feeds RGB and scores RGB, so it runs "
                        f"3-to-3 channel models only")


class SpandrelModel(Upscaler):
    """One spandrel ``ImageModelDescriptor``: native at its scale only; float32 weights on the run's device."""

    tiles_networks = True  # the descriptor call runs through tiling.run_network
    strategies = PLUGIN_STRATEGIES  # what --model-opt strategy= may name (spandrel_model wraps on request only)

    def __init__(self, name: str, path: Path):
        spandrel = spandrel_package()
        sd = read_state_dict(path, name)
        try:
            with warnings.catch_warnings():  # spandrel's own torch.meshgrid deprecation notice, not the user's concern
                warnings.filterwarnings("ignore", message="torch.meshgrid")
                descriptor = spandrel.MAIN_REGISTRY.load(sd)
        except spandrel.UnsupportedModelError:
            raise _unsupported(path, spandrel) from None
        except Exception as e:  # detection matched but the hyper-parameters do not build (a damaged checkpoint)
            raise UserError(f"spandrel could not build model {name!r} from {str(path)!r} "
                            f"({type(e).__name__}: {' '.join(str(e).split())[:160]})") from None
        _refuse_non_sr(descriptor, path, name)
        self._descriptor = descriptor.float().eval()
        self.native_scale = int(descriptor.scale)
        req = descriptor.size_requirements
        super().__init__(
            name=name, scales=ScaleSupport(integers={self.native_scale}), learned=True,
            checkpoint_sha256=file_sha256(path), strategy=NATIVE,
            config={"bridge": NAME, "spandrel": spandrel.__version__, "architecture": str(descriptor.architecture.id),
                    "file": path.name, "tags": list(descriptor.tags), "scale": self.native_scale,
                    "purpose": descriptor.purpose,
                    "size_requirements": {"minimum": req.minimum, "multiple_of": req.multiple_of,
                                          "square": req.square},
                    "tiling": descriptor.tiling.name.lower(),
                    "fp16": "float16" if descriptor.supports_half else "float32 (spandrel: no fp16 support)",
                    "bf16": "bfloat16" if descriptor.supports_bfloat16 else "float32 (spandrel: no bf16 support)"})
        self._device = torch.device("cpu")

    def to(self, device) -> "SpandrelModel":
        self._device = torch.device(device)
        self._descriptor.to(self._device)
        return self

    def networks_for(self, scale: Fraction) -> list[torch.nn.Module]:
        return [self._descriptor.model]

    def scale_problem(self, scale: Fraction) -> str | None:
        s, k = Fraction(scale), self.native_scale
        if s == k:
            return None
        reach = [name for name in PLUGIN_STRATEGIES if held_scale(name, {k}, s) is not None]
        return (f"it is a x{k} network (spandrel {self.config['architecture']}); drop x{scale_text(s)} from --scales, "
                f"or name a decimal-scale strategy that reaches it: --model-opt '{self.name}.strategy={reach[0]}'"
                + (f" (or {', '.join(reach[1:])})" if reach[1:] else ""))

    def _dtype_guard(self):
        """Autocast off for a dtype spandrel says the network does not support: it then runs in float32."""
        kind = self._device.type
        supported = {torch.float16: self._descriptor.supports_half, torch.bfloat16: self._descriptor.supports_bfloat16}
        if torch.is_autocast_enabled(kind) and not supported.get(torch.get_autocast_dtype(kind), True):
            return torch.autocast(kind, enabled=False)
        return contextlib.nullcontext()

    def super_resolve(self, lr: torch.Tensor, scale: Fraction, size: tuple[int, int]) -> torch.Tensor:
        s, k = Fraction(scale), self.native_scale
        if s != k:
            raise scale_refusal(self.name, s, self.scale_problem(s))
        if lr.dim() != 4 or lr.shape[1] != 3:
            raise ValueError(f"{self.name} expects a (B, 3, h, w) RGB batch, got {tuple(lr.shape)}")
        x = lr.to(self._device, torch.float32)
        with self._dtype_guard():
            # the descriptor pads to its size requirements, clamps to [0, 1] and crops back (per tile when tiled)
            y = run_network(self._descriptor, x, k)
        return crop_to(y.to(torch.float64), size, self.name)


class SpandrelStrategy(PluginStrategy):
    """A spandrel model run at other scales by a built-in strategy; its network still tiles (the resizes run on the
    whole image, outside ``run_network``)."""

    tiles_networks = True


def spandrel_model(checkpoint: str | None = None, strategy: str | None = None, *, name: str = NAME) -> Upscaler:
    """The factory ``--models`` resolves spandrel entries to: the model of ``checkpoint`` (``PATH`` or
    ``spandrel:PATH``), wrapped in ``strategy`` when one other than native is named."""
    if not checkpoint:
        raise UserError(f"model {name!r} needs a checkpoint: --models spandrel=PATH/TO/model.pth (or "
                        f"NAME=spandrel:PATH to name the row); `srbench models spandrel` lists what spandrel reads")
    if os.pathsep in checkpoint and not Path(checkpoint_path(checkpoint)).exists():
        raise UserError(f"model {name!r} takes one checkpoint; give each file its own entry "
                        f"(--models spandrel=a.pth,spandrel=b.pth)")
    model = SpandrelModel(name, _existing(checkpoint_path(checkpoint), name))
    if strategy is None or strategy == NATIVE:
        return model
    return SpandrelStrategy(model, strategy)
