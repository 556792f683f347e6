"""Time Cityscapes evaluation, whole processes as a user runs them: cityscapesscripts' scripts
against tools/analysis_tools/eval_cityscapes.py.

    python tools/analysis_tools/benchmark_eval.py --task instance --images 100 --masks 57 --nproc 2
    python tools/analysis_tools/benchmark_eval.py --task semantic --images 100 --nproc 2
    python tools/analysis_tools/benchmark_eval.py --task panoptic --images 100 --nproc 2

Generates ``--images`` val scenes at 1024x2048 (``mmcityscapes.cityscapes.synthetic``) and seeded
noisy predictions of them in the official result format (``mmcityscapes.cityscapes.noisy``).
Each row is one process started from the shell, interpreter start-up and imports included:

* the official script, ``python -m cityscapesscripts.evaluation.eval{Pixel,Instance}Level...``
  or ``evalPanopticSemanticLabeling``, with ``CITYSCAPES_DATASET``/``CITYSCAPES_RESULTS`` set (the
  first two one process: they have no parallel mode; the pixel-level one without its optional
  Cython module, which its pip package does not ship; the panoptic one a process per CPU).
  The instance script's JSON writer fails on numpy integers before it scores anything; it runs
  with that writer made numpy-aware, its ground-truth cache in a fresh folder;
* ``eval_cityscapes.py --nproc N``, and its ``--help`` (the start-up alone);
* decoding the PNGs the evaluation reads, in ``--nproc`` processes (in this process): the floor
  of any file-based evaluator. The panoptic ground truth is written first, as the dataset
  converter does.

Instance task only, in this process: mmdet's CityScapesMetric (it writes a PNG per mask) and the
in-memory CityscapesInstanceMetric of ``tools/test.py``, fed the same predictions as model outputs.
Every evaluator must give the official scores, or the tool exits with an error.
"""
import argparse
import os

from mmcityscapes.analysis.benchmark_eval import benchmark_eval
from mmcityscapes.common.errors import run_tool


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--task', choices=['semantic', 'instance', 'panoptic'], default='instance')
    parser.add_argument('--images', type=int, default=100)
    parser.add_argument('--masks', type=int, default=57, help='predicted masks per image')
    parser.add_argument('--height', type=int, default=1024)
    parser.add_argument('--width', type=int, default=2048)
    parser.add_argument('--nproc', type=int, default=os.cpu_count())
    parser.add_argument('--work-dir', help='keep the generated files here (default: a temporary folder)')
    return parser.parse_args()


def main():
    args = parse_args()
    benchmark_eval(args.task, args.images, args.masks, args.height, args.width, args.nproc, args.work_dir)


if __name__ == '__main__':
    run_tool(main)
