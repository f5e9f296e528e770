"""``srbench train``: weights for the models that have no downloadable release (ASDN, FSDN, DBDN, CSFM, ...).

    from sr_bench.train import train
    result = train("edsr-baseline", ["demo"], Path("edsr_x2.pt"), scales="2", steps=1000)
    # result.checkpoint loads with `srbench run --models edsr-baseline=edsr_x2.pt`

``python -m sr_bench.train`` is ``srbench train`` (what torchrun starts); ``loop`` runs the steps.
"""

from sr_bench.train.loop import TrainResult, train

__all__ = ["TrainResult", "train"]
