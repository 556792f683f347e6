# Cityscapes panoptic segmentation for mmdet's panoptic models, reading the dataset from
# $CITYSCAPES_ROOT (default data/cityscapes): gtFine/cityscapes_panoptic_{train,val}.json and their
# PNGs, which tools/dataset_converters/cityscapes.py writes as cityscapesscripts' createPanopticImgs
# does; 8 thing then 11 stuff classes; scored by the official PQ, computed in memory. Variables only,
# so that a config that also inherits an mmdet model config (with its COCO dataloaders) takes them:
# train_dataloader = dict(dataset={{_base_.panoptic_train_dataset}}), ...
cityscapes_root = r"""{{$CITYSCAPES_ROOT:data/cityscapes}}"""  # any path: quotes, with or without a final /
panoptic_scale = (2048, 1024)  # (w, h): Cityscapes' full resolution, as mmdet tests its Cityscapes models
panoptic_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadCityscapesPanopticAnnotations'),
    dict(type='RandomResize', scale=[(2048, 800), panoptic_scale], keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
panoptic_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=panoptic_scale, keep_ratio=True),
    dict(type='LoadCityscapesPanopticAnnotations'),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
panoptic_train_dataset = dict(
    _delete_=True,  # in place of the inherited dataset (mmdet's COCO one)
    type='RepeatDataset', times=8,  # as mmdet's Cityscapes Mask R-CNN: 8 epochs of 8 passes
    dataset=dict(type='CityscapesPanopticDataset', data_root=cityscapes_root,
                 ann_file='gtFine/cityscapes_panoptic_train.json',
                 data_prefix=dict(img='leftImg8bit/train/', seg='gtFine/cityscapes_panoptic_train/'),
                 filter_cfg=dict(filter_empty_gt=True, min_size=32), pipeline=panoptic_train_pipeline))
panoptic_val_dataset = dict(
    type='CityscapesPanopticDataset', data_root=cityscapes_root, ann_file='gtFine/cityscapes_panoptic_val.json',
    data_prefix=dict(img='leftImg8bit/val/', seg='gtFine/cityscapes_panoptic_val/'), test_mode=True,
    pipeline=panoptic_test_pipeline)
panoptic_evaluator = dict(type='CityscapesPanopticMetric')
