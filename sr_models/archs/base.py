"""What every SR architecture family declares (no Django here): its spec, and the key-layout helpers
its ``convert_state_dict`` uses."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass


class UnknownLayout(ValueError):
    """A state dict whose keys match none of the family's published layouts."""


StateDict = Mapping[str, "object"]  # name -> torch.Tensor


def remap_keys(state: Mapping[str, object], rules: list[tuple[str, str]], what: str) -> dict:
    """Rename every key by the first rule (regex, replacement) whose pattern matches it whole;
    a key that fits no rule raises UnknownLayout (for the families' convert_state_dict)."""
    compiled = [(re.compile(pattern), replacement) for pattern, replacement in rules]
    out, unmatched = {}, []
    for key, value in state.items():
        for pattern, replacement in compiled:
            match = pattern.fullmatch(key)
            if match:
                out[match.expand(replacement)] = value
                break
        else:
            unmatched.append(key)
    if unmatched:
        raise UnknownLayout(f"{what}: {len(unmatched)} keys fit no rule of the layout, e.g. {unmatched[:5]}")
    return out


@dataclass(frozen=True)
class ArchSpec:
    name: str
    family: str
    # build(scale=..., **options) -> nn.Module in eval-ready form
    build: Callable[..., object]
    # maps any published layout (already unwrapped of "params"/"params_ema" and "module.") onto ours
    convert: Callable[[StateDict], dict]
    scales: tuple[int, ...]
    # "rgb": 3-channel RGB; "y": the Y channel of YCbCr (ITU-R BT.601, as MATLAB rgb2ycbcr),
    # chroma upscaled by bicubic interpolation
    color: str
    # the value of white at the network input and output: 1.0 ([0, 1]) or 255.0 ([0, 255])
    input_range: float
    # True: the input is first upscaled to the output size by bicubic interpolation (SRCNN, VDSR)
    pre_upsample: bool
    paper: str
    options: tuple[tuple[str, object], ...] = ()  # default build options, e.g. (("variant", "baseline"),)

    def __post_init__(self):
        if self.color not in ("rgb", "y") or self.input_range not in (1.0, 255.0):
            raise ValueError(f"{self.name}: color must be rgb or y, input_range 1.0 or 255.0")
