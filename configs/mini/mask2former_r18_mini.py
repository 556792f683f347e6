# configs/mask2former_r50_cityscapes_panoptic.py narrowed for the generated 256x512 mini-Cityscapes
# (tests; a quick end-to-end run): a ResNet-18 from scratch, 64 channels instead of 256, 20
# queries instead of 100, 3 decoder layers instead of 9, 2 pixel-decoder encoder layers instead of
# 6, 1024 sampled points per mask instead of 12544, and a short AdamW schedule.
_base_ = '../mask2former_r50_cityscapes_panoptic.py'

channels = 64
max_iters = 200
attention = dict(embed_dims=channels, num_heads=8)  # 8 heads of 8 channels
model = dict(
    backbone=dict(depth=18, init_cfg=None, norm_cfg=dict(type='BN', requires_grad=True)),
    panoptic_head=dict(
        in_channels=[64, 128, 256, 512],  # ResNet-18's stages
        feat_channels=channels, out_channels=channels, num_queries=20,
        pixel_decoder=dict(
            encoder=dict(num_layers=2, layer_cfg=dict(self_attn_cfg=attention,
                                                      ffn_cfg=dict(embed_dims=channels, feedforward_channels=256))),
            positional_encoding=dict(num_feats=channels // 2)),
        positional_encoding=dict(num_feats=channels // 2),
        transformer_decoder=dict(num_layers=3, layer_cfg=dict(
            self_attn_cfg=attention, cross_attn_cfg=attention,
            ffn_cfg=dict(embed_dims=channels, feedforward_channels=256)))),
    train_cfg=dict(num_points=1024))

scale = (512, 256)  # (w, h): the mini images, whole
train_dataloader = dict(
    batch_size=2, num_workers=2, persistent_workers=False,
    sampler=dict(type='InfiniteSampler'),  # no worker restart every 5 batches (an epoch of 10 images)
    dataset=dict(pipeline=[
        dict(type='LoadImageFromFile', to_float32=True),
        dict(type='LoadCityscapesPanopticAnnotations'),
        dict(type='RandomFlip', prob=0.5),
        dict(type='RandomResize', scale=scale, ratio_range=(0.75, 1.25), keep_ratio=True),
        dict(type='RandomCrop', crop_size=(128, 256), crop_type='absolute', recompute_bbox=True,
             allow_negative_crop=True),
        dict(type='PackDetInputs')]))
val_dataloader = dict(num_workers=2, persistent_workers=False, dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=scale, keep_ratio=True),
    dict(type='LoadCityscapesPanopticAnnotations'),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))]))
test_dataloader = val_dataloader

# from scratch in a few hundred iterations: a larger lr, no backbone multiplier, looser clipping
optim_wrapper = dict(optimizer=dict(lr=1e-3), paramwise_cfg=dict(custom_keys=dict(backbone=dict(lr_mult=1.0))),
                     clip_grad=dict(max_norm=1.0))
param_scheduler = dict(end=max_iters)
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=max_iters))
