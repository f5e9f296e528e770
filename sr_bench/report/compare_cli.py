"""``srbench compare``: is model B really better than A (paired statistics), and where does it differ (a figure)."""

from __future__ import annotations

from pathlib import Path

import click

from sr_bench.cli_group import RESULTS_DIR
from sr_bench.errors import UserError


@click.command(short_help="Is model B really better than A? Paired statistics; --visual: a crop figure.")
@click.argument("run_a", metavar="RUN")
@click.argument("run_b", metavar="[RUN_B]", required=False)
@click.option("--models", "-m", default=None, metavar="A,B",
              help="The two models, A first. With RUN_B: A from RUN, B from RUN_B. May be omitted when RUN holds "
                   "exactly two models, or RUN and RUN_B one each.")
@click.option("--metrics", default=None, help="Comma-separated metrics (default: every metric measured for both).")
@click.option("--format", "fmt", type=click.Choice(["markdown", "csv"]), default="markdown", show_default=True)
@click.option("--resamples", type=click.IntRange(100, 10_000_000), default=10_000, show_default=True,
              help="Bootstrap resamples for the 95% CI.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap.")
@click.option("--visual", default=None, metavar="DATASET/IMAGE",
              help="Instead of statistics: re-create both models from the run(s), run them on this image and "
                   "draw HR with a box, then the box crop of HR and of each SR, captioned with PSNR/SSIM.")
@click.option("--scale", "scale", default=None, metavar="S",
              help="Scale of the --visual image (needed when the run has several).")
@click.option("--box", default=None, metavar="X,Y,W,H",
              help="Crop box in pixels of the compared HR. Default: the window of 1/4 of the height and width "
                   "(at least 8 px) inside the shave border where the two SR images differ most (sum of |A - B|).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None,
              help="Figure file (.png, .pdf or .svg). Default: <RUN folder>/compare_<A>_vs_<B>_<dataset>_<image>"
                   "_x<scale>.png")
