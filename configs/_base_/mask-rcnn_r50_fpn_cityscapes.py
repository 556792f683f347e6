# mmdet's Cityscapes Mask R-CNN (R50-FPN, 8 thing classes), reading the dataset from
# $CITYSCAPES_ROOT (default data/cityscapes/), evaluated with COCO bbox/segm mAP.
_base_ = 'mmdet::cityscapes/mask-rcnn_r50_fpn_1x_cityscapes.py'

data_root = '{{$CITYSCAPES_ROOT:data/cityscapes/}}'
train_dataloader = dict(dataset=dict(dataset=dict(data_root=data_root)))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='CocoMetric', metric=['bbox', 'segm'],
         ann_file=data_root + 'annotations/instancesonly_filtered_gtFine_val.json'),
]
test_evaluator = val_evaluator
