"""What a run measures (``RunRequest``: run.json's ``request``) and how this session executes it (``RunOptions``).

A request is everything that decides a row's numbers; ``--resume`` rebuilds it from run.json and a folder refuses
another one. The options decide only where and how fast (float32 rounding at most: the speed levers), so a resume
may change them. Both check themselves when made: a bad value fails before any image is read, naming the option.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from fractions import Fraction
from pathlib import Path

from sr_bench.errors import UserError, unknown
from sr_bench.metrics import DEFAULT_METRICS, check_metric_opts, metric_column
from sr_bench.models.tiling import Tiling
from sr_bench.protocols import choose_protocol
from sr_bench.run.grid import ModelSpec
from sr_bench.run.levers import DEFAULT_BACKEND, Levers
from sr_bench.run.memory import parse_size
from sr_bench.run.precision import check_precision
from sr_bench.scales import parse_scale, scale_text
from sr_bench.store import read_manifest

EXECUTORS = ("local", "ray")  # local: this process (--workers 1) or a spawn pool; ray: run/executors.py
DRIFT_IMAGES = 5  # a non-fp32 run also measures its first images in fp32 (run.json's precision.drift)


@dataclass(frozen=True)
class RunRequest:
    """Models x datasets x scales under one protocol, and everything else that decides the rows."""

    models: tuple[str, ...]  # NAME or NAME=CHECKPOINT
    datasets: tuple[str, ...]
    scales: tuple[Fraction, ...]
    protocol: str = "auto"  # resolved when made: a request always names the protocol its rows use
    metrics: tuple[str, ...] | None = None  # None: the defaults (a default that cannot load is skipped with a note)
    data_root: str | None = None  # where the files are, not what they are: their hashes are checked instead
    lpips_weights: str | None = None
    plugins: tuple[str, ...] = ()
    allow_untrained: bool = False
    model_opts: tuple[tuple[str, object], ...] = ()  # --model-opt k=v, given to every model that takes option k
    metric_opts: tuple[tuple[str, object], ...] = ()  # --metric-opt COLUMN.KEY=v (pyiqa metrics' options)
    save_images: bool = False
    precision: str = "fp32"
    tile: int | None = None
    tile_overlap: int | None = None
    profile: bool = False

    def __post_init__(self):
        put = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 - normalising a frozen dataclass
        put("models", tuple(self.models or ()))
        put("datasets", tuple(self.datasets or ()))
        put("scales", tuple(Fraction(s) for s in self.scales or ()))
        put("plugins", tuple(str(p) for p in self.plugins))
        put("model_opts", tuple(sorted(dict(self.model_opts or {}).items())))
        if self.metrics is not None:
            put("metrics", tuple(metric_column(m) for m in self.metrics))  # pyiqa:NAME -> its column pyiqa_NAME
        opts = dict(self.metric_opts or {})
        put("metric_opts", tuple(sorted({f"{metric_column(k.rpartition('.')[0])}.{k.rpartition('.')[2]}": v
                                         for k, v in opts.items()}.items())))
        check_metric_opts(self.metric_opts, self.metric_names)
        for name, example in (("models", "bicubic (see `srbench models`)"),
                              ("datasets", "set5 (see `srbench datasets list`)"), ("scales", "2,3,4")):
            if not getattr(self, name):
                raise UserError(f"no {name} given; use --{name} {example}")
        names = [s.name for s in self.specs]
        if len(set(names)) != len(names):
            raise UserError("a model name appears twice in --models; give each model once")
        check_precision(self.precision, "cuda")  # the name; the device is checked when the run starts
        if self.tile is not None:
            Tiling(self.tile, self.tile_overlap or 0)  # checks both
        elif self.tile_overlap is not None:
            raise UserError("--tile-overlap needs --tile N (the tile size in LR pixels)")
        put("protocol", choose_protocol(self.protocol, self.scales).name)

    @property
    def metric_names(self) -> tuple[str, ...]:
        """The requested metrics (each a row column, also one that could not load)."""
        return DEFAULT_METRICS if self.metrics is None else self.metrics

    @property
    def specs(self) -> tuple[ModelSpec, ...]:
        return tuple(ModelSpec.parse(m) for m in self.models)

    def to_json(self) -> dict:
        """run.json's ``request`` (keys added since the first stored request have a default in
        ``run.folder._REQUEST_DEFAULTS``)."""
        listed = {name: list(getattr(self, name)) for name in ("models", "datasets", "plugins")}
        return {**{f.name: getattr(self, f.name) for f in fields(self)}, **listed,
                "scales": [scale_text(s) for s in self.scales],
                "metrics": None if self.metrics is None else list(self.metrics),
                "model_opts": dict(self.model_opts), "metric_opts": dict(self.metric_opts)}

    @staticmethod
    def from_json(stored: dict) -> "RunRequest":
        """The request of a stored run.json ``request`` (keys older runs lack take the value they meant)."""
        known = {f.name for f in fields(RunRequest)}
        given = {k: v for k, v in stored.items() if k in known and v is not None}
        given["scales"] = [parse_scale(s) for s in stored["scales"]]
        return RunRequest(**given)


def stored_request(run_dir: Path) -> dict:
    """run.json's ``request`` of a run folder, or a one-line error saying why there is none."""
    path = Path(run_dir)
    if not (path / "run.json").is_file():
        raise UserError(f"cannot resume {str(path)!r}: no run.json there; give a run folder made by `srbench run`")
    stored = read_manifest(path).get("request")
    if stored is None:
        raise UserError(f"{path}/run.json has no stored request (made by an older sr_bench); rerun it instead")
    return stored


