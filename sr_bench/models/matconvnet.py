"""Importer for MatConvNet DagNN ``.mat`` files (the official LapSRN / MS-LapSRN releases): the struct's layout and
how its filters map onto torch's are in docs/calibration-lapsrn.md, "The MatConvNet importer".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import torch
import torch.nn as nn

from sr_bench.errors import UserError
from sr_bench.hashing import file_sha256
from sr_bench.models.archs.blocks import load_strict, mismatch_error, shape_text

FILTER_LAYERS = ("dagnn.Conv", "dagnn.ConvTranspose")


@dataclass
class DagLayer:
    name: str
    type: str
    inputs: list[str]
    outputs: list[str]
    params: list[str]
    block: dict = field(default_factory=dict)


@dataclass
class DagNN:
    path: Path
    sha256: str
    params: dict[str, np.ndarray]  # MATLAB arrays as stored (trailing singleton dimensions dropped)
    layers: list[DagLayer]

    def layer_of(self, param: str) -> DagLayer | None:
        """The first layer that uses ``param`` (weights shared across layers have one layout)."""
        return next((layer for layer in self.layers if param in layer.params), None)

    def tensor(self, param: str) -> torch.Tensor:
        """``param`` in PyTorch layout."""
        return to_torch(self.params[param], self.layer_of(param), param)


def _text(x) -> str:
    if isinstance(x, str):
        return x
    arr = np.asarray(x)
    if arr.dtype.kind in "US":
        return "".join(str(v) for v in arr.ravel())
    if arr.dtype == object:
        return "".join(_text(v) for v in arr.ravel())
    return str(x)


def _texts(x) -> list[str]:
    arr = np.asarray(x, dtype=object) if not isinstance(x, np.ndarray) else x
    if arr.dtype.kind in "US":
        return [_text(arr)] if arr.size else []
    return [_text(v) for v in arr.ravel()]


def _block(x) -> dict:
    arr = np.asarray(x, dtype=object).ravel() if not hasattr(x, "_fieldnames") else [x]
    if len(arr) == 0:
        return {}
    b = arr[0]
    out = {}
    for f in getattr(b, "_fieldnames", []):
        v = getattr(b, f)
        if isinstance(v, np.ndarray) and v.dtype.kind in "uifb":
            out[f] = [float(t) if v.dtype.kind == "f" else int(t) for t in v.ravel()]
        else:
            out[f] = _texts(v) if isinstance(v, np.ndarray) else v
    return out


def read_dagnn(path: str | Path, model_name: str) -> DagNN:
    """Read a MatConvNet DagNN .mat file; errors are one-line UserErrors."""
    import scipy.io

    p = Path(path)
    if not p.is_file():
        raise UserError(f"checkpoint for model {model_name!r} not found: {str(p)!r}; "
                        f"check the path after '{model_name}='")
    try:
        mat = scipy.io.loadmat(str(p), squeeze_me=False, struct_as_record=False)
    except NotImplementedError:  # MATLAB v7.3 (HDF5)
        raise UserError(f"{str(p)!r} is a MATLAB v7.3 (HDF5) file; "
                        "re-save it in MATLAB with save(file, 'net', '-v7')") from None
    except Exception as e:
        raise UserError(f"{str(p)!r} for model {model_name!r} could not be read as a MATLAB .mat file "
                        f"({type(e).__name__}: {' '.join(str(e).split())[:120]})") from None
    if "net" not in mat:
        names = ", ".join(k for k in mat if not k.startswith("__")) or "none"
        raise UserError(f"{str(p)!r} holds no MatConvNet 'net' variable (variables: {names}); "
                        f"give the model file, not the *_opts.mat")
    net = np.asarray(mat["net"]).ravel()[0]
    fields = getattr(net, "_fieldnames", [])
    if "params" not in fields or "layers" not in fields:
        raise UserError(f"{str(p)!r}: 'net' is not a MatConvNet DagNN struct (fields: {', '.join(fields)}); "
                        f"SimpleNN files (weights inside net.layers) are not supported")
    params = {_text(e.name): np.asarray(e.value) for e in np.asarray(net.params, dtype=object).ravel()}
    layers = [DagLayer(name=_text(e.name), type=_text(e.type), inputs=_texts(e.inputs), outputs=_texts(e.outputs),
                       params=_texts(e.params), block=_block(e.block))
              for e in np.asarray(net.layers, dtype=object).ravel()]
    return DagNN(path=p, sha256=file_sha256(p), params=params, layers=layers)


def _matlab_4d(v: np.ndarray) -> np.ndarray:
    """Restore the trailing singleton dimensions MATLAB drops (``3x3x64`` -> ``3x3x64x1``)."""
    if v.ndim > 4:
        raise ValueError(f"a {v.ndim}-D filter")
    return v.reshape(tuple(v.shape) + (1,) * (4 - v.ndim))


def to_torch(value: np.ndarray, layer: DagLayer | None, name: str) -> torch.Tensor:
    """Convert one MatConvNet parameter: filters (first param of a Conv/ConvTranspose layer) to
    ``(Cout, Cin, FH, FW)`` / ``(Cin, Cout, FH, FW)``, biases to 1-D."""
    v = np.asarray(value, dtype=np.float32)
    if layer is not None and layer.type in FILTER_LAYERS:
        if layer.params and layer.params[0] == name:
            return torch.from_numpy(np.ascontiguousarray(_matlab_4d(v).transpose(3, 2, 0, 1)))
        return torch.from_numpy(np.ascontiguousarray(v.reshape(-1)))
    return torch.from_numpy(np.ascontiguousarray(v))


def load_dagnn(module: nn.Module, dag: DagNN, names: Mapping[str, str], model_name: str, hint: str = "",
               check_layer: Callable[[DagLayer], str | None] | None = None) -> None:
    """Load ``dag`` into ``module`` by name (``names``: MatConvNet param name -> state_dict key), strictly.
    ``check_layer`` may name a layer option (padding, stride, crop, ...) the module does not implement: an error
    like a shape mismatch."""
    own = module.state_dict()
    inverse = {k: n for n, k in names.items()}
    sd: dict[str, torch.Tensor] = {}
    unexpected, shapes = [], []
    mismatched: set[str] = set()
    for pname in dag.params:
        key = names.get(pname)
        if key is None or key not in own:
            unexpected.append(f"{pname} {shape_text(dag.params[pname])}")
            continue
        t = dag.tensor(pname)
        if tuple(t.shape) != tuple(own[key].shape):
            shapes.append(f"{pname} {shape_text(dag.params[pname])} -> {key} {shape_text(t)} "
                          f"vs model {shape_text(own[key])}")
            mismatched.add(key)
            continue
        sd[key] = t
    missing = [f"{k} (MatConvNet {inverse[k]})" if k in inverse else k for k in own
               if k not in sd and k not in mismatched]
    options = [f"{layer.name}: {problem}" for layer in dag.layers if check_layer and (problem := check_layer(layer))]
    if missing or unexpected or shapes or options:
        raise mismatch_error(f"MatConvNet file {str(dag.path)!r} does not fit model {model_name!r}",
                             [("missing param(s)", missing), ("unexpected param(s)", unexpected),
                              ("shape mismatch(es)", shapes), ("layer(s) with unsupported options", options)], hint)
    load_strict(module, sd, model_name, dag.path)


def _per_side(v: list) -> list:
    """MatConvNet's [top bottom left right], which one value gives for every side."""
    return v * 4 if len(v) == 1 else v


