"""Model registry in the style of timm (register/create/list) with lm-eval's lazy ``module:attr`` entries.

Three ways in: built-ins (the model cards' ``entry``), the ``sr_bench.models`` entry-point group of installed
packages, and ``--plugin`` files that call ``@register_model``; nothing is imported until a model is created. ``NAME+``
is NAME's x8 self-ensemble (``models/ensemble.py``). The rules on names, clashes and plugin errors: README, "Adding a
model".
"""

from __future__ import annotations

import fnmatch
import functools
import importlib.util
import inspect
import pkgutil
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Callable

from sr_bench.errors import UserError, unknown
from sr_bench.models.card_files import model_cards
from sr_bench.models.ensemble import self_ensemble_factory
from sr_bench.models.interface import Upscaler
from sr_bench.models.modelcard import ModelCard, read_card, release_name

ENTRY_POINT_GROUP = "sr_bench.models"
SUFFIX = "+"  # NAME+ = NAME with x8 geometric self-ensemble (models/ensemble.py)
PLUGIN_MODULE_PREFIX = "sr_bench_plugin_"  # modules made from --plugin files


@dataclass(frozen=True)
class Entry:
    """Where a model name points: ``target`` (the class/factory, or its lazy ``module:attr``) and a human-readable
    ``source`` for messages."""

    target: Callable[..., Upscaler] | str
    source: str
    builtin: bool = False
    override: bool = False
    module_file: str | None = None  # the plugin's module file, beside which its card may lie


_registered: dict[str, Entry] = {}
_plugins: dict[str, list[str]] = {}  # resolved plugin file -> the model names it registered


def _module_source(obj) -> tuple[str, str | None]:
    module = sys.modules.get(getattr(obj, "__module__", ""), None)
    file = getattr(module, "__file__", None)
    name = getattr(obj, "__module__", "?")
    if name.startswith(PLUGIN_MODULE_PREFIX) and file:
        return f"plugin file {file}", file
    return f"module {name}" + (f" ({file})" if file else ""), file


def register_model(name: str | Callable | None = None, *, override: bool = False):
    """Decorator for an ``Upscaler`` subclass or a factory returning one: ``@register_model``,
    ``@register_model("x")``, or ``@register_model("rcan", override=True)`` to replace a built-in or another
    plugin's model on purpose (without ``override`` that is an error naming both)."""

    def wrap(obj, key=None):
        key = key or getattr(obj, "model_name", None) or obj.__name__.lower()
        if inspect.isclass(obj) and not issubclass(obj, Upscaler):
            raise UserError(f"register_model({key!r}): {obj.__name__} is not an Upscaler subclass; derive it "
                            f"from sr_bench.Upscaler (or register a function that returns one)")
        if not callable(obj):
            raise UserError(f"register_model({key!r}): {obj!r} is not a class or function")
        source, file = _module_source(obj)
        prev = _registered.get(key)
        if prev is not None and prev.source != source and not override:
            raise _clash(key, prev, Entry(obj, source))
        _registered[key] = Entry(obj, source, override=override, module_file=file)
        return obj

    if callable(name):
        return wrap(name)
    return lambda obj: wrap(obj, name)


def _clash(name: str, first: Entry, second: Entry) -> UserError:
    later = second if first.builtin else first
    if isinstance(later.target, str):  # an entry point: not imported to list it, so its card says it
        fix = (f"or, to replace the built-in on purpose, put replaces = {name!r} in the card {name}.toml beside "
               f"the plugin's module" if first.builtin or second.builtin else "or uninstall one of them")
    else:
        fix = f"or replace on purpose with @register_model({name!r}, override=True)"
    return UserError(f"model name {name!r} is registered twice: by {first.source} and by {second.source}; rename "
                     f"one, {fix}")


def _entry_point_entries() -> list[tuple[str, Entry]]:
    out = []
    try:
        eps = list(entry_points(group=ENTRY_POINT_GROUP))
    except Exception:  # a broken distribution's metadata must not take the CLI down
        return out
    for ep in eps:
        dist = getattr(ep, "dist", None)
        where = f" of distribution {dist.name} {dist.version}" if dist is not None else ""
        out.append((ep.name, Entry(ep.value, f"entry point '{ep.name} = {ep.value}'{where}")))
    return out


def _same_target(a: Entry, b: Entry) -> bool:
    """An entry point and the @register_model of the object it names (the module registers itself on import)."""
    def dotted(t) -> str:
        return t if isinstance(t, str) else f"{getattr(t, '__module__', '?')}:{getattr(t, '__qualname__', '?')}"

    return a.target is b.target or dotted(a.target) == dotted(b.target)


@dataclass
class Entries:
    """Every model name (and alias) -> its entry; the names two sources claim (name -> both entries), which no
    listing shows and no run may use; and one line for each plugin whose card cannot be read."""

    found: dict[str, Entry]
    clashes: dict[str, tuple[Entry, Entry]]
    problems: list[str]


