# RPN anchors for stage 2, per FPN level (strides 4-64): octave scales and h/w ratios.
# Defaults are mmdet's, used by stages 2 and 3 run by hand. kmeans_anchors.py writes its fit to
# work_dirs/kmeans_<config>/anchors.py; copy it here to use it.
anchor_scales = [8]
anchor_ratios = [0.5, 1.0, 2.0]
