"""``srbench train --val DATASET --val-scales 2,3.5 --val-every N``: the model in training scored like a result row,
through the runner's own ``sr_bench.run.evaluation.evaluate_image``, with bicubic beside it (docs/training.md,
"Validation and the best checkpoint").
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import torch

from sr_bench.data import resolve_dataset
from sr_bench.errors import UserError, unknown
from sr_bench.models.building import check_scales
from sr_bench.protocols import choose_protocol
from sr_bench.run.context import Setup, build_context
from sr_bench.run.evaluation import evaluate_image
from sr_bench.run.grid import ModelSpec
from sr_bench.run.request import RunRequest
from sr_bench.scales import parse_scales, scale_text
from sr_bench.train.families import Trainable

METRICS = ("psnr", "ssim")  # both higher-is-better: the best checkpoint is the highest mean
BASELINE = "bicubic"


def default_scales(t: Trainable) -> list[Fraction]:
    """The trained scale of a one-network-per-scale model; else x2, x3, x4 where trained, else the largest."""
    ints = [s for s in t.scales if s.denominator == 1 and 2 <= s <= 4]
    return ints or [max(t.scales)]


class Validator:
    def __init__(self, t: Trainable, dataset: str, scales_text: str | None, metric: str, device: torch.device,
                 data_root: str | None = None):
        if metric not in METRICS:
            raise unknown("validation metric", metric, METRICS)
        self.t, self.metric = t, metric
        self.dataset = resolve_dataset(dataset, data_root=data_root)
        self.scales = parse_scales(scales_text) if scales_text else default_scales(t)
        check_scales([(t.name, t.model)], self.scales)
        request = RunRequest(models=(BASELINE,), datasets=(self.dataset.name,), scales=self.scales,
                             protocol=choose_protocol("auto", self.scales).name, metrics=METRICS)
        self.ctx = build_context(Setup(request, run_id="train-validation", device=str(device),
                                       threads=torch.get_num_threads()), extra=((ModelSpec(t.name), t.model),))

    def _means(self, model: str) -> dict[str, dict[str, float]]:
        """{scale text: {metric: mean over the images}} of ``model`` (one of the context's two)."""
        other = self.t.name if model == BASELINE else BASELINE
        skip = frozenset((other, scale_text(s)) for s in self.scales)
        rows = [row for item in self.dataset.items
                for row in evaluate_image(self.ctx, self.dataset.name, item, self.scales, skip=skip)[0]]
        bad = [r for r in rows if r["error"]]
        if bad:
            r = bad[0]
            raise UserError(f"validation of {model} on {self.dataset.name}/{r['image']} x{r['scale_text']} failed: "
                            f"{r['error']}")
        return {scale_text(s): {m: float(np.mean([r[m] for r in rows if r["scale_text"] == scale_text(s)]))
                                for m in METRICS} for s in self.scales}

    def baseline(self) -> dict[str, dict[str, float]]:
        return self._means(BASELINE)

    def evaluate(self, weights: dict | None = None) -> dict[str, dict[str, float]]:
        """The trained network's means now, or holding ``weights`` (e.g. the EMA average) for the evaluation; in eval
        mode for it, then back in training mode with its own weights."""
        module = self.t.module
        saved = None if weights is None else {k: v.detach().clone() for k, v in module.state_dict().items()}
        if weights is not None:
            module.load_state_dict(weights)
        module.eval()
        try:
            return self._means(self.t.name)
        finally:
            module.train()
            if saved is not None:
                module.load_state_dict(saved)

    def score(self, means: dict[str, dict[str, float]]) -> float:
        """The number the best checkpoint is chosen by: the metric's mean over the validation scales."""
        return float(np.mean([v[self.metric] for v in means.values()]))

    def describe(self) -> dict:
        return {"dataset": self.dataset.name, "images": len(self.dataset.items),
                "scales": [scale_text(s) for s in self.scales], "protocol": self.ctx.protocol.name,
                "protocol_fingerprint": self.ctx.protocol.fingerprint, "metric": self.metric,
                "metrics": list(METRICS), "precision": "fp32",
                "path": "sr_bench.run.evaluation.evaluate_image (the rows `srbench run` computes)"}