def _entries() -> Entries:
    found: dict[str, Entry] = {}
    clashes: dict[str, tuple[Entry, Entry]] = {}
    problems: list[str] = []

    def add(name: str, entry: Entry, replaces: bool = False) -> None:
        prev = found.get(name)
        if prev is None or entry.override or (replaces and prev.builtin):
            found[name] = entry
            clashes.pop(name, None)
        elif not _same_target(prev, entry):
            clashes.setdefault(name, (prev, entry))

    for name, card in model_cards().items():
        add(name, Entry(card["entry"], f"the built-in card {card['name']!r}", builtin=True))
    plugins = [*_entry_point_entries(), *_registered.items()]
    cards: dict[str, dict] = {}
    for name, entry in plugins:
        path = _plugin_card_file(name, entry)
        try:
            cards[name] = _read_plugin_card(str(path), name) if path else {}
        except UserError as e:  # a broken card: the model stays listed, the listing says why its card is not
            cards[name] = {}
            problems.append(str(e))
    for name, entry in plugins:
        add(name, entry, replaces=name in _replaced(cards[name]))
    for name, entry in plugins:  # a plugin card's aliases are names too
        for alias in cards[name].get("aliases", []):
            add(alias, entry, replaces=alias in _replaced(cards[name]))
    return Entries(found, clashes, problems)


def _replaced(card: dict) -> set[str]:
    """The built-in names a plugin card says it replaces on purpose (``replaces = "rcan"`` or a list)."""
    value = card.get("replaces", [])
    return {value} if isinstance(value, str) else set(value)


def _checked(names, clashes) -> None:
    for n in names:
        if n in clashes:
            raise _clash(n, *clashes[n])


def list_models(pattern: str = "*") -> list[str]:
    """The model names matching ``pattern``; a name two sources claim is an error naming both."""
    e = _entries()
    names = sorted(n for n in e.found if fnmatch.fnmatch(n, pattern))
    _checked(names, e.clashes)
    return names


def model_listing(pattern: str = "*") -> tuple[list[str], list[str]]:
    """What ``srbench models`` shows: the names matching ``pattern`` that can be used, and one line per problem (a
    name two sources claim, a plugin card that cannot be read), so that one broken plugin hides nothing else."""
    e = _entries()
    names = sorted(n for n in e.found if fnmatch.fnmatch(n, pattern) and n not in e.clashes)
    problems = [str(_clash(n, *e.clashes[n])) for n in sorted(e.clashes) if fnmatch.fnmatch(n, pattern)]
    return names, problems + e.problems


def entry_for(name: str) -> Entry | None:
    """The registry entry behind ``name`` (``NAME+``: NAME's), or None (unknown, or a ``basicsr:`` model)."""
    e = _entries()
    if name not in e.found and name.endswith(SUFFIX) and len(name) > 1:
        name = name[: -len(SUFFIX)]
    _checked([name], e.clashes)
    return e.found.get(name)


def plugin_failure(name: str, entry: Entry, error: BaseException, when: str) -> UserError:
    """One line for an exception raised by plugin code (the traceback stays chained for ``srbench --debug``)."""
    text = " ".join(str(error).split()) or "(no message)"
    return UserError(f"model {name!r} from {entry.source} raised {type(error).__name__}: {text} ({when}); "
                     f"rerun with srbench --debug for the traceback")


def resolve(name: str, checkpoint: str | None = None) -> Callable[..., Upscaler]:
    """The factory of ``--models name[=checkpoint]`` (``checkpoint`` matters only for ``NAME=spandrel:PATH``)."""
    from sr_bench.models.spandrel_bridge import is_spandrel, spandrel_model

    if is_spandrel(name, checkpoint):  # before NAME+: a checkpoint's file stem may end in '+'
        return functools.partial(spandrel_model, name=name)
    e = _entries()
    found, clashes = e.found, e.clashes
    if name.endswith(SUFFIX) and len(name) > 1 and name not in found:
        return self_ensemble_factory(resolve(name[: -len(SUFFIX)]), name)
    if name.startswith("basicsr:"):
        from sr_bench.models.basicsr_bridge import BasicSRModel

        return functools.partial(BasicSRModel, name.split(":", 1)[1])
    if name not in found:
        raise unknown("model", name, found)
    _checked([name], clashes)
    entry = found[name]
    target = entry.target
    if isinstance(target, str):
        try:
            obj = pkgutil.resolve_name(target)
        except ImportError as e:
            raise UserError(f"model {name!r} needs a package that is not installed ({e.name or e}); "
                            "install it or pick another model") from None
        except AttributeError:
            raise UserError(f"model {name!r} points at {target!r}, which does not exist; "
                            "fix the registration") from None
        except Exception as e:
            if entry.builtin:
                raise
            raise plugin_failure(name, entry, e, "while importing it") from e
        target = obj
    if inspect.isclass(target) and not issubclass(target, Upscaler):
        raise UserError(f"model {name!r} from {entry.source} is {target.__name__}, which is not an Upscaler "
                        f"subclass; derive it from sr_bench.Upscaler")
    if not callable(target):
        raise UserError(f"model {name!r} from {entry.source} points at {target!r}, which is not a class or function")
    return target


