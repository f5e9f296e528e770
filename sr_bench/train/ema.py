"""An exponential moving average of the weights being trained (``srbench train --ema DECAY``).

BasicSR's ``net_g_ema`` convention: the average starts as the initial weights and after every optimizer step
becomes ``decay * ema + (1 - decay) * weights``; it is what ``PATH`` holds when ``--ema`` is on (the optimised
weights are in ``PATH.resume``). Every entry of the state_dict is averaged, so fixed tensors (EDSR's mean shift)
stay what they are and the file loads like any other.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class EMA:
    def __init__(self, module: nn.Module, decay: float):
        self.decay = decay
        self.live = module.state_dict()  # detached views of the parameters: they follow the optimizer's steps
        self.state = {k: v.detach().clone() for k, v in self.live.items()}
        floats = [k for k, v in self.live.items() if v.is_floating_point()]
        self._pairs = ([self.state[k] for k in floats], [self.live[k] for k in floats])
        self._other = [k for k in self.live if k not in set(floats)]

    @torch.no_grad()
    def update(self) -> None:
        torch._foreach_lerp_(self._pairs[0], self._pairs[1], 1.0 - self.decay)  # ema += (1-d) (w - ema)
        for k in self._other:
            self.state[k].copy_(self.live[k])

    @torch.no_grad()
    def load(self, state: dict[str, torch.Tensor]) -> None:
        for k, v in self.state.items():
            v.copy_(state[k])
