"""What tests and benchmarks build their data and processes from: random PNGs, PIPAL-layout
folders, plain studies, rater clients and real Celery worker processes.

Shared by ``tests/`` and ``bench/`` (``bench/benchlib.py`` imports it). Importing it does not
import Django: the functions that need the application import it when called, so a benchmark
can configure its settings first.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "fixtures" / "demo"  # the demo study run.sh serves
SCREENSHOTS = ROOT / "test-artifacts" / "browser"  # pages checked in Chromium, kept by CI

# .ci/run sets this: a test that needs PostgreSQL or Redis fails instead of skipping when the
# service is missing.
REQUIRE_SERVICES = os.environ.get("PIPAL_REQUIRE_SERVICES") == "1"
REDIS_URL = os.environ.get("PIPAL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

# A complete production environment (settings.production refuses to start without each of these).
PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "pipal_site.settings.production",
    "SECRET_KEY": "k7#Qz1v!9sLm2@Xe4$Rt6^Yu8&Io0*Pa3(Sd5)Fg7-Hj9_Kl1+Zx",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/pipal",
    "ALLOWED_HOSTS": "study.example.org",
    "EMAIL_URL": "smtp://mailer:secret@mail.example.org:587/?tls=True",
}

# PIPAL Table 2's four sub-types, cycled over a generated folder's types.
CATEGORIES = ("traditional", "super_resolution", "denoising", "mixture")
# A study without training, gold pairs, rate limit or quota, for tests of the core mechanics.
NO_CONTROLS = {"training_trials": 0, "gold_every": 0, "min_vote_interval_ms": 0, "trials_per_rater": 10_000}


def require_service(name: str, host: str, port: int) -> None:
    """Skip the calling test when a service is down, or fail it under PIPAL_REQUIRE_SERVICES=1."""
    import pytest

    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError as error:
        message = f"{name} not reachable at {host}:{port} ({error})"
        if REQUIRE_SERVICES:
            pytest.fail(f"{message}; PIPAL_REQUIRE_SERVICES=1 makes this a failure")
        pytest.skip(message)


# --- images and folders ---------------------------------------------------------------


def png_bytes(seed: int, size: tuple[int, int] = (32, 32)) -> bytes:
    """A random RGB PNG of ``size`` (width, height), the same bytes for the same seed."""
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def type_levels(per_reference: int, levels: int = 3) -> list[tuple[str, int]]:
    """``per_reference`` (type code, level) pairs: types 01, 02, ... with ``levels`` levels each."""
    types = -(-per_reference // levels)
    return [(f"{t:02d}", level) for t in range(1, types + 1) for level in range(1, levels + 1)][:per_reference]


def make_pipal_folder(
    root: Path,
    *,
    references: int = 2,
    types: Sequence[str] = ("01", "02"),
    levels: Sequence[int] = (1, 2),
    combos: Sequence[tuple[str, int]] | None = None,
    size: tuple[int, int] = (32, 32),
    type_csv: bool = True,
) -> Path:
    """A PIPAL-layout folder of random images: Ref/R000k.png, Dis/R000k_TT_LL.png for every
    (type, level) of ``types`` x ``levels`` (or of ``combos``), and distortion_types.csv."""
    (root / "Ref").mkdir(parents=True, exist_ok=True)
    (root / "Dis").mkdir(parents=True, exist_ok=True)
    pairs = list(combos) if combos is not None else [(code, level) for code in types for level in levels]
    seed = 0
    for r in range(1, references + 1):
        ref = f"R{r:04d}"
        (root / "Ref" / f"{ref}.png").write_bytes(png_bytes(seed := seed + 1, size))
        for code, level in pairs:
            (root / "Dis" / f"{ref}_{code}_{level:02d}.png").write_bytes(png_bytes(seed := seed + 1, size))
    if type_csv:
        codes = list(dict.fromkeys(code for code, _ in pairs))
        rows = ["id,name,category,subtype"]
        rows += [f"{code},Type {code},{CATEGORIES[i % 4]},sub{code}" for i, code in enumerate(codes)]
        (root / "distortion_types.csv").write_text("\n".join(rows) + "\n")
    return root


def label_value(name: str) -> float:
    """A made-up Elo MOS per image, with four decimals as PIPAL writes them."""
    return round(1300 + (sum(map(ord, name)) * 37 % 2000) / 10 + 0.0648, 4)


def write_labels(root: Path, label_folder: str = "Train_Label") -> dict[str, float]:
    """PIPAL's label files for a PIPAL-layout folder: <ref>.txt with ``image,MOS`` lines."""
    (root / label_folder).mkdir(exist_ok=True)
    values = {}
    for ref in sorted((root / "Ref").iterdir()):
        images = sorted(p.name for p in (root / "Dis").iterdir() if p.name.startswith(ref.stem + "_"))
        lines = [f"{name},{label_value(name):.4f}\n" for name in images]
        (root / label_folder / f"{ref.stem}.txt").write_text("".join(lines))
        values.update({name: label_value(name) for name in images})
    return values


