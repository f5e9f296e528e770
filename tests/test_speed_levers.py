"""Speed levers (``sr_bench.run.levers``) on a CPU, and ASDN's zero-weight level skip.

- ``--compile``: rows of compiled runs against eager runs of the same model (fp32: within the calibration tolerance
  per image; bf16: within bf16's own drift from fp32 on the same rows); ASDN compiles its FMB and a tiled forward
  runs eager; a model whose compilation fails runs eager with a note.
- ``--channels-last`` and ``--cudnn-benchmark``: accepted, recorded per session in run.json, rows within float32
  rounding (cudnn.benchmark is a no-op on a CPU).
- ``--workers 2 --gpus-per-worker 0.5`` with Ray: both actors on the one GPU of a (logical) one-GPU cluster.
- ASDN: skipping level i - 1 when w_r = 0 is bit-identical to running it; ``benchmarks/asdn_level_skip.py`` counts
  the forwards the adapter really runs and the FLOPs sr_bench's counter finds.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import os
import subprocess
import sys
from fractions import Fraction as F
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from sr_bench.cli import cli
from sr_bench.models.archs.asdn import ASDNUpscaler, lfr_level
from sr_bench.run.runner import run
from sr_bench.store import load_rows

REPO = Path(__file__).resolve().parents[1]
KEY = ["model", "image", "scale_text"]
CALIBRATION_DB = 1e-4  # the per-image PSNR tolerance of the calibration checks (docs/calibration-*.md)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("imgs") / "tiny"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        h, w = 40 + 4 * i, 52 - 4 * i
        base = np.add.outer(np.arange(h), np.arange(w)).astype(np.float64)
        img = np.stack([base * (c + 1) % 256 for c in range(3)], -1) + rng.normal(0, 8, (h, w, 3))
        Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(folder / f"im{i}.png")
    return folder


@functools.cache
def inductor_problem() -> str:
    """Why inductor cannot compile for this CPU (no C++ compiler, say), or ''."""
    try:
        torch.compile(lambda x: x * 2 + 1, backend="inductor", dynamic=False)(torch.arange(4.0))
    except Exception as e:
        lines = str(e).strip().splitlines()
        return f"{type(e).__name__}: {lines[0] if lines else ''}"
    return ""


def _rows(result):
    return result.rows.sort_values(KEY).reset_index(drop=True)


def _execution(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / "run.json").read_text())["execution"]


def _common(images, **more):
    return dict(datasets=[str(images)], scales=[F(2), F(5, 2)], metrics=["psnr", "ssim"], allow_untrained=True,
                progress=False, drift_images=0, **more)


def test_compiled_rows_equal_eager_rows_within_rounding_and_bf16_drift(images, tmp_path):
    if inductor_problem():
        pytest.skip(f"inductor cannot compile on this machine ({inductor_problem()}); the eager fallback is "
                    f"tested in test_a_failed_compilation_runs_eager_with_a_note")
    rows = {}
    for precision in ("fp32", "bf16"):
        for compiled in (None, "inductor"):
            out = tmp_path / f"{precision}-{compiled}"
            rows[precision, compiled] = _rows(run(models=["srcnn"], out=out, precision=precision, compile=compiled,
                                                  **_common(images)))
            if compiled:
                entry = _execution(out)[-1]
                assert entry["compiled"] == {"srcnn": ["forward"]} and "eager" not in entry
                assert entry["warmup_seconds"] > 0
    for r in rows.values():
        assert r[KEY].equals(rows["fp32", None][KEY]) and (r["error"] == "").all()
    fp32 = (rows["fp32", "inductor"]["psnr"] - rows["fp32", None]["psnr"]).abs().max()
    assert fp32 <= CALIBRATION_DB  # fused kernels sum in another order: a few uint8 ties at most
    assert (rows["fp32", "inductor"]["ssim"] - rows["fp32", None]["ssim"]).abs().max() <= 1e-5
    # compiling must not move a bf16 row further than bf16 itself moves it from fp32
    drift = (rows["bf16", None]["psnr"] - rows["fp32", None]["psnr"]).abs().max()
    assert 0 < drift < 0.1
    assert (rows["bf16", "inductor"]["psnr"] - rows["bf16", None]["psnr"]).abs().max() <= drift


def test_asdn_compiles_its_fmb_and_tiled_forwards_stay_eager(images, tmp_path, monkeypatch):
    from sr_bench.models.tiling import tiling_active
    from sr_bench.run import levers

    # aot_eager traces with dynamo and runs the same aten ops: no C compiler, and the rows must be identical
    tiled_calls = []  # per call of a compiled FMB after the warm-up: whether a tiled forward made it
    engage = levers.engage

    def spy(compiled):
        inner = compiled.compiled

        def call(*args, **kwargs):
            tiled_calls.append(tiling_active())
            return inner(*args, **kwargs)
        compiled.compiled = call

    def spying_engage(ctx, warm_up=True):
        report = engage(ctx, warm_up)
        for _, model in ctx.models:
            for net in levers.networks(model):
                if "features" in net.__dict__:  # compiled
                    spy(net.__dict__["features"])
        return report

    monkeypatch.setattr(levers, "engage", spying_engage)
    opts = dict(models=["asdn"], model_opts={"n_dab": 1}, **{**_common(images), "scales": [F(5, 2)]})
    eager = _rows(run(out=tmp_path / "eager", **opts))
    compiled = _rows(run(out=tmp_path / "compiled", compile="aot_eager", **opts))
    entry = _execution(tmp_path / "compiled")[-1]
    assert entry["compiled"] == {"asdn": ["features"]} and "eager" not in entry
    # 3 images x (x2.5: level 10 for the x2 pass, then x1.25 between levels 2 and 3)
    assert len(tiled_calls) == 3 * (1 + 2) and not any(tiled_calls)
    assert compiled["psnr"].equals(eager["psnr"]) and compiled["ssim"].equals(eager["ssim"])
    # tiled: the same network compiled by hand, its compiled FMB never entered, its output the eager one's
    from sr_bench.models.tiling import Tiling, super_resolve

    model = ASDNUpscaler(allow_untrained=True, n_dab=1)
    lr = torch.rand(1, 3, 10, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.inference_mode():
        eager_tiled = super_resolve(model, lr, F(5, 2), (25, 30), Tiling(6, 4))
        (compiled_fmb,) = levers.compile_network(model.net, "aot_eager")
        spy(compiled_fmb)
        tiled_calls.clear()
        assert torch.equal(super_resolve(model, lr, F(5, 2), (25, 30), Tiling(6, 4)), eager_tiled)
    assert tiled_calls == [] and compiled_fmb.calls > 0  # called, always eager


def test_a_failed_compilation_runs_eager_with_a_note(images, tmp_path):
    # CXX=false: inductor finds no C++ compiler for its CPU kernels (a fresh cache, so nothing compiled earlier
    # is reused); the run goes on eager and says so
    env = {**os.environ, "CXX": "false", "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor")}
    args = ["run", "--models", "srcnn", "--datasets", str(images), "--scales", "2", "--metrics", "psnr",
            "--allow-untrained", "--no-progress"]
    done = subprocess.run([sys.executable, "-c", "from sr_bench.cli import main; main()", *args, "--out",
                           str(tmp_path / "c"), "--compile"], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    notes = [x for x in done.stderr.splitlines() if x.startswith("note: --compile: srcnn runs eager")]
    assert len(notes) == 1 and "the compiled warm-up forward failed" in notes[0], done.stderr[-2000:]
    entry = _execution(tmp_path / "c")[-1]
    assert entry["compile"] == "inductor" and "srcnn" in entry["eager"]
    assert json.loads((tmp_path / "c" / "run.json").read_text())["notes"] == [notes[0][len("note: "):]]
    eager = run(models=["srcnn"], out=tmp_path / "e", datasets=[str(images)], scales=[F(2)], metrics=["psnr"],
                allow_untrained=True, progress=False)
    assert _rows(eager)["psnr"].equals(load_rows(tmp_path / "c").sort_values(KEY).reset_index(drop=True)["psnr"])


def test_a_torch_compile_that_cannot_start_runs_eager_with_a_note(images, tmp_path, monkeypatch):
    def unsupported(*args, **kwargs):
        raise RuntimeError("torch.compile is not supported on this Python")

    monkeypatch.setattr(torch, "compile", unsupported)
    result = run(models=["srcnn"], out=tmp_path / "c", compile="inductor", **_common(images))
    assert (result.rows["error"] == "").all()
    entry = _execution(tmp_path / "c")[-1]
    assert entry["eager"] == {"srcnn": "torch.compile failed (RuntimeError: torch.compile is not supported on this "
                                       "Python)"} and "compiled" not in entry and "warmup_seconds" not in entry
    assert result.notes[-1].startswith("--compile: srcnn runs eager: torch.compile failed")


def test_channels_last_and_cudnn_benchmark_are_recorded_per_session(images, tmp_path):
    before = torch.backends.cudnn.benchmark
    common = _common(images, models=["edsr-baseline"])
    plain = _rows(run(out=tmp_path / "plain", **common))
    nhwc = _rows(run(out=tmp_path / "nhwc", channels_last=True, cudnn_benchmark=True, **common))
    # NHWC convolutions sum in another order: float32 rounding, at most a few uint8 ties per image
    assert (nhwc["psnr"] - plain["psnr"]).abs().max() <= CALIBRATION_DB
    assert torch.backends.cudnn.benchmark == before  # a CPU run leaves the process's switch alone
    (first,) = _execution(tmp_path / "nhwc")
    assert first == {"compile": None, "channels_last": True, "cudnn_benchmark": True, "executor": "local",
                     "workers": 1}
    # a resume is a session of its own, with its own levers, and its resume command repeats them
    r = CliRunner().invoke(cli, ["run", "--resume", str(tmp_path / "nhwc"), "--no-progress", "--cudnn-benchmark"])
    assert r.exit_code == 0, r.output
    assert [e["channels_last"] for e in _execution(tmp_path / "nhwc")] == [True, False]
    assert [e["cudnn_benchmark"] for e in _execution(tmp_path / "nhwc")] == [True, True]


def test_lever_options_in_the_cli(images, tmp_path):
    from sr_bench.run.request import RunOptions

    assert RunOptions(compile="inductor", channels_last=True).flags() == ["--compile", "--channels-last"]
    assert RunOptions(compile="aot_eager", cudnn_benchmark=True).flags() == ["--compile", "aot_eager",
                                                                             "--cudnn-benchmark"]
    r = CliRunner().invoke(cli, ["run", "--models", "bicubic", "--datasets", str(images), "--compile", "nosuch",
                                 "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and r.output.count("\n") == 1, r.output
    assert "--compile nosuch: torch.compile has no such backend; known: " in r.output and "inductor" in r.output
    # --compile takes an optional backend: before another option it means inductor
    r = CliRunner().invoke(cli, ["run", "--models", "bicubic", "--datasets", str(images), "--metrics", "psnr",
                                 "--out", str(tmp_path / "b"), "--compile", "--cudnn-benchmark", "--no-progress"])
    assert r.exit_code == 0, r.output
    (entry,) = _execution(tmp_path / "b")
    assert entry["compile"] == "inductor" and entry["cudnn_benchmark"] and "compiled" not in entry  # no network
    help_text = CliRunner().invoke(cli, ["run", "--help"]).output
    for flag in ("--compile [BACKEND]", "--channels-last", "--cudnn-benchmark", "0.5 puts two actors on one GPU"):
        assert flag in " ".join(help_text.split()), flag


def test_half_a_gpu_per_ray_worker_puts_two_actors_on_one_gpu(images, tmp_path):
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'sr_bench[ray]'; the test extra has it)")
    # one logical GPU: Ray schedules GPU requests against it (no CUDA here, so the actors run their models on CPU)
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)
    try:
        common = {**_common(images, models=["srcnn"], device="cpu"), "scales": [F(2)]}
        result = run(out=tmp_path / "ray", executor="ray", workers=2, gpus_per_worker=0.5, **common)
    finally:
        ray.shutdown()
    assert (result.rows["error"] == "").all() and len(result.rows) == 3
    (entry,) = _execution(tmp_path / "ray")
    actors = entry["ray_actors"]
    assert entry["executor"] == "ray" and entry["workers"] == 2 and len(actors) == 2
    assert [a["gpu_ids"] for a in actors] == [["0"], ["0"]]  # both on the cluster's one GPU, at the same time
    assert [a["cuda_visible_devices"] for a in actors] == ["0", "0"]


# ------------------------------------------------------------------------------------------------ ASDN level skip

def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _every_level_pass(self, x, r, size):
    """The reference: the paper's blend O_i + w_r (O_{i-1} - O_i) with both levels always run."""
    from sr_bench.imaging.resize import imresize
    from sr_bench.models.strategies import fit

    i, w = lfr_level(r, self.levels)
    out = self.level_output(x, i)
    out = out + float(w) * (imresize(self.level_output(x, i - 1), size=(out.shape[-2], out.shape[-1])) - out)
    return fit(out, size, w == 0 and out.shape[-2] >= size[0] and out.shape[-1] >= size[1], "reference")


