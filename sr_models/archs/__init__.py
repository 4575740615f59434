"""Super-resolution architectures, one file per family, in one registry (no Django here).

Each family file ``<family>_arch.py`` defines its ``nn.Module``, a ``convert_state_dict`` that
maps every published key layout of that family onto our parameter names, and declares its
``SPECS``: one ``ArchSpec`` per architecture. The spec also says how the network wants its
input (colour, value range, pre-upsampling), following each model's official test script, so
inference code never special-cases a name.

``ARCHS`` is filled by ``_declared_archs`` from the families listed in ``FAMILIES``, on first
read: the families import torch, which the web processes never need.
"""

from __future__ import annotations

import importlib

from core.registry import Registry
from sr_models.archs.base import ArchSpec, StateDict, UnknownLayout, remap_keys

FAMILIES = ("srcnn", "fsrcnn", "vdsr", "edsr", "rcan", "srresnet", "rrdbnet", "eusr")  # files <family>_arch.py

__all__ = ["ARCHS", "FAMILIES", "ArchSpec", "StateDict", "UnknownLayout", "arch", "arch_names", "build", "remap_keys"]


def _declared_archs(registry: Registry[ArchSpec]) -> None:
    for family in FAMILIES:
        for spec in importlib.import_module(f"{__name__}.{family}_arch").SPECS:
            registry.add(spec.name, spec)


ARCHS: Registry[ArchSpec] = Registry("SR architecture", loader=_declared_archs)


def arch_names() -> list[str]:
    return ARCHS.names()


def arch(name: str) -> ArchSpec:
    return ARCHS.get(name)


def build(name: str, scale: int, **options):
    spec = arch(name)
    if scale not in spec.scales:
        raise ValueError(f"{name} supports scales {spec.scales}, not x{scale}")
    return spec.build(scale=scale, **{**dict(spec.options), **options})
