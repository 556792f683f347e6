# RPN anchors for stage 2, per FPN level (strides 4-64): octave scales and h/w ratios.
# Defaults are mmdet's; tools/analysis_tools/kmeans_anchors.py overwrites this file.
anchor_scales = [8]
anchor_ratios = [0.5, 1.0, 2.0]
