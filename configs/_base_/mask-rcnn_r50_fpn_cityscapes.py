# mmdet's Cityscapes Mask R-CNN (R50-FPN, 8 thing classes), reading the dataset from
# $CITYSCAPES_ROOT (default data/cityscapes), evaluated with COCO bbox/segm mAP and the official
# Cityscapes mask AP/AP50 (computed in memory by the plugin, not through per-mask PNG files).
_base_ = 'mmdet::cityscapes/mask-rcnn_r50_fpn_1x_cityscapes.py'
custom_imports = dict(imports=['mmcityscapes.components'], allow_failed_imports=False)

data_root = r"""{{$CITYSCAPES_ROOT:data/cityscapes}}"""  # any path: quotes, with or without a final /
train_dataloader = dict(dataset=dict(dataset=dict(data_root=data_root)))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='ClasswiseCocoMetric', metric=['bbox', 'segm'],
         ann_file=data_root + '/annotations/instancesonly_filtered_gtFine_val.json'),
    dict(type='CityscapesInstanceMetric'),
]
test_evaluator = val_evaluator
# The plugin's assigner, sampler and mask head give mmdet's assignments, samples and mask targets
# without host-device round trips; its RoI extractors pool, and its RPN head decodes proposals, in
# float32 under AMP, as torchvision does (tests/test_device_train_step.py).
device_side = dict(assigner=dict(type='DeviceMaxIoUAssigner'), sampler=dict(type='DeviceRandomSampler'))
model = dict(rpn_head=dict(type='Float32RPNHead'),
             roi_head=dict(bbox_roi_extractor=dict(type='Float32RoIExtractor'),
                           mask_roi_extractor=dict(type='Float32RoIExtractor'),
                           mask_head=dict(type='DeviceTargetFCNMaskHead')),
             train_cfg=dict(rpn=device_side, rcnn=device_side))
