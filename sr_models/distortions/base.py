"""What a distortion generator family is (pure Python, no Django).

A *family* is one generator (e.g. ``gaussian_blur``) with a declared parameter
schema; a catalogue row is a family plus one set of parameters (a level).
Generic code (the catalogue loader, later the Celery task) only reads this
metadata: it never special-cases a family by name.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from sr_models.distortions.subtypes import check_subtype

# Bump when any generator's output for the same (image, params, seed) may change;
# stored with every generated image as provenance.
CODE_VERSION = "distortions-1.0.0"

# PIPAL Table 2's four sub-types.
CATEGORIES = ("traditional", "super_resolution", "denoising", "mixture")

Generator = Callable[[np.ndarray, dict[str, Any], np.random.Generator], np.ndarray]


REQUIRED = object()  # Param default meaning "must be given"; None is a real default ("absent")


class DistortionError(ValueError):
    """A family, parameter set or image that cannot be used."""


@dataclass(frozen=True)
class Param:
    """One parameter of a family: its type, allowed values and meaning."""

    kind: type  # int, float, str or bool
    doc: str
    default: Any = REQUIRED
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] | None = None
    # A further check for values a static list cannot hold (e.g. the SR checkpoints, whose
    # registry lives with the networks): raises DistortionError naming what is wrong.
    check_value: Callable[[Any], None] | None = None

    def check(self, name: str, value: Any) -> Any:
        # bool is an int subclass; keep the two apart so {"ksize": true} is refused.
        if self.kind is bool:
            ok = isinstance(value, bool)
        elif self.kind is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        else:
            ok = isinstance(value, self.kind) and not (self.kind is int and isinstance(value, bool))
        if not ok:
            raise DistortionError(f"parameter {name!r} must be {self.kind.__name__}, got {value!r}")
        value = float(value) if self.kind is float else value
        if self.low is not None and value < self.low:
            raise DistortionError(f"parameter {name!r} = {value!r} is below {self.low}")
        if self.high is not None and value > self.high:
            raise DistortionError(f"parameter {name!r} = {value!r} is above {self.high}")
        if self.choices is not None and value not in self.choices:
            raise DistortionError(f"parameter {name!r} = {value!r} is not one of {', '.join(map(str, self.choices))}")
        if self.check_value is not None:
            self.check_value(value)
        return value


@dataclass(frozen=True)
class DistortionFamily:
    name: str
    category: str
    subtype: str
    summary: str
    params: Mapping[str, Param]
    generate: Generator = field(repr=False)
    # Families that need more than pixels (SR networks need weight files): ``preflight(params)``
    # raises DistortionError before any job is planned; ``provenance(params)`` adds what a
    # generated image should record (checkpoint checksum, device, precision).
    preflight: Callable[[Mapping[str, Any]], None] | None = field(default=None, repr=False)
    provenance: Callable[[Mapping[str, Any]], dict[str, Any]] | None = field(default=None, repr=False)
    accelerated: bool = False  # runs a network: worth a GPU worker's queue when there is one
    # What must be installed before it runs, in words ("weights": a published file; "a trained model":
    # one the platform trains); '' for pixels only. The preflight says which file and how to get it.
    needs: str = ""

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Checked parameters with defaults filled in; unknown or missing names are errors."""
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            raise DistortionError(f"{self.name}: unknown parameter(s) {', '.join(unknown)}")
        checked = {}
        for name, spec in self.params.items():
            if name in params and params[name] is not None:
                checked[name] = spec.check(name, params[name])
            elif spec.default is REQUIRED:
                raise DistortionError(f"{self.name}: missing required parameter {name!r}")
            else:
                checked[name] = spec.default
        return checked

    def apply(self, image: np.ndarray, params: Mapping[str, Any], seed: int) -> np.ndarray:
        """Distort an HxWx3 uint8 image; same (image, params, seed) -> same bytes."""
        if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
            raise DistortionError(f"{self.name}: expected a uint8 HxWx3 array, got {_shape_of(image)}")
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise DistortionError(f"{self.name}: seed must be a non-negative int, got {seed!r}")
        checked = self.validate(params)
        with single_threaded_opencv():
            out = self.generate(np.ascontiguousarray(image), checked, np.random.default_rng(seed))
        if out.dtype != np.uint8 or out.shape != image.shape:
            raise AssertionError(f"{self.name} returned {out.dtype} {out.shape} for {image.shape}")
        return out

    def __call__(self, image: np.ndarray, params: Mapping[str, Any], rng: np.random.Generator) -> np.ndarray:
        """The bare generator: checked parameters in, no validation (for families built on others)."""
        return self.generate(image, params, rng)

    def check_ready(self, params: Mapping[str, Any]) -> None:
        """Raise DistortionError when this level cannot run here (e.g. weights missing)."""
        if self.preflight is not None:
            self.preflight(self.validate(params))

    def run_provenance(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return self.provenance(self.validate(params)) if self.provenance is not None else {}

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "category": self.category,
            "subtype": self.subtype,
            "summary": self.summary,
            "needs": self.needs,
            "params": {
                name: {
                    "type": spec.kind.__name__,
                    "doc": spec.doc,
                    "required": spec.default is REQUIRED,
                    "default": None if spec.default is REQUIRED else spec.default,
                    "low": spec.low,
                    "high": spec.high,
                    "choices": list(spec.choices) if spec.choices else None,
                }
                for name, spec in self.params.items()
            },
            "code_version": CODE_VERSION,
        }


def _shape_of(image: Any) -> str:
    return f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__


@contextlib.contextmanager
def single_threaded_opencv() -> Iterator[None]:
    # Some OpenCV filters split work by rows across threads; one thread removes any
    # doubt about byte-identical output and costs little on 288x288 patches.
    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)


def family(
    name: str,
    *,
    category: str,
    subtype: str,
    summary: str,
    params: Mapping[str, Param],
    preflight: Callable[[Mapping[str, Any]], None] | None = None,
    provenance: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None,
    accelerated: bool = False,
    needs: str | None = None,
) -> Callable[[Generator], DistortionFamily]:
    """Decorator: ``fn(image, params, rng) -> image`` becomes the family ``name``. Each family
    module lists its families in ``FAMILIES``, which ``sr_models.distortions.families`` reads."""
    if category not in CATEGORIES:
        raise ValueError(f"{name}: category {category!r} is not one of {CATEGORIES}")
    try:
        check_subtype(category, subtype)
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from None

    def decorator(fn: Generator) -> DistortionFamily:
        required = needs if needs is not None else ("weights" if preflight is not None else "")
        return DistortionFamily(
            name, category, subtype, summary, dict(params), fn, preflight, provenance, accelerated, required
        )

    return decorator


def library_versions() -> dict[str, str]:
    """Versions of the packages whose codecs and filters shape the output (provenance beside CODE_VERSION)."""
    packages = ("numpy", "scipy", "opencv-python", "pillow", "bm3d")
    return {"code": CODE_VERSION} | {name: importlib.metadata.version(name) for name in packages}