def test_asdn_level_skip_is_bit_identical_to_running_both_levels():
    skip = _script("asdn_level_skip")
    model = ASDNUpscaler(allow_untrained=True, n_dab=1)
    calls = []
    level_output = model.level_output
    model.level_output = lambda x, level: calls.append((level, tuple(model.level_input(x, level).shape[-2:]))) \
        or level_output(x, level)
    lr = torch.rand(1, 3, 7, 9, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    # integer scales, scales on a level (1.5, 1.7; 2.4 = x2 then x1.2) and between levels (1.25, 2.5, 3.3)
    for s in (F(2), F(3), F(4), F(3, 2), F(17, 10), F(12, 5), F(5, 4), F(5, 2), F(33, 10)):
        size = (math.ceil(7 * s), math.ceil(9 * s))
        calls.clear()
        fast = model.super_resolve(lr, s, size)
        ran = list(calls)
        calls.clear()
        model.lfr_pass = _every_level_pass.__get__(model)
        try:
            reference = model.super_resolve(lr, s, size)
        finally:
            del model.lfr_pass
        assert torch.equal(fast, reference), s  # 0 * (O_{i-1} - O_i) adds +-0 to O_i: the same bits
        # the benchmark's account of the forwards is the adapter's, with and without the skip
        assert ran == skip.level_runs((7, 9), s) and calls == skip.level_runs((7, 9), s, skip=False), s
        on_level = all(lfr_level(r)[1] == 0 for r in skip.recursive_plan(s))
        assert len(ran) < len(calls) if on_level else len(ran) <= len(calls)


def test_level_skip_flops_follow_the_cost_counter_and_the_protocol_sizes():
    from sr_bench.protocols import get_protocol
    from sr_bench.run.cost import timed_forward
    from sr_bench.scales import parse_scales

    skip = _script("asdn_level_skip")
    a, b = skip.asdn_cost(n_dab=1)
    model = ASDNUpscaler(allow_untrained=True, n_dab=1)
    lr = torch.rand(1, 3, 6, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for s in (F(2), F(5, 4), F(5, 2)):  # one level; two levels; x2 then two levels
        counted = timed_forward(model, lr, s, (math.ceil(6 * s), math.ceil(8 * s)), count_flops=True)[2]
        assert counted == sum(a * h * w + b for _, (h, w) in skip.level_runs((6, 8), s)), s
    from sr_bench.models.archs.metasr import MetaSRUpscaler

    ma, mb, mc = skip.metasr_cost()
    counted = timed_forward(MetaSRUpscaler(allow_untrained=True), lr, F(5, 2), (15, 20), count_flops=True)[2]
    assert counted == ma * 6 * 8 + mb * 15 * 20 + mc
    protocol = get_protocol("metasr")
    for hr in ((37, 41), (64, 50)):
        for s in parse_scales(skip.GRID_SCALES):
            case = protocol.prepare(torch.zeros(3, *hr, dtype=torch.float64), s)
            assert skip.metasr_sizes(hr, s) == (tuple(case.lr.shape[-2:]), tuple(case.sr_size)), (hr, s)
