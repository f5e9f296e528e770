"""`--models spandrel=PATH`: checkpoints written by spandrel's own architecture classes (random weights, small
configs) run through sr_bench exactly as spandrel's descriptor call runs them; and sr_bench's RCAN against
spandrel's RCAN on one random official-layout state dict (an independent implementation of the same network)."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
import torch

from sr_bench.errors import UserError

spandrel = pytest.importorskip("spandrel")
pytestmark = pytest.mark.filterwarnings("ignore:torch.meshgrid")  # spandrel's own arch code

# small transformers: two stages of two blocks, 12 channels, window 8 (spandrel reads all of it from the keys)
SMALL = {"in_chans": 3, "img_size": 16, "window_size": 8, "img_range": 1.0, "depths": [2, 2], "embed_dim": 12,
         "num_heads": [2, 2], "mlp_ratio": 2, "resi_connection": "1conv"}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from spandrel.architectures.HAT import HAT
    from spandrel.architectures.SwinIR import SwinIR

    d = tmp_path_factory.mktemp("spandrel")
    nets = {"swinir_x2.pth": lambda: SwinIR(upscale=2, upsampler="pixelshuffle", **SMALL),
            "hat_x4.pth": lambda: HAT(upscale=4, upsampler="pixelshuffle", compress_ratio=3, squeeze_factor=4, **SMALL),
            "swinir_denoise_x1.pth": lambda: SwinIR(upscale=1, upsampler="", **SMALL)}
    out = {}
    for i, (name, make) in enumerate(nets.items()):
        torch.manual_seed(i)
        torch.save(make().state_dict(), d / name)
        out[name.split(".")[0]] = d / name
    return out


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    from PIL import Image

    d = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    for name, (h, w) in {"a": (40, 36), "b": (36, 44)}.items():
        smooth = np.kron(rng.integers(0, 256, (h // 4, w // 4, 3)), np.ones((4, 4, 1)))  # structure, not noise
        noisy = np.clip(smooth + rng.normal(0, 8, smooth.shape), 0, 255)
        Image.fromarray(noisy.astype(np.uint8)).save(d / f"{name}.png")
    return d


def descriptor(path):
    return spandrel.ModelLoader().load_from_file(path).eval()


def built(text: str):
    from sr_bench.models.building import build_model
    from sr_bench.run.grid import ModelSpec

    spec = ModelSpec.parse(text)
    return spec, build_model(spec.name, spec.checkpoint)


@pytest.mark.parametrize("key,k,arch", [("swinir_x2", 2, "SwinIR"), ("hat_x4", 4, "HAT")])
def test_model_is_the_descriptor_call(files, key, k, arch):
    spec, model = built(f"spandrel={files[key]}")
    assert spec.name == f"spandrel:{arch}({key})" and model.name == spec.name
    assert model.config["architecture"] == arch and model.config["spandrel"] == spandrel.__version__
    assert model.scales.integers == {k} and model.strategy_for(Fraction(k)) == "native"
    d = descriptor(files[key])
    for h, w in [(17, 20), (11, 13)]:  # 11x13 is below both networks' 16 px minimum: padded, cropped back
        lr = torch.rand(1, 3, h, w, dtype=torch.float64, generator=torch.Generator().manual_seed(h))
        ours = model.super_resolve(lr, Fraction(k), (k * h, k * w))
        assert torch.equal(ours, d(lr.float()).double())
    # a protocol that floors the SR size asks for less: the top-left crop of the same output
    assert torch.equal(model.super_resolve(lr, Fraction(k), (k * h - 1, k * w - 3)), ours[..., :-1, :-3])


def test_named_row_and_several_files(files):
    from sr_bench.run.request import RunRequest

    req = RunRequest(models=(f"spandrel={files['swinir_x2']}", f"big=spandrel:{files['hat_x4']}"), datasets=("x",),
                     scales=(Fraction(2),))
    assert [(s.name, s.checkpoint) for s in req.specs] == [
        ("spandrel:SwinIR(swinir_x2)", f"spandrel:{files['swinir_x2']}"), ("big", f"spandrel:{files['hat_x4']}")]
    _, model = built(f"big=spandrel:{files['hat_x4']}")
    assert model.name == "big" and model.config["architecture"] == "HAT"
    with pytest.raises(UserError, match="appears twice"):
        RunRequest(models=(f"spandrel={files['swinir_x2']}",) * 2, datasets=("x",), scales=(Fraction(2),))


def test_run_rows_equal_a_direct_descriptor_plugin(files, images, tmp_path, clean_registry):
    """The whole `srbench run` path (protocol, quantisation, metrics) gives a spandrel row exactly what it gives a
    plugin that calls spandrel's descriptor itself, at the descriptor's scale and with a named strategy."""
    from sr_bench import Upscaler, register_model
    from sr_bench.models.interface import ScaleSupport
    from sr_bench.run.runner import run

    @register_model("direct")
    class Direct(Upscaler):
        def __init__(self, checkpoint=None):
            self.d = descriptor(checkpoint)
            super().__init__(name="direct", scales=ScaleSupport.integers(self.d.scale))

        def super_resolve(self, lr, scale, size):
            return self.d(lr.float()).double()[..., :size[0], :size[1]]

    ARCH = {"swinir_x2": "SwinIR", "hat_x4": "HAT"}
    for key, k in [("swinir_x2", 2), ("hat_x4", 4)]:
        rows = run(models=[f"spandrel={files[key]}", f"direct={files[key]}"], datasets=[str(images)],
                   scales=[Fraction(k)], metrics=["psnr", "ssim"], out=tmp_path / key, progress=False).rows
        ours, theirs = (rows[rows.model == m].sort_values("image") for m in (f"spandrel:{ARCH[key]}({key})", "direct"))
        assert (ours.error == "").all() and len(ours) == 2
        np.testing.assert_array_equal(ours[["psnr", "ssim"]].to_numpy(), theirs[["psnr", "ssim"]].to_numpy())
        assert ours.checkpoint_sha256.str.len().eq(64).all() and set(ours.strategy) == {"native"}

    name = "spandrel:SwinIR(swinir_x2)"
    rows = run(models=[f"spandrel={files['swinir_x2']}"], datasets=[str(images)], scales=[Fraction(2), Fraction(4)],
               metrics=["psnr"], model_opts={f"{name}.strategy": "floor-then-up"}, out=tmp_path / "x4",
               progress=False).rows
    assert dict(zip(rows.scale_text, rows.strategy, strict=True)) == {"2": "native", "4": "floor-then-up"}
    assert (rows.error == "").all()


def test_other_scales_refused_before_any_image(files, images, tmp_path):
    from sr_bench.run.runner import run

    with pytest.raises(UserError) as e:
        run(models=[f"spandrel={files['swinir_x2']}"], datasets=[str(images)], scales=[Fraction(2), Fraction(4)],
            out=tmp_path / "r", progress=False)
    msg = str(e.value)
    assert "'spandrel:SwinIR(swinir_x2)' cannot run x4" in msg and "strategy=floor-then-up" in msg
    assert "\n" not in msg and not (tmp_path / "r").exists()


def test_not_sr_refused_with_one_line(files):
    with pytest.raises(UserError, match=r"is a 1x restoration model \(spandrel SwinIR, purpose Restoration\), "
                                        r"not single-image SR"):
        built(f"spandrel={files['swinir_denoise_x1']}")


def test_missing_file_unknown_architecture_and_bad_extension(tmp_path):
    with pytest.raises(UserError, match="not found"):
        built(f"spandrel={tmp_path / 'nope.pth'}")
    odd = tmp_path / "odd.pth"
    torch.save({"foo.weight": torch.zeros(3, 3)}, odd)
    with pytest.raises(UserError, match="does not recognise the architecture.*srbench models spandrel"):
        built(f"spandrel={odd}")
    (tmp_path / "net.onnx").write_bytes(b"x")
    with pytest.raises(UserError, match="reads .pth, .pt, .ckpt, .safetensors files"):
        built(f"x=spandrel:{tmp_path / 'net.onnx'}")


def test_tile_cuts_the_descriptor_call(files):
    """--tile runs the descriptor on tiles: with context covering the whole image every tile sees all of it, so
    the stitched output is the whole-image one, from one call per tile."""
    from sr_bench.models.tiling import Tiling, tiles

    _, model = built(f"spandrel={files['swinir_x2']}")
    lr = torch.rand(1, 3, 18, 20, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    calls = []
    hook = model.networks_for(Fraction(2))[0].register_forward_hook(lambda *a: calls.append(1))
    whole = model.super_resolve(lr, Fraction(2), (36, 40))
    with tiles(Tiling(10, 20), (18, 20)):
        tiled = model.super_resolve(lr, Fraction(2), (36, 40))
    hook.remove()
    assert len(calls) == 1 + 4 and torch.equal(tiled, whole)


def test_precision_respects_descriptor_support(files):
    """SwinIR: spandrel marks bf16 supported and fp16 not; fp16 autocast runs it in float32 (the fp32 output
    exactly), bf16 autocast runs bfloat16 (a different output)."""
    _, model = built(f"spandrel={files['swinir_x2']}")
    assert model.config["fp16"].startswith("float32") and model.config["bf16"] == "bfloat16"
    lr = torch.rand(1, 3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    fp32 = model.super_resolve(lr, Fraction(2), (32, 32))
    with torch.autocast("cpu", dtype=torch.float16):
        assert torch.equal(model.super_resolve(lr, Fraction(2), (32, 32)), fp32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not torch.equal(model.super_resolve(lr, Fraction(2), (32, 32)), fp32)


def test_missing_spandrel_is_one_line(files, monkeypatch):
    from sr_bench.models import spandrel_bridge

    monkeypatch.setitem(sys.modules, "spandrel", None)  # import spandrel -> ImportError
    spandrel_bridge._detected.cache_clear()
    with pytest.raises(UserError,
                       match=r"^spandrel models need the spandrel package: pip install 'sr_bench\[spandrel\]'$"):
        built(f"spandrel={files['swinir_x2']}")
    spandrel_bridge._detected.cache_clear()


def test_spandrel_imported_only_when_used():
    code = ("import sys; from sr_bench.run.request import RunRequest; from sr_bench.models.building import "
            "build_model; RunRequest(models=('bicubic',), datasets=('set5',), scales=(2,)); build_model('bicubic'); "
            "import sr_bench.cli; print('spandrel' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_models_spandrel_lists_the_architectures():
    from click.testing import CliRunner

    from sr_bench.cli import cli

    result = CliRunner().invoke(cli, ["models", "spandrel"])
    assert result.exit_code == 0, result.output
    ids = [s.architecture.id for s in spandrel.MAIN_REGISTRY]
    assert f"spandrel {spandrel.__version__}: {len(ids)} architectures" in result.output
    listed = {line.split()[0] for line in result.output.splitlines()[2:2 + len(ids)]}
    assert listed == set(ids) and {"SwinIR", "HAT", "RCAN", "DAT", "SPAN"} <= listed


def test_rcan_matches_spandrel_rcan(tmp_path):
    """sr_bench's RCAN and spandrel's RCAN (two implementations of the official network) on the same random
    official-layout state dict: identical rows."""
    from PIL import Image
    from spandrel.architectures.RCAN import RCAN

    from sr_bench.run.runner import run

    torch.manual_seed(0)
    path = tmp_path / "rcan_x2.pth"
    torch.save(RCAN(scale=2, n_resgroups=10, n_resblocks=20, n_feats=64, reduction=16).state_dict(), path)
    d = tmp_path / "imgs"
    d.mkdir()
    rng = np.random.default_rng(3)
    Image.fromarray(np.kron(rng.integers(0, 256, (12, 12, 3)), np.ones((4, 4, 1))).astype(np.uint8)).save(d / "a.png")
    rows = run(models=[f"rcan={path}", f"spandrel={path}"], datasets=[str(d)], scales=[Fraction(2)],
               metrics=["psnr", "ssim"], out=tmp_path / "run", progress=False).rows.set_index("model")
    ours, theirs = rows.loc["rcan"], rows.loc["spandrel:RCAN(rcan_x2)"]
    assert ours.error == "" and theirs.error == "" and ours.lr_height == 24
    assert abs(ours.psnr - theirs.psnr) <= 1e-6 and abs(ours.ssim - theirs.ssim) <= 1e-9
