"""Training the seed papers' perceptual SR models (SRGAN, ESRGAN, RankSRGAN, 4PP-EUSR) in the platform.

``recipes``: one dataclass per recipe, every constant with its source; ``trainer``: the loop (G and D
steps, exact resume, validation, plot).
"""
