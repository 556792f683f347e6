# configs/panoptic_fpn_r50_cityscapes.py with a ResNet-18 FPN and narrow heads, from scratch, on the
# generated 256x512 mini-Cityscapes (tests; a quick end-to-end run).
_base_ = ['../panoptic_fpn_r50_cityscapes.py', '../_base_/models/mask-rcnn_r18_fpn_small.py']

max_iters = 80
model = dict(
    backbone=dict(depth=18, init_cfg=None, frozen_stages=-1, norm_eval=False),  # from scratch: train BN
    neck={{_base_.small_model.neck}},
    rpn_head=dict(in_channels=64, feat_channels=64,
                  anchor_generator=dict(scales=[4])),  # 16-256 px anchors for 4x smaller images
    roi_head={{_base_.small_model.roi_head}},
    semantic_head=dict(in_channels=64, inner_channels=64),
    train_cfg={{_base_.small_model.train_cfg}},
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=500),
                  panoptic=dict(stuff_area_limit=256)))  # 4096 pixels at 1024x2048, at 256x512
train_dataloader = dict(
    batch_size=2, num_workers=2, persistent_workers=False, sampler=dict(type='InfiniteSampler'),
    dataset=dict(times=1, dataset=dict(pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='LoadCityscapesPanopticAnnotations'),
        dict(type='RandomResize', scale=[(512, 200), (512, 256)], keep_ratio=True),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PackDetInputs')])))
val_dataloader = dict(num_workers=2, persistent_workers=False, dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(512, 256), keep_ratio=True),
    dict(type='LoadCityscapesPanopticAnnotations'),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))]))
test_dataloader = val_dataloader

# as configs/mini/maskrcnn_r18_mini.py: AdamW converges within a few hundred iterations from scratch
optim_wrapper = dict(optimizer=dict(_delete_=True, type='AdamW', lr=5e-4, weight_decay=0.05),
                     clip_grad=dict(max_norm=10))
param_scheduler = [dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20)]
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(by_epoch=False, interval=max_iters))
log_processor = dict(by_epoch=False)
