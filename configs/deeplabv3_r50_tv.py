# deeplabv3_r50 in torchvision's shape, 4x2 images, 80k iterations, 512x1024 crops, Cityscapes fine.
# The network the DeepLabv3 fine-tuning recipe fine-tunes: torchvision deeplabv3_resnet50 with its auxiliary head, 42.0M
# parameters. Against configs/deeplabv3_r50.py (mmseg's R50-D8, 68.1M): a plain
# ResNet-50 (torchvision's, stride in the 3x3 conv) and a 256-channel ASPP projected by 1x1 conv +
# dropout 0.5 + 3x3 conv. The seed fine-tunes torchvision's COCO weights: convert them with
# tools/model_converters/torchvision_deeplabv3.py and pass load_from. Its README states no optimizer
# or schedule: mmseg's are kept.
_base_ = './deeplabv3_r50.py'

model = dict(
    pretrained=None,
    backbone=dict(type='ResNet', init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    decode_head=dict(type='TorchvisionASPPHead', channels=256, dropout_ratio=0))
