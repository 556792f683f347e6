# mask2former_r50, 8x2 images, 90k iterations, 512x1024 crops, Cityscapes fine panoptic (one model: PQ, AP, mIoU).
# mmdet's Mask2Former R50 (its COCO panoptic config) on Cityscapes panoptic: 8 thing and 11 stuff
# classes, the schedule of Mask2Former's own Cityscapes recipe (Cheng et al., CVPR 2022;
# facebookresearch/Mask2Former configs/cityscapes/panoptic-segmentation/maskformer2_R50_bs16_90k.yaml
# and its Base-Cityscapes-PanopticSegmentation.yaml, quoted below as "Mask2Former"). One checkpoint
# is scored on the three official tables: PQ of the panoptic result, AP of the instance result and
# mIoU of the semantic result (MaskFormerSemanticFusionHead), in one pass over val.
_base_ = ['mmdet::mask2former/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py', '_base_/datasets/cityscapes_panoptic.py']
custom_imports = dict(imports=['mmcityscapes.components'], allow_failed_imports=False)

num_things, num_stuff = 8, 11  # panoptic.CLASSES: person ... bicycle, then road ... sky
num_classes = num_things + num_stuff
model = dict(
    # no COCO large-scale-jitter padding to 1024x1024: the crops are 512x1024 (padded to 32 as Mask2Former's)
    data_preprocessor=dict(batch_augments=None),
    # ImageNet ResNet-50 (torchvision's, the init mmdet inherits; Mask2Former's R-50.pkl is its
    # conversion), every stage trained with synchronised BN (Mask2Former: FREEZE_AT 0, SyncBN)
    backbone=dict(frozen_stages=-1, norm_cfg=dict(type='SyncBN', requires_grad=True), norm_eval=False),
    panoptic_head=dict(
        num_things_classes=num_things, num_stuff_classes=num_stuff,
        num_queries=100,  # Mask2Former: NUM_OBJECT_QUERIES 100
        # Mask2Former: CLASS_WEIGHT 2.0 (mmdet's loss_weight), NO_OBJECT_WEIGHT 0.1: the class weight of "no object"
        loss_cls=dict(class_weight=[1.0] * num_classes + [0.1])),
    panoptic_fusion_head=dict(type='MaskFormerSemanticFusionHead', num_things_classes=num_things,
                              num_stuff_classes=num_stuff),
    # Mask2Former: SEMANTIC_ON, INSTANCE_ON, PANOPTIC_ON; OBJECT_MASK_THRESHOLD and OVERLAP_THRESHOLD 0.8
    test_cfg=dict(panoptic_on=True, instance_on=True, semantic_on=True, object_mask_thr=0.8, iou_thr=0.8))

crop_size = (512, 1024)  # (h, w); Mask2Former: CROP SIZE (512, 1024), absolute
train_pipeline = [
    dict(type='LoadImageFromFile', to_float32=True),  # mmdet's PhotoMetricDistortion takes float32 images
    dict(type='LoadCityscapesPanopticAnnotations'),
    dict(type='RandomFlip', prob=0.5),
    # Mask2Former: the short side one of 512, 614, ..., 2048 (0.5-2.0 x 1024), the long side at most 4096
    dict(type='RandomChoiceResize', scales=[(4096, int(x * 0.1 * 1024)) for x in range(5, 21)], keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, crop_type='absolute', recompute_bbox=True, allow_negative_crop=True),
    dict(type='PhotoMetricDistortion'),  # Mask2Former: COLOR_AUG_SSD
    dict(type='PackDetInputs')
]
train_dataloader = dict(
    batch_size=2,  # Mask2Former: IMS_PER_BATCH 16, i.e. 8 GPUs x 2 images
    num_workers=4,
    dataset=dict(  # the train split itself (an iteration schedule), in place of mmdet's COCO one
        _delete_=True, type='CityscapesPanopticDataset', data_root={{_base_.cityscapes_root}},
        ann_file='gtFine/cityscapes_panoptic_train.json',
        data_prefix=dict(img='leftImg8bit/train/', seg='gtFine/cityscapes_panoptic_train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32), pipeline=train_pipeline))
val_dataloader = dict(dataset={{_base_.panoptic_val_dataset}})  # tested at 1024x2048 (Mask2Former: MIN_SIZE_TEST 1024)
test_dataloader = val_dataloader
# the project's exact metrics, in place of mmdet's COCO ones: official PQ, official instance AP, mIoU
val_evaluator = [{{_base_.panoptic_evaluator}}, dict(type='CityscapesInstanceMetric'),
                 dict(type='mmseg.SegmentationMetric')]
test_evaluator = val_evaluator

# Mask2Former: AdamW, BASE_LR 1e-4, WEIGHT_DECAY 0.05, BACKBONE_MULTIPLIER 0.1, full-model gradient
# clipping at 0.01 (the values mmdet's COCO config has too), AMP (here: --amp)
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
    paramwise_cfg=dict(custom_keys=dict(backbone=dict(lr_mult=0.1, decay_mult=1.0))),
    clip_grad=dict(max_norm=0.01, norm_type=2))
auto_scale_lr = dict(enable=False, base_batch_size=16)  # (--auto-scale-lr) the lr above is for 16 images

max_iters = 90000  # Mask2Former: MAX_ITER 90000
interval = 5000  # Mask2Former: EVAL_PERIOD 5000
# Mask2Former: WarmupPolyLR with no warmup (WARMUP_ITERS 0), detectron2's power 0.9
param_scheduler = dict(_delete_=True, type='PolyLR', eta_min=0, power=0.9, begin=0, end=max_iters, by_epoch=False)
train_cfg = dict(max_iters=max_iters, val_interval=interval, dynamic_intervals=None)
default_hooks = dict(checkpoint=dict(interval=interval, max_keep_ckpts=1, save_best='cityscapes/PQ', rule='greater'))
