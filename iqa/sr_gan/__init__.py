"""Training the seed papers' perceptual SR models (SRGAN, ESRGAN, RankSRGAN) in the platform.

``recipes``: one dataclass per recipe, every constant with its source; ``trainer``: the loop (G and D
steps, exact resume, validation, plot). 4PP-EUSR's recipe is not here (a separate piece of work).
"""
