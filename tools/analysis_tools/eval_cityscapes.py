"""Evaluate predictions in the official Cityscapes result format, fast.

    python tools/analysis_tools/eval_cityscapes.py --task semantic|instance|panoptic \
        --gt-root data/cityscapes/gtFine/val --pred-dir results/ --nproc 8 --out result.json

The formats, scores and options: ``mmcityscapes.cityscapes.evaluate`` (``--help``), which an
installed package also runs as ``python -m mmcityscapes.cityscapes.evaluate``; nothing imports torch.
"""
from mmcityscapes.cityscapes.evaluate import main
from mmcityscapes.common.errors import run_tool

if __name__ == '__main__':
    run_tool(main)
