# The generated 256x512 mini-Cityscapes for the real-time configs (configs/mini/*_mini.py of
# configs/{bisenetv2_fcn,stdc1,ddrnet_23-slim,fast_scnn}_cityscapes.py): small images and crops,
# a short schedule. Variables only (the leaf configs' keys come from mmseg's configs).
mini_scale = (512, 256)  # (w, h): a quarter of Cityscapes' 2048x1024
mini_crop = (128, 256)  # (h, w): random crops; testing uses whole images
mini_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=mini_scale, ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=mini_crop, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
mini_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=mini_scale, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
mini_iters = 40
