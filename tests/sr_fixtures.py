"""SR checkpoints for tests: random weights saved under the published file names.

CI has no network and the official files cannot be downloaded here, so tests
build checkpoints themselves, in our key layout (the per-family tests cover
every published layout). They exercise the loading and inference path; their
outputs are not results of any real model."""

from __future__ import annotations

from pathlib import Path

import torch

from sr_models import archs, weights


def install_random_checkpoint(name: str, weights_dir: Path, seed: int = 0) -> list[Path]:
    """Write the file(s) a checkpoint needs (both ends of an interpolation) with random weights."""
    checkpoint = weights.get_checkpoint(name)
    names = checkpoint.interpolate or (name,)
    parts = [weights.get_checkpoint(part) for part in names]
    written = []
    weights_dir.mkdir(parents=True, exist_ok=True)
    for offset, part in enumerate(parts):
        torch.manual_seed(seed + offset)
        model = archs.build(part.arch, part.scale, **part.build_options)
        with torch.no_grad():
            for tensor in model.state_dict().values():
                if tensor.is_floating_point() and tensor.ndim > 1:
                    tensor.mul_(0.5)  # keep deep random nets' outputs in range
        path = weights_dir / part.file
        if not path.exists():
            torch.save(model.state_dict(), path)
        written.append(path)
    return written