@click.option("--save-sr", "save_sr", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Also write each model's SR image (as the protocol quantises it) as a PNG into DIR.")
@click.option("--device", default="auto", show_default=True,
              help="Device for the --visual re-run (auto | cpu | cuda | cuda:N); use the run's for exact numbers.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar of the --visual re-run.")
@RESULTS_DIR
@click.pass_context
def compare(ctx, run_a, run_b, models, metrics, fmt, resamples, seed, visual, scale, box, out_path, save_sr, device,
            no_progress, results_dir):
    """Compare model A with model B on the same images: per (dataset, scale) and metric, the mean difference
    B - A with a paired bootstrap 95% CI, B's wins/ties/losses and a Wilcoxon signed-rank p-value. RUN is a run
    folder, a run id under --results-dir, or 'latest'; rows pair on (dataset, image, scale) and must come from the
    same protocol (same fingerprint).

    \b
    Examples:
      srbench run --models bicubic,srcnn=srcnn_x2.pth --datasets set5,set14 --scales 2
      srbench compare latest --models bicubic,srcnn                 is SRCNN really better than bicubic?
      srbench compare latest --models bicubic,srcnn --format csv > cmp.csv
      srbench compare RUN_OLD RUN_NEW                               one model per run: old (A) vs new (B)
      srbench compare latest --models bicubic,srcnn --visual Set5/butterfly --scale 2 --out fig.png
      srbench compare latest --models bicubic,srcnn --visual Set5/baby --scale 2 --box 100,120,64,64 --save-sr sr/

    --visual re-creates the models from the run's run.json (checkpoints, --model-opt, plugins) and checks that each
    reproduces its stored PSNR/SSIM for that image (within 1e-9); a mismatch is an error (exit 1), no figure.
    """
    import pandas as pd

    from sr_bench.report.compare import Side, compare_table, pair_rows, to_csv, to_markdown
    from sr_bench.report.tables import provenance_line
    from sr_bench.report.visual import ReproductionMismatch
    from sr_bench.run.grid import split_list
    from sr_bench.store import load_rows, resolve_run

    if visual is None:
        for name, value in (("--scale", scale), ("--box", box), ("--out", out_path), ("--save-sr", save_sr)):
            if value is not None:
                raise UserError(f"{name} belongs to --visual DATASET/IMAGE; add --visual, e.g. --visual Set5/baby")
    dir_a = resolve_run(run_a, Path(results_dir))
    dir_b = resolve_run(run_b, Path(results_dir)) if run_b else dir_a
    rows_a = load_rows(dir_a)
    rows_b = load_rows(dir_b) if run_b else rows_a
    names = _pick_models(models, dir_a, rows_a, dir_b, rows_b, two_runs=bool(run_b))
    a, b = (Side(model, run_dir.name, f"{model}@{run_dir.name}" if names[0] == names[1] else model,
                 bool(rows.loc[rows["model"] == model, "untrained"].any()))
            for model, run_dir, rows in zip(names, (dir_a, dir_b), (rows_a, rows_b), strict=True))
    both = pd.concat([rows_a[rows_a["model"] == a.model], rows_b[rows_b["model"] == b.model]])
    runs = dir_a.name if dir_a == dir_b else f"{dir_a.name} vs {dir_b.name}"
    if visual is not None:
        try:
            _visual(a, b, dir_a, rows_a, dir_b, rows_b, visual, scale, box, out_path, save_sr, device, not no_progress)
        except ReproductionMismatch as e:
            click.echo(f"error: {e}", err=True)
            ctx.exit(1)
    else:
        pairing = pair_rows(rows_a, rows_b, a, b, tuple(split_list(metrics)) if metrics else None)
        if pairing.pairs.empty:
            raise UserError(f"{a.label} and {b.label} have no error-free rows on the same (dataset, image, scale); "
                            "nothing to compare")
        table = compare_table(pairing, resamples, seed)
        if fmt == "csv":
            click.echo(to_csv(table, pairing), nl=False)
        else:
            click.echo(to_markdown(table, pairing, resamples, seed))
    click.echo(f"{runs}: {provenance_line(both)}", err=True)


def _pick_models(models, dir_a, rows_a, dir_b, rows_b, two_runs: bool) -> tuple[str, str]:
    from sr_bench.errors import unknown
    from sr_bench.run.grid import split_list

    in_a, in_b = list(dict.fromkeys(rows_a["model"])), list(dict.fromkeys(rows_b["model"]))
    if models:
        names = split_list(models)
        if len(names) != 2:
            raise UserError(f"--models takes two names, A,B (e.g. --models bicubic,srcnn); got {models!r}")
    elif not two_runs:
        if len(in_a) != 2:
            raise UserError(f"run {dir_a.name} holds {len(in_a)} model(s) ({', '.join(in_a)}); name two with "
                            "--models A,B")
        names = in_a
    else:
        if len(in_a) != 1 or len(in_b) != 1:
            raise UserError(f"name the models with --models A,B (A from {dir_a.name}: {', '.join(in_a)}; "
                            f"B from {dir_b.name}: {', '.join(in_b)})")
        names = [in_a[0], in_b[0]]
    for name, run_dir, known in ((names[0], dir_a, in_a), (names[1], dir_b, in_b)):
        if name not in known:
            raise UserError(f"{unknown('model', name, known)} (models of run {run_dir.name}: {', '.join(known)})")
    if not two_runs and names[0] == names[1]:
        raise UserError(f"--models names {names[0]!r} twice; give two different models of run {dir_a.name}")
    return names[0], names[1]


def _visual(a, b, dir_a, rows_a, dir_b, rows_b, visual, scale, box, out_path, save_sr, device, progress):
    from sr_bench.errors import unknown
    from sr_bench.report.compare import check_same_protocol
    from sr_bench.report.visual import Source, default_out, visual_compare
    from sr_bench.scales import parse_scale, scale_text

    mine = rows_a[rows_a["model"] == a.model]
    check_same_protocol(mine, rows_b[rows_b["model"] == b.model], a, b)
    dataset_text, _, image = visual.strip().rpartition("/")
    if not dataset_text or not image:  # no "/" leaves dataset_text empty
        raise UserError(f"bad --visual {visual!r}: write DATASET/IMAGE, e.g. Set5/baby (names as in the run's rows)")
    datasets = list(dict.fromkeys(mine["dataset"]))
    dataset = next((d for d in datasets if d.lower() == dataset_text.lower()), None)
    if dataset is None:
        raise UserError(f"{unknown('dataset', dataset_text, datasets)} (datasets of run {dir_a.name})")
    images = list(dict.fromkeys(mine.loc[mine["dataset"] == dataset, "image"]))
    if image not in images and Path(image).stem in images:
        image = Path(image).stem  # Set5/baby.png means the image baby
    if image not in images:
        raise UserError(f"{unknown('image', image, images)} (images of {dataset} in run {dir_a.name})")
    scales = list(dict.fromkeys(mine.sort_values("scale").loc[lambda r: (r["dataset"] == dataset)
                                                               & (r["image"] == image), "scale_text"]))
    if scale is None:
        if len(scales) != 1:
            raise UserError(f"--scale is needed: {dataset}/{image} was measured at x{', x'.join(scales)}")
        scale = scales[0]
    s = parse_scale(scale)
    if scale_text(s) not in scales:
        raise UserError(f"scale {scale} is not in run {dir_a.name} for {dataset}/{image}; it has x{', x'.join(scales)}")
    sources = [Source(dir_a, a.model, a.label, rows_a), Source(dir_b, b.model, b.label, rows_b)]
    out = Path(out_path) if out_path else default_out(dir_a, [a.label, b.label], dataset, image, scale_text(s))
    result = visual_compare(sources, dataset, image, s, out, box=box, save_sr_dir=Path(save_sr) if save_sr else None,
                            device=device, progress=progress)
    x, y, w, h = result.box
    height, width = result.hr.shape[:2]
    where = (f"inside the {result.shave}-px shave border" if height - 2 * result.shave >= h
             and width - 2 * result.shave >= w else "anywhere (it does not fit inside the shave border)")
    how = (f"default: the {w}x{h} window (1/4 of each side, at least 8 px) {where} with the largest sum of "
           f"|{a.label} - {b.label}|" if result.auto_box else "given")
    click.echo(f"figure: {result.out}")
    click.echo(f"box: {x},{y},{w},{h} (x,y,w,h; {how})")
    for r in result.renders:
        nums = ", ".join(f"{m.upper()} {v!r}" for m, v in r.values.items())
        click.echo(f"{r.label}: {nums} (re-computed = the run's stored row)")
    for p in result.saved or []:
        click.echo(f"sr: {p}")
