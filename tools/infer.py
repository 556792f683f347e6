"""Predict images with a trained model: overlays, plus the official Cityscapes result format.

    python tools/infer.py configs/deeplabv3_r50.py work_dirs/deeplabv3_r50/iter_80000.pth \
        data/cityscapes/leftImg8bit/test --out results/deeplabv3_r50

``IMAGES`` are image files or folders (searched recursively for ``*.png``/``*.jpg``); their
names must differ (Cityscapes names do). Writes

* ``OUT/overlays/<name>.png``: image | ground truth | prediction, or image | prediction when the
  image has no ground truth beside it in the official layout (``gtFine/<split>/<city>/``);
* ``OUT/results/``: the test server's format, which tools/analysis_tools/eval_cityscapes.py
  evaluates: per image a label-id PNG (semantic models), ``<name>_pred.txt`` listing
  ``masks/<name>_<i>.png <label id> <score>`` per instance (instance models), or
  ``cityscapes_panoptic_<split>/<name>_panoptic.png`` with ``cityscapes_panoptic_<split>.json``
  (panoptic models: Panoptic FPN). A model that gives several kinds of result writes each in
  ``OUT/results/{panoptic,instance,semantic}/``: Mask2Former (all three from one pass) and
  configs/panoptic_fusion.py (whose CHECKPOINT is ``-``: the fusion and its two models' own results).

Predictions come from mmdet's ``DetInferencer`` / mmseg's ``MMSegInferencer`` (the config's test
pipeline, ``--batch-size`` images per forward pass); this tool adds the ground-truth panel and the
test server's format. An image that cannot be read is skipped and named; the run predicts the
others and ends with a summary (exit status 2). CHECKPOINT may be an export of
tools/deployment/export.py (its directory), which onnxruntime runs inside the same pipeline.
"""
import argparse

import torch
from mmengine.config import DictAction

from mmcityscapes.apis.inference import infer, list_images
from mmcityscapes.apis.model_source import ModelSource
from mmcityscapes.common.errors import UserError, run_tool
from mmcityscapes.common.io import check_writable
from mmcityscapes.utils.config import load_config


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', help='checkpoint file, training work dir or export directory '
                        '(tools/deployment/export.py); - for a config whose model names its own (panoptic fusion)')
    parser.add_argument('images', nargs='+', help='image files or folders')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--batch-size', type=int, default=4,
                        help='images per forward pass (consecutive images of one size)')
    parser.add_argument('--device', default='cuda:0' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    args = parser.parse_args()
    if args.batch_size < 1:
        parser.error(f'--batch-size must be at least 1, not {args.batch_size}')
    return args


def main():
    args = parse_args()
    check_writable(args.out, '--out')
    # read once; missing, truncated or corrupt: one line before anything is built
    source = ModelSource(None if args.checkpoint == '-' else args.checkpoint)
    cfg = load_config(args.config, args.cfg_options)
    images = list_images(args.images)
    failed = infer(cfg, source, images, args.out, args.batch_size, args.device)
    print(f'\n{len(images) - len(failed)} images: overlays in {args.out}/overlays, official-format results in '
          f'{args.out}/results')
    if failed:
        raise UserError(f'{len(failed)} of {len(images)} images could not be predicted (e.g. {failed[0]}; each is '
                        'named above); the others are written')


if __name__ == '__main__':
    run_tool(main)