def pipal_set(root: Path, *, label_folder: str = "Train_Label", **folder) -> Path:
    """A PIPAL-layout folder (make_pipal_folder) with one <ref>.txt label file per reference."""
    make_pipal_folder(root, **folder)
    write_labels(root, label_folder)
    return root


# --- studies and raters ---------------------------------------------------------------


def import_folder(study, folder: Path):
    from annotation.imports.folders import images_import, plan_folder_import

    return images_import(study=study, plan=plan_folder_import(study, folder))


def plain_study(slug: str, name: str = "", **fields):
    """A study without training, gold pairs or rate limit, for tests of the core mechanics."""
    from annotation.studies import study_create

    study = study_create(slug=slug, name=name)
    for key, value in {**NO_CONTROLS, **fields}.items():
        setattr(study, key, value)
    study.save()
    return study


def join(api, slug: str, external_id: str):
    """A client authenticated as a new rater of the study."""
    from rest_framework.test import APIClient

    response = api.post(f"/api/studies/{slug}/raters/", {"external_id": external_id}, format="json")
    assert response.status_code == 201, response.content
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['token']}")
    return client


# --- Celery worker processes ----------------------------------------------------------


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def children(pid: int) -> list[int]:
    """Live child processes of ``pid`` (from /proc; no psutil here)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after the last ')'.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


class CeleryWorker:
    """One `celery worker` process of this project on ``queues``, its log in ``log``: the solo
    pool by default, or prefork with ``concurrency`` children; prefetch 1, fair scheduling."""

    def __init__(
        self,
        name: str,
        queues: Sequence[str],
        env: dict[str, str],
        log: Path,
        *,
        pool: str = "solo",
        concurrency: int | None = None,
        log_level: str = "warning",
    ):
        self.name = name
        self.log = Path(log)
        self.log_file = open(self.log, "w")  # noqa: SIM115 - closed in stop() / kill()
        command = [sys.executable, "-m", "celery", "-A", "pipal_site", "worker", "-Q", ",".join(queues)]
        command += ["-n", f"{name}@%h", "--pool", pool]
        if concurrency is not None:
            command += ["--concurrency", str(concurrency)]
        command += ["--prefetch-multiplier", "1", "-O", "fair"]
        command += ["--without-gossip", "--without-mingle", "--without-heartbeat", "-l", log_level]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=self.log_file)

    def ready(self) -> bool:
        """True once the worker logged that it is ready (needs log_level info)."""
        if self.process.poll() is not None:
            raise RuntimeError(f"worker {self.name} exited ({self.process.returncode}):\n{self.tail()}")
        return " ready." in self.log.read_text(errors="replace")

    def tail(self, lines: int = 40) -> str:
        return log_tail(self.log, lines)

    def children(self) -> list[int]:
        return children(self.process.pid)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (a warm shutdown: running tasks finish) and wait; SIGKILL everything if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"worker {self.name} did not stop within {timeout} s:\n{self.tail()}") from None
        if not self.log_file.closed:
            self.log_file.close()

    def kill(self) -> None:
        """Last resort (cleanup): SIGKILL the children, then the main process."""
        if self.process.poll() is None:
            for pid in self.children():
                with contextlib.suppress(ProcessLookupError):  # a child may exit meanwhile
                    os.kill(pid, signal.SIGKILL)
            self.process.kill()
        self.process.wait(timeout=10)
        if not self.log_file.closed:
            self.log_file.close()


def database_url() -> str:
    """The URL of the database the running tests use, for processes they start (workers)."""
    from django.db import connection

    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    return (
        f"postgres://{settings['USER']}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/{settings['NAME']}"
    )


@contextlib.contextmanager
def celery_worker(redis_url: str, tmp_path: Path, **extra_env: str):
    """A `celery worker` process on its own queue, against the test database; yields
    (a client app of its own, the queue)."""
    from celery import Celery

    queue = f"pipal-test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "pipal_site.settings.local",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": redis_url,
        "CELERY_RESULT_BACKEND": redis_url,
        "PIPAL_VAR_DIR": str(tmp_path / "var"),
        **extra_env,
    }
    worker = CeleryWorker(queue, [queue], env, tmp_path / "worker.log")
    # A client app of its own: the project's app may hold state from tasks that earlier tests
    # ran in-process.
    client = Celery("pipal-test-client", broker=redis_url, backend=redis_url)
    try:
        yield client, queue
    finally:
        client.close()
        worker.stop()


# --- judgments ------------------------------------------------------------------------


def rater(study, external_id: str):
    """A new rater of the study (the service, not the API)."""
    from annotation.raters import rater_create

    return rater_create(study=study, external_id=external_id)[0]


def vote(study, rater, count: int, *, left_wins: bool = True) -> None:
    """``count`` judgments by ``rater`` over the study's pairs, cycling through them."""
    from itertools import combinations

    from annotation.models import DistortedImage
    from annotation.rating.votes import judgment_record

    images = list(DistortedImage.objects.filter(study=study).order_by("id"))
    pairs = [
        (a, b)
        for reference in {i.reference_id for i in images}
        for a, b in combinations(images, 2)
        if a.reference_id == b.reference_id == reference
    ]
    for n in range(count):
        a, b = pairs[n % len(pairs)]
        judgment_record(study=study, image_a_id=a.id, image_b_id=b.id, a_wins=left_wins, rater=rater)