@dataclass(frozen=True)
class RunOptions:
    """How this session runs a request; none of it changes a row's numbers."""

    device: str = "auto"
    workers: int = 1  # each a process (or Ray actor) with one intra-op thread
    executor: str = "local"
    ray_address: str | None = None
    gpus_per_worker: float = 0.0  # what each Ray actor requests
    prefetch: int | None = None  # images prepared ahead on a helper thread (--workers 1); None: 2 on CUDA, 0 on CPU
    progress: bool = True
    max_memory: int | None = None  # bytes ('4GB' is parsed): a CPU RSS guard / a CUDA allocator cap (run/memory.py)
    drift_images: int = DRIFT_IMAGES
    compile: str | None = None  # speed levers (run/levers.py): a torch.compile backend, NHWC weights, cuDNN autotuning
    channels_last: bool = False
    cudnn_benchmark: bool = False
    out: Path | None = None  # the run folder; None: results_dir/<run id>
    results_dir: Path = Path("results")
    resume: bool = False  # ``out`` must already hold a run

    def __post_init__(self):
        if isinstance(self.max_memory, str):
            object.__setattr__(self, "max_memory", parse_size(self.max_memory))
        for name, least in (("workers", 1), ("gpus_per_worker", 0), ("prefetch", 0), ("drift_images", 0)):
            value = getattr(self, name)
            if value is not None and value < least:
                raise UserError(f"--{name.replace('_', '-')} must be >= {least}, got {value}")
        if self.executor not in EXECUTORS:
            raise unknown("executor", self.executor, EXECUTORS)
        for name, why in (("ray_address", ""), ("gpus_per_worker", " (a local run uses --device)")):
            if getattr(self, name) and self.executor != "ray":
                raise UserError(f"--{name.replace('_', '-')} needs --executor ray{why}")
        Levers(self.compile, self.channels_last, self.cudnn_benchmark)  # checks the --compile backend

    @property
    def levers(self) -> Levers:
        return Levers(self.compile, self.channels_last, self.cudnn_benchmark)

    def flags(self) -> list[str]:
        """The command-line options that repeat these options (those that differ from the defaults)."""
        default, out = RunOptions(), []
        for name in ("device", "workers", "executor", "ray_address", "gpus_per_worker", "prefetch", "max_memory"):
            value = getattr(self, name)
            if value != getattr(default, name):
                out += [f"--{name.replace('_', '-')}", f"{value:g}" if isinstance(value, float) else str(value)]
        if self.compile is not None:
            out += ["--compile"] + ([] if self.compile == DEFAULT_BACKEND else [self.compile])
        out += ["--channels-last"] * self.channels_last + ["--cudnn-benchmark"] * self.cudnn_benchmark
        return out + ([] if self.progress else ["--no-progress"])


def split_fields(**given) -> tuple[RunRequest, RunOptions]:
    """A request and options from their fields by name (``models=[...], workers=2``), for scripts and tests; a name
    neither has is RunOptions' TypeError."""
    names = {f.name for f in fields(RunRequest)}
    return (RunRequest(**{k: v for k, v in given.items() if k in names}),
            RunOptions(**{k: v for k, v in given.items() if k not in names}))
