"""``srbench datasets ...``: list, verify and fetch datasets described by cards (attached to the main CLI)."""

from __future__ import annotations

import click

from sr_bench.cli_group import DATA_ROOT, UserErrorGroup
from sr_bench.data.roots import ORDER
from sr_bench.errors import UserError

_GROUP_HELP = f"""List, verify and download benchmark datasets.

    A dataset is a card (built in, or a folder of cards in $SRBENCH_CARDS) listing its files with byte and pixel
    sha256, citation and source; its images live in <data root>/<folder>/. The data root is {ORDER}. A root that is
    given (--data-root, $SRBENCH_DATA) is the only place looked in; otherwise each dataset is read from ./datasets if
    its folder is there, else from the cache, where `srbench datasets fetch` installs. Anywhere a dataset is named,
    an image folder path or `demo` (images bundled with scikit-image) also works.
    """


@click.group(cls=UserErrorGroup, name="datasets", help=_GROUP_HELP)
def datasets():
    pass


@datasets.command(name="list", short_help="Show the dataset cards and which are present.")
@DATA_ROOT
def list_cmd(data_root):
    """Show every dataset card and whether its images are present under the data root."""
    from sr_bench.data import list_datasets, resolve_root
    from sr_bench.data.resolve import DEMO_FILES

    rows = [(s.name, ", ".join(s.aliases) or "-", str(s.n_files), s.state) for s in list_datasets(data_root)]
    rows.append(("demo", "-", str(len(DEMO_FILES)), "yes (bundled with scikit-image)"))
    header = ("name", "aliases", "images", "present")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    click.echo(f"data root: {resolve_root(data_root).describe()}")
    for r in [header, *rows]:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


@datasets.command(short_help="Check files against their cards (sha256, else decoded pixels).")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@DATA_ROOT
def verify(names, data_root):
    """Check each file's size and sha256 against the card; if the bytes differ, compare the decoded pixels
    (a lossless re-encode is reported as 'ok (re-encoded)'). No NAME: every card whose folder exists.

    Exits with 1 if any file is missing or differs."""
    from sr_bench.data import list_datasets, resolve_root
    from sr_bench.data.roots import where_hint
    from sr_bench.data.verify import OK_UNHASHED
    from sr_bench.data.verify import verify as verify_one

    if not names:
        names = tuple(s.card.key for s in list_datasets(data_root) if s.found)
        if not names:
            raise UserError(f"no dataset found under the data root ({resolve_root(data_root).describe()}); "
                            f"name one, or set --data-root / SRBENCH_DATA")
    failed = False
    for name in names:
        report = verify_one(name, data_root)
        click.echo(report.summary())
        if report.folder_missing:
            click.echo(f"  {where_hint(report.card.key)}")
        for c in [] if report.folder_missing else report.checks:
            if c.status not in ("ok", OK_UNHASHED):  # problems, and re-encoded files worth knowing about
                click.echo(f"  {c.name}: {c.status}" + (f" - {c.detail}" if c.detail else ""))
        if report.extra:
            shown = ", ".join(report.extra[:5]) + (", ..." if len(report.extra) > 5 else "")
            click.echo(f"  extra files (not in the card, never read): {shown}")
        failed |= not report.ok
    click.get_current_context().exit(1 if failed else 0)


@datasets.command(short_help="Download, verify and install a dataset atomically.")
@click.argument("name")
@click.option("--url", default=None, help="Archive to download instead of the card's (http(s)/file URL or a local "
              "path; zip or tar, files may sit in sub-folders). Default: $SRBENCH_MIRROR/<archive name>, else the "
              "card's URL.")
@DATA_ROOT
@click.option("--force", is_flag=True, help="Replace an existing folder that does not verify.")
@click.option("--no-progress", is_flag=True, help="Hide the download progress bar.")
def fetch(name, url, data_root, force, no_progress):
    """Download dataset NAME, verify every file, and install it as <data root>/<folder>/ in one step.

    Nothing is left behind on failure (network error, truncated download, corrupt archive, wrong files)."""
    from sr_bench.data.fetch import fetch as fetch_one

    result = fetch_one(name, data_root=data_root, url=url, force=force, progress=not no_progress,
                       say=lambda m: click.echo(m, err=True))
    click.echo(result.message())
