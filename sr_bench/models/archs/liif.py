"""LIIF (Chen, Liu, Wang, CVPR'21), key-compatible with ``yinboc/liif`` ``models/liif.py`` + ``models/mlp.py``.

Layout, key names and departures from the paper: docs/architectures.md, "LIIF".
"""

from __future__ import annotations

from fractions import Fraction
from typing import ClassVar, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from sr_bench.errors import UserError
from sr_bench.models.archs.blocks import NetworkUpscaler
from sr_bench.models.archs.edsr import EDSR, EDSR_VARIANTS
from sr_bench.models.archs.rdn import RDN
from sr_bench.models.interface import TrainingForward
from sr_bench.models.tiling import run_network


def make_coord(shape: Sequence[int], flatten: bool = True, device=None) -> torch.Tensor:
    """Coordinates of pixel centres in [-1, 1] (per axis: -1 + r + 2r*i, r = 1/n), shape (*shape, 2) or (prod, 2)."""
    seqs = []
    for n in shape:
        r = 2 / (2 * n)
        seqs.append(-1 + r + (2 * r) * torch.arange(n, device=device).float())
    ret = torch.stack(torch.meshgrid(*seqs, indexing="ij"), dim=-1)
    return ret.view(-1, ret.shape[-1]) if flatten else ret


class MLP(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, hidden_list: Sequence[int]):
        super().__init__()
        layers: list[nn.Module] = []
        last = in_dim
        for hidden in hidden_list:
            layers += [nn.Linear(last, hidden), nn.ReLU()]
            last = hidden
        layers.append(nn.Linear(last, out_dim))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape[:-1]
        return self.layers(x.view(-1, x.shape[-1])).view(*shape, -1)


def make_encoder(name: str, args: dict | None = None) -> nn.Module:
    """The LIIF repo's encoders, always without upsampler (``no_upsampling: true`` in every LIIF config)."""
    args = {k: v for k, v in (args or {}).items() if k not in ("no_upsampling", "scale")}
    if name in ("edsr-baseline", "edsr"):
        cfg = dict(EDSR_VARIANTS["baseline" if name == "edsr-baseline" else "edsr"])
        cfg.update({k: args[k] for k in ("n_resblocks", "n_feats", "res_scale") if k in args})
        return EDSR(**cfg, rgb_range=args.get("rgb_range", 1), no_upsampling=True, mean_shift=False)
    if name == "rdn":
        return RDN(G0=args.get("G0", 64), RDNkSize=args.get("RDNkSize", 3), RDNconfig=args.get("RDNconfig", "B"),
                   no_upsampling=True)
    raise UserError(f"LIIF encoder {name!r} is not supported; known: edsr-baseline, edsr, rdn")


