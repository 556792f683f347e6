"""Evaluate predictions in the official Cityscapes result format, fast.

    python tools/analysis_tools/eval_cityscapes.py --task semantic|instance|panoptic \
        --gt-root data/cityscapes/gtFine/val --pred-dir results/ --nproc 8 --out result.json

(the same program as ``python -m mmcityscapes.cityscapes.evaluate``). Semantic task:
``<city>_<seq>_<frame>*.png`` label-id predictions (not train ids) anywhere under ``--pred-dir``;
the scores of cityscapesscripts' evalPixelLevelSemanticLabeling (class and category IoU and iIoU;
``--out`` writes its result dictionary). Instance task: ``<city>_<seq>_<frame>*.txt`` files
listing ``<relative mask png> <label id> <confidence>`` per instance, as for the test server; the
scores of evalInstanceLevelSemanticLabeling (AP over 0.5:0.95 and AP50, per class and mean).
Panoptic task: ``--pred-dir`` holds ``cityscapes_panoptic_<split>.json`` and the PNG folder
``cityscapes_panoptic_<split>/`` (the layout evalPanopticSemanticLabeling reads from
``CITYSCAPES_RESULTS``); against ``gtFine/cityscapes_panoptic_<split>.json`` (the dataset converter
writes it), the scores of evalPanopticSemanticLabeling (PQ, SQ, RQ per category and over all,
things and stuff; ``--out`` writes its result dictionary). The evaluators are
``mmcityscapes.cityscapes.results``; nothing imports torch.
"""
import argparse
import os
import time
from typing import Optional, Sequence

from mmcityscapes.cityscapes import instance_eval, panoptic, results, semantic_eval
from mmcityscapes.common.errors import run_tool
from mmcityscapes.common.io import check_writable, write_json


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--task', choices=['semantic', 'instance', 'panoptic'], required=True)
    parser.add_argument('--gt-root', required=True, help='e.g. data/cityscapes/gtFine/val')
    parser.add_argument('--pred-dir', required=True, help='folder of the prediction files')
    parser.add_argument('--nproc', type=int, default=os.cpu_count())
    parser.add_argument('--out', help='write the results as JSON')
    parser.add_argument('--allow-trainid-like', action='store_true',
                        help='semantic: evaluate predictions that look like train ids instead of stopping')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Evaluate, print the table and the time, and write ``--out``."""
    args = parse_args(argv)
    if args.out:
        check_writable(args.out, '--out', folder=False)
    start = time.time()
    if args.task == 'semantic':
        result, n = results.evaluate_semantic(args.gt_root, args.pred_dir, args.nproc, args.allow_trainid_like)
    elif args.task == 'instance':
        result, n = results.evaluate_instances(args.gt_root, args.pred_dir, args.nproc)
    else:
        result, n = results.evaluate_panoptic(args.gt_root, args.pred_dir, args.nproc)
    print(dict(semantic=semantic_eval, instance=instance_eval, panoptic=panoptic)[args.task].markdown(result))
    print(f'{n} images in {time.time() - start:.1f} s with {args.nproc} processes')
    if args.out:
        write_json(result, args.out, indent=2)


if __name__ == '__main__':
    run_tool(main)
