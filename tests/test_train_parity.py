"""The training forward of every network family (``Upscaler.training_forward`` on each adapter, autograd on)
computes what the deployed adapter computes (``Upscaler.super_resolve``, inference mode): otherwise trained weights
would be tuned to a pipeline the benchmark never runs. Untrained networks, small random inputs, float32 on both
sides."""

from __future__ import annotations

from fractions import Fraction as F

import pytest
import torch

from sr_bench.imaging.color import rgb2ycbcr_matlab_double
from sr_bench.imaging.resize import imresize
from sr_bench.train.families import build

RGB_CASES = [("edsr-baseline", "2", F(2)), ("dbdn", "3", F(3)), ("metasr", "1.7", F(17, 10)),
             ("asdn", "1.5", F(3, 2)), ("asdn", "2", F(2)), ("asdn", "1.35", F(27, 20))]
Y_CASES = [("lapsrn", "2", F(2)), ("mslapsrn", "4", F(4)), ("srcnn", "2.5", F(5, 2)), ("vdsr", "1.5", F(3, 2))]


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def _lr(h=9, w=10):
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(5))  # float32, exact in float64


def _hr_like(lr, s):
    return torch.zeros(1, 3, int(lr.shape[-2] * s), int(lr.shape[-1] * s))


def _training_forward(name, text, s):
    """(trainable, LR, HR-shaped zeros, the training forward's prediction) for ``name`` at scale ``s``."""
    t = build(name, text, {}, torch.device("cpu"))
    lr = _lr()
    hr = _hr_like(lr, s)
    with torch.no_grad():
        pred, _ = t.predict(lr, hr, s, torch.Generator().manual_seed(0))
    return t, lr, hr, pred


@pytest.mark.parametrize("name,text,s", RGB_CASES)
def test_rgb_training_forward_is_the_deployed_forward(name, text, s):
    t, lr, hr, pred = _training_forward(name, text, s)
    deployed = t.model.super_resolve(lr.double(), s, tuple(hr.shape[-2:]))
    assert pred.shape == deployed.shape
    err = (pred.double().clamp(0, 1) - deployed).abs().max().item()
    assert err < 2e-6, (name, s, err)  # float32 network outputs in 0..255, divided by 255


@pytest.mark.parametrize("name,text,s", Y_CASES)
def test_y_training_forward_is_the_deployed_luma(name, text, s):
    t, lr, hr, pred = _training_forward(name, text, s)
    ycc = rgb2ycbcr_matlab_double(lr.double())
    with torch.inference_mode():
        y = t.model.luma(ycc[:, :1], imresize(ycc, scale=s)[:, :1], s).double()
    y = y[..., : hr.shape[-2], : hr.shape[-1]]
    assert pred.shape[-2:] == y.shape[-2:]
    err = (pred.double() - y).abs().max().item()
    assert err < 1e-6, (name, s, err)


def test_liif_training_queries_are_the_deployed_pixels():
    t = build("liif", "2.5", {}, torch.device("cpu"))
    lr, s = _lr(), F(5, 2)
    hr = _hr_like(lr, s)
    gen = torch.Generator().manual_seed(0)
    state = gen.get_state()
    with torch.no_grad():
        pred, _ = t.predict(lr, hr, s, gen)
    gen.set_state(state)  # the same pixel draw, to find which pixels were queried
    h, w = hr.shape[-2:]
    idx = torch.randperm(h * w, generator=gen)[: pred.shape[1]]
    deployed = t.model.super_resolve(lr.double(), s, (h, w)).flatten(2).transpose(1, 2)[0, idx]
    err = (pred[0].double().clamp(0, 1) - deployed).abs().max().item()
    assert err < 2e-6, err
