"""Named evaluation protocols. ``auto`` picks ``matlab`` for all-integer scale lists, ``metasr`` otherwise."""

from __future__ import annotations

from fractions import Fraction
from typing import Iterable

from sr_bench.errors import unknown
from sr_bench.protocols.base import Case, HRSource, ImageTooSmall, Protocol, Views
from sr_bench.protocols.lapsrn import LapSRNMatlabProtocol
from sr_bench.protocols.liif import LIIFProtocol
from sr_bench.protocols.matlab import MatlabProtocol
from sr_bench.protocols.metasr import MetaSRProtocol

PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (MatlabProtocol(), MetaSRProtocol(), LIIFProtocol(),
                                                       LapSRNMatlabProtocol())}

__all__ = ["Case", "HRSource", "ImageTooSmall", "PROTOCOLS", "Protocol", "Views", "choose_protocol", "get_protocol"]


def get_protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise unknown("protocol", name, list(PROTOCOLS) + ["auto"])
    return PROTOCOLS[name]


def choose_protocol(name: str, scales: Iterable[Fraction]) -> Protocol:
    """Resolve ``auto`` (one protocol per run, so a scale curve never mixes rules) and check every scale."""
    scales = list(scales)
    if name == "auto":
        name = "matlab" if all(s.denominator == 1 for s in scales) else "metasr"
    protocol = get_protocol(name)
    for s in scales:
        protocol.check_scale(s)
    return protocol
