"""Prediction overlays of every test image (``tools/test.py --show-dir``)."""
import os.path as osp
from typing import Optional, Sequence

from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import Runner

from mmcityscapes.visualization.overlay import quiet_visualizer, write_overlay


@HOOKS.register_module()
class OverlayHook(Hook):
    """Write ``<out_dir>/<image name>.png`` (image | ground truth | prediction) for every test
    image; ``tools/test.py --show-dir`` adds it."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir

    def before_test(self, runner: Runner) -> None:
        self.visualizer = quiet_visualizer(type(runner.visualizer), runner.visualizer.dataset_meta,
                                           f'overlay_{id(self)}')

    def after_test_iter(self, runner: Runner, batch_idx: int, data_batch: Optional[dict] = None,
                        outputs: Optional[Sequence] = None) -> None:
        for sample in outputs:
            name = osp.splitext(osp.basename(sample.img_path))[0] + '.png'
            write_overlay(self.visualizer, sample, osp.join(self.out_dir, name))
