"""Moving benchmark reports written before private files had their own root (they were under
the public MEDIA_ROOT/benchmarks/) to PIPAL_PRIVATE_ROOT/benchmarks/; migration 0002 runs it."""

import shutil
from pathlib import Path


def move_reports_out_of_media(media_root: Path, private_root: Path) -> int:
    """Move every file under media_root/benchmarks to the same relative name under
    private_root/benchmarks (stored BenchmarkRun.folder values stay right), then remove the
    emptied public folders; returns how many files moved. A name taken on both sides is refused."""
    old = Path(media_root) / "benchmarks"
    if not old.is_dir():
        return 0
    files = sorted(path for path in old.rglob("*") if path.is_file() or path.is_symlink())
    clashes = [path for path in files if (Path(private_root) / "benchmarks" / path.relative_to(old)).exists()]
    if clashes:
        raise FileExistsError(
            f"{len(clashes)} report file(s) exist in both places, e.g. {clashes[0]}; move them by hand"
        )
    for path in files:
        target = Path(private_root) / "benchmarks" / path.relative_to(old)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), str(target))
    for folder in sorted((p for p in old.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        folder.rmdir()
    old.rmdir()
    return len(files)
