"""Fit FPN anchor ratios and octave scales to a Mask R-CNN config's training boxes (k-means, IoU distance).

    python tools/analysis_tools/kmeans_anchors.py configs/maskrcnn_stage2.py
    python tools/analysis_tools/kmeans_anchors.py CONFIG --ratios 3 --scales 1 --out work_dirs/x/anchors.py
    cp work_dirs/kmeans_maskrcnn_stage2/anchors.py configs/_base_/tuned/   # use them by hand

The boxes are those of the config's training annotations, resized like its test pipeline; the
fit is projects/mmcityscapes/tuning/anchors.py (configs/maskrcnn_staged.py runs it between
stages 1 and 2). Prints the mean best-anchor IoU of mmdet's default anchors and of the fitted
ones, and writes the fitted ones as a variables-only config like configs/_base_/tuned/anchors.py.
"""
import argparse
import os.path as osp

from mmengine.config import DictAction

from mmcityscapes.common.errors import run_tool
from mmcityscapes.common.io import check_writable
from mmcityscapes.tuning.anchors import fit_anchors
from mmcityscapes.tuning.values import write_tuned
from mmcityscapes.utils.config import default_work_dir, load_config


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='Mask R-CNN config (its training annotations and test image scale)')
    parser.add_argument('--ratios', type=int, default=3, help='number of aspect ratios')
    parser.add_argument('--scales', type=int, default=1, help='number of octave scales per level')
    parser.add_argument('--min-size', type=float, default=4, help='ignore boxes thinner than this (px, resized)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', help='default: work_dirs/kmeans_<config name>/anchors.py')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def main():
    args = parse_args()
    out = args.out or osp.join(default_work_dir(args.config, 'kmeans_'), 'anchors.py')
    check_writable(out, '--out', folder=False)
    cfg = load_config(args.config, args.cfg_options)
    values, note = fit_anchors(cfg, args.ratios, args.scales, args.min_size, args.seed)
    write_tuned(values, out, note)
    print(f'{note}: {values}\nwrote {out}')


if __name__ == '__main__':
    run_tool(main)
