"""The pure building blocks of GAN training for SR (no Django here): adversarial, perceptual and
rank-content losses (``losses``), the frozen VGG19 feature extractor of the perceptual loss
(``vgg``) and the discriminators of SRGAN/ESRGAN, RankSRGAN and 4PP-EUSR (``discriminators``)."""
