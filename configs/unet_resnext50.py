# unet_resnext50-32x4d, 1x4 images, 10 epochs, 512x1024 crops, Cityscapes fine.
# The same U-Net decoder on an ImageNet-pretrained ResNeXt-50 (32x4d) (athar-usama/semantic's encoder comparison).
_base_ = './unet_r34.py'
model = dict(
    backbone=dict(
        type='ResNeXt', depth=50, groups=32, base_width=4,
        init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnext50_32x4d')),
    decode_head=dict(in_channels=[256, 512, 1024, 2048]))
