"""``srbench train``: weights for the models that have no downloadable release (ASDN, FSDN, DBDN, CSFM, ...).

    from sr_bench.train import train
    result = train("edsr-baseline", ["demo"], Path("edsr_x2.pt"), scales="2", steps=1000)
    # result.checkpoint loads with `srbench run --models edsr-baseline=edsr_x2.pt`

``patches`` makes the training pairs (a function of seed and step) from a bounded image cache, ``families`` knows how
each network family trains and saves, ``recipe`` resolves the run's values (flags, the card's ``[train]`` block,
defaults), ``losses`` computes them, ``prefetch`` makes batches ahead, ``distributed`` is the torchrun/DDP side,
``validation`` scores the network through the runner, ``checkpoint`` writes the files, ``loop`` runs the steps.
``python -m sr_bench.train`` is ``srbench train`` (what torchrun starts).
"""

from sr_bench.train.loop import TrainResult, train

__all__ = ["TrainResult", "train"]
