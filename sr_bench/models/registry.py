"""Model registry in the style of timm (register/create/list) with lm-eval's lazy ``module:attr`` entries.

Any name takes a ``+`` suffix for the x8 geometric self-ensemble (EDSR+, RCAN+, DBDN+; ``models/ensemble.py``).

Three ways in: built-ins (lazy strings below), the ``sr_bench.models`` entry-point group of installed packages, and
``--plugin path/to/file.py`` files that call ``@register_model``. Nothing is imported until a model is created, so
one model's missing optional dependency never breaks ``srbench models`` or another model.
"""

from __future__ import annotations

import fnmatch
import importlib
import importlib.util
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Callable

from sr_bench.errors import UserError, unknown
from sr_bench.models.cards import model_cards
from sr_bench.models.interface import Upscaler

ENTRY_POINT_GROUP = "sr_bench.models"
SUFFIX = "+"  # NAME+ = NAME with x8 geometric self-ensemble (models/ensemble.py)

# Built-ins come from the model cards in registry/*.toml (their ``entry``), so adding a model touches no code here.

_registered: dict[str, Callable[..., Upscaler] | str] = {}
_plugins: dict[str, list[str]] = {}  # resolved plugin file -> the model names it registered


def register_model(name: str | Callable | None = None):
    """Decorator for a class or factory returning an ``Upscaler``: ``@register_model`` or ``@register_model("x")``."""

    def wrap(obj, key=None):
        key = key or getattr(obj, "model_name", None) or obj.__name__.lower()
        _registered[key] = obj
        return obj

    if callable(name):
        return wrap(name)
    return lambda obj: wrap(obj, name)


def _entries() -> dict[str, Callable[..., Upscaler] | str]:
    found: dict[str, Callable[..., Upscaler] | str] = {name: card["entry"] for name, card in model_cards().items()}
    try:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            found.setdefault(ep.name, ep.value)
    except Exception:  # a broken distribution's metadata must not take the CLI down
        pass
    found.update(_registered)
    return found


def list_models(pattern: str = "*") -> list[str]:
    return sorted(n for n in _entries() if fnmatch.fnmatch(n, pattern))


def resolve(name: str) -> Callable[..., Upscaler]:
    if name.endswith(SUFFIX) and len(name) > 1 and name not in _entries():
        from sr_bench.models.ensemble import self_ensemble_factory

        return self_ensemble_factory(resolve(name[: -len(SUFFIX)]), name)
    if name.startswith("basicsr:"):
        import functools

        from sr_bench.models.basicsr_bridge import BasicSRModel

        return functools.partial(BasicSRModel, name.split(":", 1)[1])
    entries = _entries()
    if name not in entries:
        raise unknown("model", name, entries)
    target = entries[name]
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        try:
            obj = importlib.import_module(module)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except ImportError as e:
            raise UserError(f"model {name!r} needs a package that is not installed ({e.name or e}); install it or pick another model") from None
        except AttributeError:
            raise UserError(f"model {name!r} points at {target!r}, which does not exist; fix the registration") from None
        target = obj
    return target


def create_model(name: str, **config) -> Upscaler:
    return resolve(name)(**config)


def load_plugin(path: str | Path) -> list[str]:
    """Import a plugin file; returns the model names it registered."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"plugin file {str(p)!r} not found; pass --plugin path/to/file.py")
    key = str(p.resolve())
    if key in _plugins:  # a second run in the same process: its models are registered already
        return list(_plugins[key])
    before = set(_registered)
    mod_name = f"sr_bench_plugin_{p.stem}"
    spec = importlib.util.spec_from_file_location(mod_name, p)
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        raise UserError(f"plugin {str(p)!r} failed to import: {type(e).__name__}: {e}") from None
    added = sorted(set(_registered) - before)
    if not added:
        raise UserError(f"plugin {str(p)!r} registered no model; decorate a class with @sr_bench.register_model")
    _plugins[key] = added
    return added
