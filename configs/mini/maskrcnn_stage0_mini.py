# configs/maskrcnn_stage0.py with a ResNet-18 on the generated 256x512 mini-Cityscapes, 1 epoch
# (tests and a quick end-to-end run of configs/mini/maskrcnn_staged_mini.py).
_base_ = '../maskrcnn_stage0.py'

crop_size = (128, 256)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(depth=18, init_cfg=None),
    decode_head=dict(in_channels=512, channels=64))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(512, 256), ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(512, 256), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(batch_size=2, num_workers=1, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(num_workers=1, persistent_workers=False, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=1)
