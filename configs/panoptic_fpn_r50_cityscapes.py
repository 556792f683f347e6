# panoptic-fpn_r50_fpn, 8x1 images, 8 epochs, 800-1024 scale, Cityscapes fine (each epoch 8 passes over train).
# mmdet's Panoptic FPN R50-FPN (its COCO config) on Cityscapes panoptic: 8 thing and 11 stuff
# classes, the schedule of mmdet's Cityscapes Mask R-CNN, an ImageNet ResNet-50 (mmdet's init;
# for the staged recipe's coarse-pretrained one, add its stage 1's CoarsePretrainHook). Trained and
# tested with tools/train.py / tools/test.py, scored by the official PQ.
_base_ = ['mmdet::panoptic_fpn/panoptic-fpn_r50_fpn_1x_coco.py', '_base_/datasets/cityscapes_panoptic.py']
custom_imports = dict(imports=['mmcityscapes.components'], allow_failed_imports=False)

num_things, num_stuff = 8, 11  # panoptic.CLASSES: person ... bicycle, then road ... sky
model = dict(
    roi_head=dict(bbox_head=dict(num_classes=num_things), mask_head=dict(num_classes=num_things)),
    semantic_head=dict(num_things_classes=num_things, num_stuff_classes=num_stuff),
    panoptic_fusion_head=dict(num_things_classes=num_things, num_stuff_classes=num_stuff))

train_dataloader = dict(batch_size=1, dataset={{_base_.panoptic_train_dataset}})
val_dataloader = dict(dataset={{_base_.panoptic_val_dataset}})
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='CityscapesPanopticMetric')  # in place of mmdet's COCO PQ (panopticapi)
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(lr=0.01))  # mmdet's Cityscapes lr for 8 GPUs x 1 image
auto_scale_lr = dict(enable=False, base_batch_size=8)  # (--auto-scale-lr)
max_epochs = 8
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[7], gamma=0.1)
]
default_hooks = dict(checkpoint=dict(save_best='cityscapes/PQ', rule='greater', max_keep_ckpts=1))
