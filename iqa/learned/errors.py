"""The errors of the learned metrics (no Django, no torch): one module every learned module may import."""


class LearnedModelError(RuntimeError):
    """A trained folder or a weight file that cannot be used, with a message that names it."""


class TrainingError(ValueError):
    """Inputs or settings a training run refuses, with a message that says why."""
