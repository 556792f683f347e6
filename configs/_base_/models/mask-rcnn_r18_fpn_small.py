# Pieces of a small Mask R-CNN for 256x512 images (ResNet-18 FPN, narrow heads), as variables only
# so that any Mask R-CNN config can take them: model = {{_base_.small_model}}, ...
small_img_scale = (512, 256)  # (w, h): a quarter of Cityscapes' 2048x1024
small_channels = 64  # FPN / RoI feature width (256 in the full model)
small_model = dict(
    backbone=dict(depth=18, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=small_channels),
    rpn_head=dict(in_channels=small_channels, feat_channels=small_channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=small_channels),
        bbox_head=dict(in_channels=small_channels, fc_out_channels=256),
        mask_roi_extractor=dict(out_channels=small_channels),
        mask_head=dict(in_channels=small_channels, conv_out_channels=small_channels)),
    train_cfg=dict(rpn_proposal=dict(nms_pre=1000, max_per_img=500), rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=500)))
small_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomResize', scale=[(512, 200), small_img_scale], keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
small_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=small_img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
