"""What raters are shown, and under which names.

Every stimulus — reference, distorted image, practice or gold picture — is the
image's decoded pixels (RGB) as a PNG, stored in the public media folder under a
keyed name: the first 128 bits of an HMAC of the content with the site's secret.
So the same content always gets the same name (imports and generation stay
idempotent), yet a name cannot be checked against the content, every stimulus has
the same format and headers whatever its source (BMP, JPEG, TIFF…), and a browser
shows exactly the pixels the platform measured.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path

from django.core.files.storage import default_storage
from django.utils.crypto import salted_hmac
from PIL import Image

from annotation.imaging import png_bytes


def display_png(image_bytes: bytes) -> bytes:
    """The decoded pixels as PNG (RGB, no metadata)."""
    with Image.open(io.BytesIO(image_bytes)) as image:
        return png_bytes(image.convert("RGB"))


def stimulus_name(study_slug: str, png: bytes) -> str:
    key = salted_hmac("pipal.stimulus", hashlib.sha256(png).hexdigest(), algorithm="sha256").hexdigest()[:32]
    return f"studies/{study_slug}/{key}.png"


def store_stimulus(study_slug: str, png: bytes) -> str:
    """Write the PNG under its keyed name (once; an existing file with other bytes, e.g. cut
    short by a killed process, is replaced) and return the name. The file appears whole or
    not at all, so concurrent writers of the same content never clash."""
    name = stimulus_name(study_slug, png)
    path = Path(default_storage.path(name))
    if path.is_file() and path.stat().st_size == len(png) and path.read_bytes() == png:
        return name
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(png)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return name


def display_for(study_slug: str, file) -> str:
    """The stored display copy of an image file (a FieldFile or a path)."""
    with file.open("rb") if hasattr(file, "open") else open(file, "rb") as handle:
        data = handle.read()
    return store_stimulus(study_slug, display_png(data))


def ensure_display(item, study_slug: str) -> str:
    """An image's or reference's display name, made now if it has none (the caller saves)."""
    if not item.display:
        item.display = display_for(study_slug, item.file)
    return item.display.name if hasattr(item.display, "name") else item.display
