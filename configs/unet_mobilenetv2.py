# unet_mobilenetv2, 1x4 images, 10 epochs, 512x1024 crops, Cityscapes fine.
# The same U-Net decoder on mmseg's ImageNet-pretrained MobileNetV2 (athar-usama/semantic's encoder comparison).
_base_ = './unet_r34.py'
model = dict(
    backbone=dict(
        _delete_=True, type='MobileNetV2', widen_factor=1.0,
        strides=(1, 2, 2, 2, 1, 2, 1), out_indices=(1, 2, 4, 6),  # 1/4, 1/8, 1/16, 1/32
        norm_cfg={{_base_.norm_cfg}},
        init_cfg=dict(type='Pretrained', checkpoint='mmcls://mobilenet_v2')),
    decode_head=dict(in_channels=[24, 32, 96, 320]))
