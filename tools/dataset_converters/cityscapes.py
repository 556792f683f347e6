"""Prepare a Cityscapes root (real or generated) for mmseg/mmdet training.

    python tools/dataset_converters/cityscapes.py data/cityscapes --nproc 8

Writes labelTrainIds PNGs, COCO instance annotations and the split files (coarse-pretraining and
tuning subsets, cross-validation folds, val fine-tuning split) next to the official files;
idempotent, atomic, and a partial root is prepared as far as it goes. What it writes, and how:
projects/mmcityscapes/cityscapes/converter.py. A missing folder, an unreadable file or an unknown
label stops it with one line naming the file.
"""
import argparse
import os

from mmcityscapes.cityscapes.converter import SplitOptions, prepare
from mmcityscapes.common.errors import run_tool
from mmcityscapes.common.io import check_writable

DEFAULTS = SplitOptions()


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('data_root', help='Cityscapes root with leftImg8bit/, gtFine/ [, gtCoarse/]')
    parser.add_argument('--nproc', type=int, default=os.cpu_count(), help='worker processes')
    splits = parser.add_argument_group('split files')
    splits.add_argument('--coarse-subset', type=int, default=DEFAULTS.coarse_subset,
                        help='train_extra images for coarse backbone pretraining (staged recipe: 4120)')
    splits.add_argument('--tune-subset', type=int, default=DEFAULTS.tune_subset,
                        help='train images for hyper-parameter tuning (staged recipe: 372)')
    splits.add_argument('--folds', type=int, default=DEFAULTS.folds, help='cross-validation folds')
    splits.add_argument('--val-finetune', type=float, default=DEFAULTS.val_finetune,
                        help='share of val for the optional stage-3 fine-tuning on val; the rest is '
                             'held out and is what that model is evaluated on')
    splits.add_argument('--split-seed', type=int, default=DEFAULTS.split_seed)
    return parser.parse_args()


def main():
    args = parse_args()
    check_writable(args.data_root, 'data_root')
    options = SplitOptions(args.coarse_subset, args.tune_subset, args.folds, args.val_finetune, args.split_seed)
    prepare(args.data_root, args.nproc, options)


if __name__ == '__main__':
    run_tool(main)