class LIIF(nn.Module):
    def __init__(self, encoder: nn.Module, hidden_list: Sequence[int] = (256, 256, 256, 256), out_dim: int = 3,
                 local_ensemble: bool = True, feat_unfold: bool = True, cell_decode: bool = True):
        super().__init__()
        self.local_ensemble, self.feat_unfold, self.cell_decode = local_ensemble, feat_unfold, cell_decode
        self.encoder = encoder
        in_dim = encoder.out_dim * (9 if feat_unfold else 1) + 2 + (2 if cell_decode else 0)
        self.imnet = MLP(in_dim, out_dim, hidden_list)

    def query_rgb(self, feat: torch.Tensor, coord: torch.Tensor, cell: torch.Tensor | None = None) -> torch.Tensor:
        if self.feat_unfold:
            feat = F.unfold(feat, 3, padding=1).view(feat.shape[0], feat.shape[1] * 9, feat.shape[2], feat.shape[3])
        if self.local_ensemble:
            vx_lst, vy_lst, eps_shift = [-1, 1], [-1, 1], 1e-6
        else:
            vx_lst, vy_lst, eps_shift = [0], [0], 0
        fh, fw = feat.shape[-2], feat.shape[-1]
        rx, ry = 2 / fh / 2, 2 / fw / 2  # half a latent cell in the global [-1, 1] frame
        feat_coord = (make_coord((fh, fw), flatten=False, device=feat.device)
                      .permute(2, 0, 1).unsqueeze(0).expand(feat.shape[0], 2, fh, fw))
        preds, areas = [], []
        for vx in vx_lst:
            for vy in vy_lst:
                c = coord.clone()
                c[:, :, 0] += vx * rx + eps_shift
                c[:, :, 1] += vy * ry + eps_shift
                c.clamp_(-1 + 1e-6, 1 - 1e-6)
                grid = c.flip(-1).unsqueeze(1)
                q_feat = F.grid_sample(feat, grid, mode="nearest", align_corners=False)[:, :, 0, :].permute(0, 2, 1)
                q_coord = F.grid_sample(feat_coord, grid, mode="nearest",
                                        align_corners=False)[:, :, 0, :].permute(0, 2, 1)
                rel_coord = coord - q_coord
                rel_coord[:, :, 0] *= fh
                rel_coord[:, :, 1] *= fw
                inp = torch.cat([q_feat, rel_coord], dim=-1)
                if self.cell_decode:
                    rel_cell = cell.clone()
                    rel_cell[:, :, 0] *= fh
                    rel_cell[:, :, 1] *= fw
                    inp = torch.cat([inp, rel_cell], dim=-1)
                bs, q = coord.shape[:2]
                preds.append(self.imnet(inp.view(bs * q, -1)).view(bs, q, -1))
                areas.append(torch.abs(rel_coord[:, :, 0] * rel_coord[:, :, 1]) + 1e-9)
        tot_area = torch.stack(areas).sum(dim=0)
        if self.local_ensemble:  # each prediction is weighted by the area of the diagonally opposite sub-rectangle
            areas[0], areas[3] = areas[3], areas[0]
            areas[1], areas[2] = areas[2], areas[1]
        ret = 0
        for pred, area in zip(preds, areas, strict=True):
            ret = ret + pred * (area / tot_area).unsqueeze(-1)
        return ret

    def forward(self, inp: torch.Tensor, coord: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        return self.query_rgb(self.encoder(inp), coord, cell)


_DEFAULT_ARGS = {"local_ensemble": True, "feat_unfold": True, "cell_decode": True}


class LIIFUpscaler(NetworkUpscaler):
    """LIIF with an EDSR-baseline encoder (``variant='edsr-baseline'``) or RDN (``variant='rdn'``); any scale."""

    model_name: ClassVar[str] = "liif"
    tiles_networks: ClassVar[bool] = True
    default_variant: ClassVar[str] = "edsr-baseline"
    query_chunk: int = 30000  # as demo.py's batched_predict

    def __init__(self, checkpoint=None, allow_untrained: bool = False, scale=None, variant: str | None = None):
        variant = variant or self.default_variant
        self._refuse_scale(scale)
        if variant not in ("edsr-baseline", "edsr", "rdn"):
            raise UserError(f"model {self.model_name!r} has encoders edsr-baseline, edsr and rdn, not {variant!r}")
        paths = self._setup(checkpoint, allow_untrained, {})
        sd, spec = self._one_checkpoint(paths)
        encoder_args: dict = {}
        args = dict(_DEFAULT_ARGS)
        hidden, out_dim = [256, 256, 256, 256], 3
        if spec is not None:
            if spec.get("name", "liif") != "liif":
                raise UserError(f"checkpoint {str(paths[0])!r} is a LIIF-repo {spec.get('name')!r} model, not 'liif'")
            margs = spec.get("args") or {}
            enc = margs.get("encoder_spec") or {}
            found = enc.get("name", variant)
            if found != variant:
                other = {"rdn": "liif-rdn", "edsr-baseline": "liif"}.get(found, found)
                raise UserError(f"checkpoint {str(paths[0])!r} is a LIIF with a {found!r} encoder, but model "
                                f"{self.model_name!r} uses {variant!r}; use --models {other}=PATH")
            encoder_args = dict(enc.get("args") or {})
            args.update({k: bool(margs[k]) for k in _DEFAULT_ARGS if k in margs})
            imnet_args = (margs.get("imnet_spec") or {}).get("args") or {}
            hidden = list(imnet_args.get("hidden_list", hidden))
            out_dim = int(imnet_args.get("out_dim", out_dim))
        self.variant = variant
        self.config.update({"encoder": variant, **args, "hidden_list": hidden})
        self.net = self._network(lambda: LIIF(make_encoder(variant, encoder_args), hidden, out_dim, **args), sd, paths)

    def training_forward(self, scale: Fraction | None = None) -> TrainingForward:
        """LIIF's recipe: the loss sees a random subset of the HR pixels (2304 = 48^2 at patch 48), which bounds the
        MLP's memory at large scales."""
        net = self.net

        def predict(lr, hr, s, gen):
            b, _, h, w = hr.shape
            q = min(lr.shape[-2] * lr.shape[-1], h * w)
            idx = torch.stack([torch.randperm(h * w, generator=gen)[:q] for _ in range(b)]).to(lr.device)
            coord = make_coord((h, w), device=lr.device)[idx]
            cell = torch.empty_like(coord)
            cell[..., 0], cell[..., 1] = 2 / h, 2 / w
            pred = net.query_rgb(net.encoder((lr - 0.5) / 0.5), coord, cell) * 0.5 + 0.5
            target = hr.flatten(2).transpose(1, 2).gather(1, idx[..., None].expand(-1, -1, hr.shape[1]))
            return pred, target
        return TrainingForward(net, predict, "rgb")

    def super_resolve(self, lr: torch.Tensor, scale: Fraction, size: tuple[int, int]) -> torch.Tensor:
        h, w = int(size[0]), int(size[1])
        x = self._input(lr)
        b = x.shape[0]
        with torch.inference_mode():
            feat = run_network(self.net.encoder, (x - 0.5) / 0.5, 1)  # the decoder reads every query's position
            coord = make_coord((h, w), device=x.device).unsqueeze(0).repeat(b, 1, 1)
            cell = torch.empty_like(coord)
            cell[..., 0], cell[..., 1] = 2 / h, 2 / w
            preds = [self.net.query_rgb(feat, coord[:, q:q + self.query_chunk], cell[:, q:q + self.query_chunk])
                     for q in range(0, h * w, self.query_chunk)]
            pred = torch.cat(preds, dim=1) * 0.5 + 0.5
            pred = pred.clamp_(0, 1).view(b, h, w, -1).permute(0, 3, 1, 2)
            return pred.to(torch.float64).contiguous()


class LIIFRDNUpscaler(LIIFUpscaler):
    model_name: ClassVar[str] = "liif-rdn"
    default_variant: ClassVar[str] = "rdn"
