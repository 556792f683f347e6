"""Draw a config's samples as its pipeline delivers them to the model: image | ground truth PNGs.

    python tools/analysis_tools/browse_dataset.py CONFIG [--split train|val|test] [--max 20] [--out-dir DIR]

For both model families (the config's own mmdet or mmseg visualizer). It stops after ``--max``
samples, also on a RepeatDataset; files go to ``work_dirs/browse_<config>/`` unless ``--out-dir``.
"""
import argparse
import os.path as osp

import numpy as np
from mmengine.config import DictAction
from mmengine.registry import DATASETS, VISUALIZERS, init_default_scope

from mmcityscapes.common.errors import run_tool
from mmcityscapes.common.io import check_writable
from mmcityscapes.datasets.preflight import check_dataset_files
from mmcityscapes.utils.config import default_work_dir, load_config
from mmcityscapes.utils.tasks import model_family
from mmcityscapes.visualization.overlay import quiet_visualizer, write_overlay


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('--split', choices=['train', 'val', 'test'], default='train')
    parser.add_argument('--max', type=int, default=20, help='samples to draw')
    parser.add_argument('--out-dir', help='default: work_dirs/browse_<config>')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    args = parser.parse_args()
    cfg = load_config(args.config, args.cfg_options)
    check_dataset_files(cfg, (args.split,))
    init_default_scope(cfg.get('default_scope'))
    dataset = DATASETS.build(cfg[f'{args.split}_dataloader'].dataset)
    with VISUALIZERS.switch_scope_and_registry(cfg.get('default_scope')) as visualizers:
        visualizer = quiet_visualizer(visualizers.get(cfg.visualizer.type), dataset.metainfo, 'browse_dataset')
    out_dir = args.out_dir or default_work_dir(args.config, 'browse_')
    check_writable(out_dir, '--out-dir')
    if model_family(cfg) != 'semantic':
        from mmdet.models.utils import mask2ndarray
        from mmdet.structures.bbox import BaseBoxes
    count = min(args.max, len(dataset))
    for i in range(count):
        item = dataset[i]
        sample = item['data_samples']
        if 'gt_instances' in sample:  # the forms mmdet's visualizer draws, as its browse_dataset.py makes them
            gt = sample.gt_instances
            if isinstance(gt.get('bboxes'), BaseBoxes):
                gt.bboxes = gt.bboxes.tensor
            if 'masks' in gt:
                gt.masks = mask2ndarray(gt.masks).astype(bool)
        image = np.ascontiguousarray(item['inputs'].permute(1, 2, 0).numpy()[..., ::-1])  # BGR -> RGB
        name = f'{i:04d}_{osp.splitext(osp.basename(sample.img_path))[0]}.png'
        write_overlay(visualizer, sample, osp.join(out_dir, name), image=image)
    print(f'{count} {args.split} samples drawn into {out_dir}')


if __name__ == '__main__':
    run_tool(main)
