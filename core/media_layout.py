"""Where public and private files live, as pure path rules (no Django: settings use them too)."""

from pathlib import Path

# The only folders the public media root may hold: the stimuli (and their thumbnails).
PUBLIC_MEDIA_FOLDERS = ("studies",)


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def public_overlaps(private_root: Path, public_roots: dict[str, Path]) -> list[str]:
    """Why private files would be public: the private folder inside (or holding) a folder a web
    server or Django serves to anyone. An empty list means no overlap."""
    private = Path(private_root).resolve()
    problems = []
    for name, root in public_roots.items():
        public = Path(root).resolve()
        if _inside(private, public):
            problems.append(f"PIPAL_PRIVATE_ROOT {private} is inside {name} {public}, which is served to the public")
        elif _inside(public, private):
            problems.append(f"{name} {public} (served to the public) is inside PIPAL_PRIVATE_ROOT {private}")
    return problems
