"""Super-resolution architectures, one file per family, registered by name (no Django here).

Each family file defines its ``nn.Module``, a ``convert_state_dict`` that maps
every published key layout of that family onto our parameter names, and
registers one ``ArchSpec`` per architecture. The spec also says how the
network wants its input (colour, value range, pre-upsampling), following each
model's official test script, so inference code never special-cases a name.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

FAMILIES = ("srcnn", "fsrcnn", "vdsr", "edsr", "rcan", "srresnet", "rrdbnet", "eusr")  # files <family>_arch.py


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


ARCHS: dict[str, ArchSpec] = {}


def register(spec: ArchSpec) -> ArchSpec:
    if spec.name in ARCHS:
        raise ValueError(f"architecture {spec.name!r} is registered twice")
    if spec.color not in ("rgb", "y") or spec.input_range not in (1.0, 255.0):
        raise ValueError(f"{spec.name}: color must be rgb or y, input_range 1.0 or 255.0")
    ARCHS[spec.name] = spec
    return spec


def _load_families() -> None:
    for family in FAMILIES:
        importlib.import_module(f"{__name__}.{family}_arch")


def arch_names() -> list[str]:
    _load_families()
    return sorted(ARCHS)


def arch(name: str) -> ArchSpec:
    _load_families()
    if name not in ARCHS:
        raise KeyError(f"unknown SR architecture {name!r}; known: {', '.join(sorted(ARCHS))}")
    return ARCHS[name]


def build(name: str, scale: int, **options):
    spec = arch(name)
    if scale not in spec.scales:
        raise ValueError(f"{name} supports scales {spec.scales}, not x{scale}")
    return spec.build(scale=scale, **{**dict(spec.options), **options})
