"""Learned IQA metrics the platform trains itself (no Django here).

Three families, one file each: ``lpips`` (LPIPS-Alex with max, BlurPool or L2
pooling; PIPAL Sec. 4.3), ``ranker`` (RankSRGAN's VGG Ranker) and
``score_predictor`` (4PP-EUSR's MobileNetV2 score predictor). ``store`` keeps
the trained folders and turns each into a metric of ``iqa.metrics``;
``training`` holds what the training runs share (split by reference,
checkpoints with a manifest, resume).
"""
