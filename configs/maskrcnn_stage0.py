# deeplabv3_r50 coarse pretraining (stage 0), 1x4 images, 12 epochs, 512x1024 crops, Cityscapes coarse.
# Stage 0: pretrain the Mask R-CNN backbone on Cityscapes coarse labels (the staged recipe: 4120 train_extra
# images, 12 epochs, cross-entropy, Adam, ReduceLROnPlateau), initialised from torchvision's
# DeepLabv3-ResNet50. A plain-stem ResNet-50 with mmdet's parameter names and shapes, so that
# CoarsePretrainHook loads it into Mask R-CNN (stage 1); dilation changes no weight shape.
_base_ = '_base_/schedules/adam_10e.py'
custom_imports = dict(imports=['mmcityscapes.components'], allow_failed_imports=False)

norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size=(512, 1024)),
    backbone=dict(
        type='ResNet', depth=50, num_stages=4, out_indices=(0, 1, 2, 3),
        strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4),  # output stride 8, as DeepLabv3
        norm_cfg=norm_cfg, norm_eval=False, style='pytorch', contract_dilation=True,
        init_cfg=dict(type='Pretrained', prefix='backbone.',
                      checkpoint='https://download.pytorch.org/models/deeplabv3_resnet50_coco-cd0a2569.pth')),
    decode_head=dict(
        type='ASPPHead', in_channels=2048, in_index=3, channels=512, dilations=(1, 12, 24, 36),
        dropout_ratio=0.1, num_classes=19, norm_cfg=norm_cfg, align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0, avg_non_ignore=True)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

# coarse labels of the train_extra subset chosen by the data preparation (splits/coarse_pretrain.txt)
train_dataloader = dict(
    batch_size=4,  # the staged recipe's 4 images per batch
    dataset=dict(
        ann_file='splits/coarse_pretrain.txt', seg_map_suffix='_gtCoarse_labelTrainIds.png',
        data_prefix=dict(img_path='leftImg8bit/train_extra', seg_map_path='gtCoarse/train_extra')))
test_evaluator = dict(_delete_=True, type='SegmentationMetric', per_class=False)  # validated on fine val labels
auto_scale_lr = dict(enable=False, base_batch_size=4)  # the recipe's lr is for 1 GPU x 4 images (--auto-scale-lr)

param_scheduler = [  # ReduceLROnPlateau on the validation loss (ValLossHook)
    dict(type='ReduceOnPlateauLR', monitor='loss', rule='less', factor=0.1, patience=2, by_epoch=True)]
train_cfg = dict(max_epochs=12)