def data_uri_pngs(html: str) -> list[bytes]:
    """The PNGs a page embeds as data URIs (its charts)."""
    import base64
    import re

    return [base64.b64decode(match) for match in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]


# --- studies whose MOS follows a known order ------------------------------------------


def graded_study(tmp_path: Path, slug: str = "graded", references: int = 3):
    """References with noise (traditional) and blur-then-sharpen (super-resolution) versions of
    growing strength; judgments where the less-distorted image wins, so MOS follows quality."""
    import numpy as np
    from PIL import Image

    from annotation.models import DistortedImage
    from annotation.rating.votes import judgment_record

    folder = tmp_path / slug
    (folder / "Ref").mkdir(parents=True)
    (folder / "Dis").mkdir()
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:48, 0:48]
    for r in range(references):
        base = (128 + 60 * np.sin(x / (4 + r)) + 40 * np.cos(y / 5)).clip(0, 255)
        ref = np.stack([base, base[::-1], base.T], axis=-1).astype(np.uint8)
        Image.fromarray(ref).save(folder / "Ref" / f"R{r:03d}.png")
        for level in range(1, 6):
            noisy = (ref + rng.normal(0, 6 * level, ref.shape)).clip(0, 255).astype(np.uint8)
            Image.fromarray(noisy).save(folder / "Dis" / f"R{r:03d}_01_{level:02d}.png")
            small = Image.fromarray(ref).resize((48 // (level + 1), 48 // (level + 1)), Image.BICUBIC)
            small.resize((48, 48), Image.BICUBIC).save(folder / "Dis" / f"R{r:03d}_02_{level:02d}.png")
    (folder / "distortion_types.csv").write_text(
        "id,name,category,subtype\n01,Gaussian noise,traditional,gaussian_noise\n"
        "02,Bicubic up-sampling,super_resolution,interpolation\n"
    )
    study = plain_study(slug)
    import_folder(study, folder)
    images = list(DistortedImage.objects.filter(study=study).select_related("distortion_type"))
    by_reference: dict[int, list] = {}
    for image in images:
        by_reference.setdefault(image.reference_id, []).append(image)

    def badness(image):  # noise hurts a little less than blur at the same level
        return image.level + (0.5 if image.distortion_type.code == "02" else 0)

    for group in by_reference.values():
        for _ in range(3):
            for i, a in enumerate(group):
                for b in group[i + 1 :]:
                    judgment_record(study=study, image_a_id=a.id, image_b_id=b.id, a_wins=badness(a) < badness(b))
    return study



def grating_texture(seed: int, size: int, *, gratings: int, frequencies: tuple[float, float], amplitude: float = 0.1,
                    slope: float = 0.3, phase_max: float = 6.0):
    """A synthetic HxWx3 uint8 image: per channel a colour gradient (``slope``) plus ``gratings`` sinusoids of
    random frequency in ``frequencies`` (cycles/pixel), angle and phase (0..``phase_max``). Seeded: the same
    arguments give the same pixels. Tests pick the frequencies against what they need (below a x4 LR's
    Nyquist limit of 0.125, or detail an LR cannot hold)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    out = np.empty((size, size, 3))
    for channel in range(3):
        value = 0.5 + slope * (x * rng.uniform(-1, 1) + y * rng.uniform(-1, 1)) / size
        for _ in range(gratings):
            frequency, angle = rng.uniform(*frequencies), rng.uniform(0, np.pi)
            value += amplitude * np.sin(
                2 * np.pi * frequency * (x * np.cos(angle) + y * np.sin(angle)) + rng.uniform(0, phase_max))
        out[..., channel] = value
    return np.clip(np.round(out * 255), 0, 255).astype(np.uint8)

LEARNABLE_LEVELS = (1, 2, 3)


def _texture(rng, size: int):
    import numpy as np

    noise = rng.random((size // 4 + 1, size // 4 + 1, 3))
    upscaled = np.kron(noise, np.ones((4, 4, 1)))[:size, :size]
    return (upscaled * 200 + 28).astype(np.uint8)


def _distort(image, code: str, level: int, rng):
    import numpy as np
    from PIL import Image

    if code == "01":
        sigma = 12.0 * level
        noisy = image.astype(np.float64) + rng.normal(0, sigma, image.shape)
        return np.clip(np.rint(noisy), 0, 255).astype(np.uint8), sigma / 12.0
    small = Image.fromarray(image).resize((image.shape[1] // (level + 1),) * 2)
    blurred = np.asarray(small.resize(image.shape[:2][::-1]))
    return blurred, float(level)


def make_learnable_study(
    slug: str, root: Path, *, references: int = 4, size: int = 64, seed: int = 0, noise: float = 0.1, repeats: int = 2
):
    """A study whose judgments carry a learnable signal, for the learned-metric tests:
    ``references`` smooth random textures x 2 types (Gaussian noise 01, box blur 02) x 3 levels,
    and judgments on every pair of a reference (``repeats`` votes each; a share ``noise`` of votes
    flipped) where the synthetic raters prefer the less distorted image. The judgments go
    through the real replay service, so the Elo MOS is the platform's own."""
    import itertools
    import random

    import numpy as np
    from PIL import Image

    from annotation.analysis.replay import ReplayRow, judgments_replay

    rng = np.random.default_rng(seed)
    (root / "Ref").mkdir(parents=True)
    (root / "Dis").mkdir(parents=True)
    badness: dict[str, float] = {}
    for r in range(1, references + 1):
        name = f"R{r:04d}"
        reference = _texture(rng, size)
        Image.fromarray(reference).save(root / "Ref" / f"{name}.png")
        for code in ("01", "02"):
            for level in LEARNABLE_LEVELS:
                image, strength = _distort(reference, code, level, rng)
                file = f"{name}_{code}_{level:02d}.png"
                Image.fromarray(image).save(root / "Dis" / file)
                badness[file] = strength + (0.5 if code == "02" else 0.0)
    (root / "distortion_types.csv").write_text(
        "id,name,category,subtype\n01,Noise,traditional,noise\n02,Blur,traditional,blur\n"
    )
    study = plain_study(slug, slug)
    import_folder(study, root)
    votes = random.Random(seed)
    rows, line = [], 1
    for r in range(1, references + 1):
        names = sorted(n for n in badness if n.startswith(f"R{r:04d}_"))
        for _ in range(repeats):
            for a, b in itertools.combinations(names, 2):
                a_wins = badness[a] < badness[b]
                if votes.random() < noise:
                    a_wins = not a_wins
                line += 1
                rows.append(ReplayRow(line, a, b, a_wins, f"rater-{votes.randint(1, 5)}"))
    votes.shuffle(rows)
    judgments_replay(study=study, rows=rows)
    return study, badness


# --- SR checkpoints -------------------------------------------------------------------


def install_random_checkpoint(name: str, weights_dir: Path, seed: int = 0) -> list[Path]:
    """Write the file(s) a checkpoint needs (both ends of an interpolation) with random weights,
    under the published names. CI has no network and the official files cannot be downloaded
    here: these exercise the loading and inference path; their outputs are no model's results."""
    import torch

    from sr_models.checkpoints import CHECKPOINTS

    checkpoint = CHECKPOINTS.get(name)
    parts = [CHECKPOINTS.get(part) for part in checkpoint.parts or (name,)]
    written = []
    weights_dir.mkdir(parents=True, exist_ok=True)
    for offset, part in enumerate(parts):
        torch.manual_seed(seed + offset)
        model = part.build()
        with torch.no_grad():
            for tensor in model.state_dict().values():
                if tensor.is_floating_point() and tensor.ndim > 1:
                    tensor.mul_(0.5)  # keep deep random nets' outputs in range
        path = weights_dir / part.file
        if not path.exists():
            torch.save(model.state_dict(), path)
        written.append(path)
    return written


def edge_shapes(seed: int, size: int = 96):
    """Smooth shading plus six sharp-edged discs and bars of random colours, anti-aliased by 4x4
    supersampling: the edges example-based SR is good at, nothing a test has to download."""
    import numpy as np

    rng = np.random.default_rng(seed)
    fine = 4 * size
    y, x = (np.mgrid[0:fine, 0:fine] + 0.5) / 4
    base, tilt = rng.uniform(0.3, 0.7, 3), rng.uniform(-0.2, 0.2, (2, 3))
    out = base + (x[..., None] * tilt[0] + y[..., None] * tilt[1]) / size
    for _ in range(6):
        colour = rng.uniform(0.05, 0.95, 3)
        if rng.random() < 0.5:
            cy, cx = rng.uniform(0, size, 2)
            mask = (y - cy) ** 2 + (x - cx) ** 2 < rng.uniform(6, 24) ** 2
        else:
            angle, offset, width = rng.uniform(0, np.pi), rng.uniform(-size / 3, size / 3), rng.uniform(3, 12)
            mask = np.abs((x - size / 2) * np.cos(angle) + (y - size / 2) * np.sin(angle) - offset) < width
        out[mask] = colour
    out = out.reshape(size, 4, size, 4, 3).mean(axis=(1, 3))
    return np.clip(np.round(out * 255), 0, 255).astype(np.uint8)