def check_standard_layer(layer: DagLayer,
                         convt_crops: Mapping[tuple[int, int], tuple[int, int, int, int]]) -> str | None:
    """Options our LapSRN-family modules implement: 'same'-padded stride-1 undilated convs, ungrouped x2 transposed
    convs with the crops in ``convt_crops`` (per filter size), LeakyReLU 0.2."""
    b = layer.block
    size = b.get("size", [0, 0])
    fh, fw = int(size[0]), int(size[1])
    if layer.type == "dagnn.Conv":
        want = [fh // 2, fh // 2, fw // 2, fw // 2]
        pad = _per_side(b.get("pad", [0]))
        if [int(v) for v in pad] != want:
            return f"conv pad {pad}, expected {want}"
        if any(int(v) != 1 for v in b.get("stride", [1])) or any(int(v) != 1 for v in b.get("dilate", [1])):
            return f"conv stride {b.get('stride')} / dilate {b.get('dilate')}, expected 1"
    elif layer.type == "dagnn.ConvTranspose":
        crop = _per_side(b.get("crop", [0]))
        if (fh, fw) not in convt_crops or tuple(int(v) for v in crop) != tuple(convt_crops[(fh, fw)]):
            return f"convt {(fh, fw)} crop {crop}, expected {convt_crops.get((fh, fw))}"
        up = b.get("upsample", [1])
        if any(int(v) != 2 for v in up):
            return f"convt upsample {up}, expected 2"
        if int(b.get("numGroups", [1])[0]) != 1:
            return f"convt numGroups {b.get('numGroups')}, expected 1"
    elif layer.type == "dagnn.ReLU":
        leak = b.get("leak", [0.0])
        if abs(float(leak[0]) - 0.2) > 1e-12:
            return f"ReLU leak {leak}, expected 0.2"
    return None
