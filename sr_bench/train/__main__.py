"""``python -m sr_bench.train ARGS`` = ``srbench train ARGS``: the entry torchrun starts in every process
(``torchrun --nproc-per-node N -m sr_bench.train MODEL --out PATH ...``)."""

import sys

from sr_bench.cli import cli

if __name__ == "__main__":
    sys.exit(cli(["train", *sys.argv[1:]], prog_name="srbench"))
