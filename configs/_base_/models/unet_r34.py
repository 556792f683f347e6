# U-Net decoder (projects/mmcityscapes UNetHead) on an ImageNet-pretrained ResNet-34 encoder.
custom_imports = dict(imports=['mmcityscapes.components'], allow_failed_imports=False)
norm_cfg = dict(type='SyncBN', requires_grad=True)  # plain BN when training on one process
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size=(512, 1024)),
    backbone=dict(
        type='ResNet', depth=34, num_stages=4, out_indices=(0, 1, 2, 3), norm_cfg=norm_cfg,
        norm_eval=False, style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet34')),
    decode_head=dict(
        type='UNetHead', in_channels=[64, 128, 256, 512], in_index=[0, 1, 2, 3],
        decoder_channels=(256, 128, 64, 32, 16), num_classes=19, dropout_ratio=0.0,
        norm_cfg=norm_cfg, align_corners=False,
        # mean over non-ignored pixels, as PyTorch's CrossEntropyLoss(ignore_index=255) in the U-Net CV recipe
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0, avg_non_ignore=True)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