def call_model_code(name: str, when: str, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, with an exception from a plugin's code turned into ``plugin_failure``'s one line
    (built-ins' exceptions are bugs and keep their traceback; ``UserError`` passes through)."""
    try:
        return fn(*args, **kwargs)
    except UserError:
        raise
    except Exception as e:
        entry = None if name.startswith("basicsr:") else entry_for(name)
        if entry is None or entry.builtin:
            raise
        raise plugin_failure(name, entry, e, when) from e


def create_model(name: str, **config) -> Upscaler:
    model = call_model_code(name, "while creating it", resolve(name, config.get("checkpoint")), **config)
    if not isinstance(model, Upscaler):
        raise UserError(f"model {name!r} returned {type(model).__name__}, not an Upscaler; its factory must return "
                        f"an sr_bench.Upscaler")
    if not hasattr(model, "scales") or not hasattr(model, "name"):
        raise UserError(f"model {name!r} ({type(model).__name__}) has no name/scales: its __init__ must call "
                        f"super().__init__(name=..., scales=ScaleSupport...)")
    return model


def load_plugin(path: str | Path) -> list[str]:
    """Import a plugin file; returns the model names it registered."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"plugin file {str(p)!r} not found; pass --plugin path/to/file.py")
    key = str(p.resolve())
    if key in _plugins:  # a second run in the same process: its models are registered already
        return list(_plugins[key])
    before = set(_registered)
    mod_name = f"{PLUGIN_MODULE_PREFIX}{p.stem}"
    spec = importlib.util.spec_from_file_location(mod_name, p)
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"plugin {str(p)!r} failed to import: {type(e).__name__}: {e}") from e
    added = sorted(set(_registered) - before)
    if not added:
        raise UserError(f"plugin {str(p)!r} registered no model; decorate a class with @sr_bench.register_model")
    clashes = _entries().clashes
    for name in added:  # said now, not when the name is first used
        if name in clashes:
            for n in added:  # not half-loaded: loading the file again says the same
                _registered.pop(n, None)
            raise _clash(name, *clashes[name])
    _plugins[key] = added
    return added


def _module_dir(module: str) -> Path | None:
    """The folder of ``module``'s file, found without importing it (``srbench models`` must not import plugins)."""
    top, *rest = module.split(".")
    try:
        spec = importlib.util.find_spec(top)
    except Exception:  # a broken package: no card; the model's own import will say why
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        folder = Path(list(spec.submodule_search_locations)[0])
    elif spec.origin and spec.origin not in ("built-in", "frozen"):
        folder = Path(spec.origin).parent
    else:
        return None
    for i, part in enumerate(rest):  # a.b.c: the folder of a/b/c.py, or a/b/c/ for a package
        if i < len(rest) - 1 or (folder / part).is_dir():
            folder = folder / part
    return folder


def _plugin_card_file(name: str, entry: Entry) -> Path | None:
    """A plugin's card: ``NAME.toml`` beside its module (the fields of registry/*.toml, ``entry`` optional)."""
    if entry.builtin:
        return None
    if entry.module_file:
        folder = Path(entry.module_file).parent
    else:
        folder = _module_dir(entry.target.partition(":")[0]) if isinstance(entry.target, str) else None
    path = folder / f"{name}.toml" if folder else None
    return path if path is not None and path.is_file() else None


@functools.lru_cache(maxsize=64)
def _read_plugin_card(path: str, name: str) -> dict:
    card = read_card(path, f" of plugin model {name!r}")
    card.setdefault("name", name)
    if card["name"] != name:
        raise UserError(f"model card {path} says name = {card['name']!r} but sits beside the plugin model {name!r}; "
                        f"name the file after the model")
    ModelCard.from_dict(card, path)  # the same rules as the built-in cards
    return card


def card_for(name: str) -> dict | None:
    """The card of the model ``name`` runs: a built-in's, or a plugin's (named after its registered name, also for an
    alias and when the plugin replaces a built-in on purpose), or None."""
    found = _entries().found
    entry = found.get(name)
    if entry is None or entry.builtin:
        return model_cards().get(name)
    paths = ((key, _plugin_card_file(key, e)) for key, e in found.items() if e is entry)
    return next((_read_plugin_card(str(path), key) for key, path in paths if path is not None), None)


@functools.lru_cache(maxsize=1024)
def release_of(name: str, sha256: str) -> str:
    """The card release a checkpoint is (``LapSRN_x2.mat``), ``unreleased``, or ``""`` without weights: what rows
    and run.json record next to ``checkpoint_sha256``. ``NAME+`` uses NAME's card."""
    if not sha256:  # a model without weights has no release, whatever its card (even one that cannot be read)
        return ""
    card = card_for(name)
    if card is None and name.endswith(SUFFIX):
        card = card_for(name[: -len(SUFFIX)])
    return release_name(card, sha256)
