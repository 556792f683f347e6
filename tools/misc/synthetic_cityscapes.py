"""Generate a mini Cityscapes in the exact official layout and file naming.

    python tools/misc/synthetic_cityscapes.py data/cityscapes_mini --train 24 --val 8

Polygons first, label PNGs rasterized from them by cityscapesscripts, images painted with the
same polygons; deterministic for a seed, built in a temporary folder and moved into place when
complete. It refuses to write into a folder that it did not generate (e.g. real data). The
generator is mmcityscapes.cityscapes.synthetic (projects/mmcityscapes/cityscapes/synthetic.py).
"""
import argparse
import os

from mmcityscapes.cityscapes.synthetic import generate
from mmcityscapes.common.errors import run_tool
from mmcityscapes.common.io import check_writable


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('out', help='output dataset root (created)')
    parser.add_argument('--train', type=int, default=24, help='images in train')
    parser.add_argument('--val', type=int, default=8, help='images in val')
    parser.add_argument('--test', type=int, default=4, help='images in test (blank labels)')
    parser.add_argument('--extra', type=int, default=12, help='images in train_extra (coarse only)')
    parser.add_argument('--height', type=int, default=256)
    parser.add_argument('--width', type=int, default=512)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--nproc', type=int, default=os.cpu_count())
    return parser.parse_args()


def main():
    args = parse_args()
    check_writable(args.out, 'out')
    counts = dict(train=args.train, val=args.val, test=args.test, train_extra=args.extra)
    generate(args.out, counts, args.height, args.width, args.seed, args.nproc)


if __name__ == '__main__':
    run_tool(main)
