"""`--models basicsr:ARCH=net_g.pth`: a BasicSR-trained checkpoint (written here by BasicSR's own arch class) runs
through sr_bench and gives exactly what BasicSR's network gives."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch

from sr_bench.errors import UserError
from sr_bench.models import create_model


@pytest.fixture()
def experiment(tmp_path, basicsr):
    from sr_bench.models.basicsr_bridge import arch_registry

    registry = arch_registry()
    opts = {"num_in_ch": 3, "num_out_ch": 3, "num_feat": 16, "num_block": 2, "upscale": 2}
    torch.manual_seed(0)
    net = registry.get("MSRResNet")(**opts)
    exp = tmp_path / "experiments" / "tiny"
    (exp / "models").mkdir(parents=True)
    torch.save({"params": net.state_dict()}, exp / "models" / "net_g_latest.pth")
    yml = "name: tiny\nscale: 2\nnetwork_g:\n  type: MSRResNet\n" + "".join(f"  {k}: {v}\n" for k, v in opts.items())
    (exp / "tiny.yml").write_text(yml)
    return net.eval(), exp / "models" / "net_g_latest.pth"


def test_checkpoint_with_options_yaml_matches_basicsr(experiment):
    net, ckpt = experiment
    model = create_model("basicsr:MSRResNet", checkpoint=str(ckpt))
    assert model.config["options_source"].endswith("tiny.yml") and model.native_scale == 2
    lr = torch.rand(1, 3, 12, 10, dtype=torch.float64)
    ours = model.super_resolve(lr, Fraction(2), (24, 20))
    with torch.inference_mode():
        theirs = net(lr.float()).double().clamp(0, 1)
    assert torch.equal(ours, theirs)
    assert model.strategy_for(Fraction(3, 2)) == "ceil-then-down"
    assert model.super_resolve(lr, Fraction(3, 2), (18, 15)).shape[-2:] == (18, 15)
    assert len(model.checkpoint_sha256) == 64


def test_options_from_model_opts_and_errors(experiment, tmp_path):
    net, ckpt = experiment
    lone = tmp_path / "lone.pth"
    lone.write_bytes(ckpt.read_bytes())
    with pytest.raises(UserError, match="does not fit"):  # default MSRResNet options are bigger than this net
        create_model("basicsr:MSRResNet", checkpoint=str(lone))
    model = create_model("basicsr:MSRResNet", checkpoint=str(lone), num_feat=16, num_block=2, upscale=2)
    assert model.native_scale == 2
    with pytest.raises(UserError, match="did you mean 'MSRResNet'"):
        create_model("basicsr:MSRResnet", checkpoint=str(lone))
    with pytest.raises(UserError, match="rejects options"):
        create_model("basicsr:MSRResNet", checkpoint=str(lone), num_feats=16)


def test_runner_with_basicsr_model(experiment, tmp_path):
    import numpy as np
    from PIL import Image

    from sr_bench.run.runner import run

    _, ckpt = experiment
    d = tmp_path / "imgs"
    d.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 30, 3), dtype=np.uint8)).save(d / "x.png")
    result = run(models=[f"basicsr:MSRResNet={ckpt}", "bicubic"], datasets=[str(d)], scales=[Fraction(2)],
                 metrics=["psnr"], out=tmp_path / "run", progress=False)
    rows = result.rows.set_index("model")
    assert (rows.loc["basicsr:MSRResNet", "error"] == ""
            and len(rows.loc["basicsr:MSRResNet", "checkpoint_sha256"]) == 64)
