"""The staged Mask R-CNN fine-tuning recipe (configs/README.md, References) as one run:
stage 0 -> stage 1 -> k-means anchors -> Optuna search -> stage 2 -> stage 3."""
import copy
import datetime
import os.path as osp
from typing import List, Optional

from mmengine.config import Config
from mmengine.dist import is_main_process
from mmengine.registry import RUNNERS

from mmcityscapes.common.io import write_json, write_text
from mmcityscapes.common.tables import markdown_table
from mmcityscapes.engine.runner.search import search
from mmcityscapes.engine.runner.sequence import train_and_test
from mmcityscapes.tuning.anchors import fit_anchors
from mmcityscapes.tuning.values import apply_tuned, read_tuned, tuned_values, write_tuned
from mmcityscapes.utils.config import load_config

# Keys of the staged config itself; every other key is merged into each stage's config.
RUNNER_KEYS = ('runner_type', 'custom_imports', 'stages', 'anchors', 'tuning', 'work_dir', 'launcher', 'resume',
               'load_from', 'experiment_name')
COLUMNS = [('bbox AP', 'coco/bbox_mAP'), ('bbox AP50', 'coco/bbox_mAP_50'), ('segm AP', 'coco/segm_mAP'),
           ('segm AP50', 'coco/segm_mAP_50'), ('segm AP75', 'coco/segm_mAP_75'), ('segm APs', 'coco/segm_mAP_s'),
           ('segm APm', 'coco/segm_mAP_m'), ('segm APl', 'coco/segm_mAP_l'), ('Cityscapes AP', 'cityscapes/mAP'),
           ('Cityscapes AP50', 'cityscapes/AP50')]


@RUNNERS.register_module()
class StagedRunner:
    """Train the four stages in order, each from the previous stage's best checkpoint, with the
    anchors and hyper-parameters of stages 2 and 3 fitted and tuned in between::

        runner_type = 'StagedRunner'
        stages = ['maskrcnn_stage0.py', ..., 'maskrcnn_stage3.py']  # relative to this config
        anchors = dict(ratios=3, scales=1, min_size=4)  # fit_anchors on stage 2's training boxes
        tuning = dict(trials=20, epochs=3, ann_file=..., heartbeat=30, parallel=True)  # trials=0: stage 2's own values

    Stage 1 receives stage 0's backbone through its ``CoarsePretrainHook``, stages 2 and 3 the
    previous stage's weights through ``load_from``. The k-means anchors and the best Optuna
    trial (``search``, from the stage-1 weights on the tuning subset) are written to
    ``<work_dir>/tuned/{anchors,hyperparams}.py`` and applied to stages 2 and 3; no file under
    ``configs/`` changes. Every other key of this config (e.g. ``--cfg-options
    train_cfg.max_epochs=1``) is merged into each stage's config.

    Each stage is ``train_and_test`` in ``<work_dir>/<stage config name>/``: a re-run skips
    finished stages, resumes an interrupted one, continues an interrupted study (its dead
    trial is retried) and refuses a stage whose config changed. Under ``tools/dist_train.sh``
    every stage trains on all processes, and the trials one per process (``tuning.parallel``,
    the default; ``False``: each trial on all processes). Ends with ``<work_dir>/staged_results.{md,json}``:
    per stage its test metrics, training time, images/s and peak memory, and the tuned values used.
    """

    def __init__(self, cfg: Config) -> None:
        if len(cfg.get('stages') or []) != 4:
            raise KeyError('StagedRunner needs cfg.stages: the configs of stages 0-3')
        self.cfg = cfg
        here = osp.dirname(cfg.filename) if cfg.filename else '.'
        self.stage_files = [osp.join(here, stage) for stage in cfg.stages]
        self.overrides = {k: v for k, v in cfg.to_dict().items() if k not in RUNNER_KEYS}
        self.tuned_dir = osp.join(cfg.work_dir, 'tuned')

    @classmethod
    def from_cfg(cls, cfg: Config):
        return cls(copy.deepcopy(cfg))

    def stage_config(self, k: int, previous: Optional[str] = None, tuned: Optional[dict] = None) -> Config:
        """Stage ``k``'s config: the overrides merged, in its own work dir, initialised from
        ``previous`` (a checkpoint), with the ``tuned`` values."""
        cfg = load_config(self.stage_files[k])
        cfg.merge_from_dict(copy.deepcopy(self.overrides))
        name = osp.splitext(osp.basename(self.stage_files[k]))[0]
        cfg.launcher = self.cfg.get('launcher', 'none')
        cfg.work_dir = osp.join(self.cfg.work_dir, name)
        cfg.experiment_name = f'{osp.basename(self.cfg.work_dir)}_{name}'
        if k == 1:  # the stage-0 backbone, through the stage's CoarsePretrainHook
            hooks = [h for h in cfg.get('custom_hooks', []) if h['type'] == 'CoarsePretrainHook']
            if not hooks:
                raise KeyError(f'{self.stage_files[1]}: stage 1 needs a CoarsePretrainHook in custom_hooks')
            hooks[0].checkpoint = previous
        elif k > 1:  # all weights (an inherited CoarsePretrainHook steps aside)
            cfg.load_from = previous
        return apply_tuned(cfg, tuned) if tuned else cfg

    def tune(self, stage1_checkpoint: str) -> dict:
        """Anchors fitted to stage 2's training boxes, then the thresholds and FPN flow of the
        best trial; each read back from ``tuned/`` when an earlier run wrote it."""
        base = self.stage_config(2, stage1_checkpoint)
        anchors_file, params_file = (osp.join(self.tuned_dir, f) for f in ('anchors.py', 'hyperparams.py'))
        if osp.isfile(anchors_file):
            anchors = read_tuned(anchors_file)
        else:
            anchors, note = fit_anchors(base, **self.cfg.get('anchors', {}))
            if is_main_process():
                write_tuned(anchors, anchors_file, note)
        if osp.isfile(params_file):
            return {**anchors, **read_tuned(params_file)}
        tuning = dict(self.cfg.get('tuning', {}))
        trials = tuning.pop('trials', 20)
        if trials:
            params, note = search(apply_tuned(base, anchors), osp.join(self.cfg.work_dir, 'tune'), trials, **tuning)
        else:
            params = {k: v for k, v in tuned_values(base).items() if k not in anchors}
            note = f'tuning.trials=0: the values of {self.stage_files[2]}'
        if is_main_process():
            write_tuned(params, params_file, note)
        return {**anchors, **params}

    def train(self) -> None:
        results = [train_and_test(self.stage_config(0), 'stage 0')]
        results.append(train_and_test(self.stage_config(1, results[0]['checkpoint']), 'stage 1'))
        tuned = self.tune(results[1]['checkpoint'])
        for k in (2, 3):
            results.append(train_and_test(self.stage_config(k, results[-1]['checkpoint'], tuned), f'stage {k}'))
        if is_main_process():
            print(self.write_results(results, tuned))

    def write_results(self, results: List[dict], tuned: dict) -> str:
        rows = []
        for k, (config, result) in enumerate(zip(self.stage_files, results)):
            metrics, stats = result['metrics'], result['train_stats'] or {}
            if 'mIoU' in metrics:  # the coarse-pretrained segmentation backbone
                cells = [f'val mIoU {metrics["mIoU"]:.2f}'] + [''] * (len(COLUMNS) - 1)
            else:
                cells = [f'{100 * metrics[key]:.1f}' if key in metrics else '–' for _, key in COLUMNS]
            rows.append([k, osp.basename(config), *cells, datetime.timedelta(seconds=round(stats.get('time_s', 0))),
                         f'{stats.get("images_per_s", 0):.2f}', f'{stats.get("peak_memory_mb", 0):.0f}'])
        header = ['stage', 'config', *[name for name, _ in COLUMNS], 'train time', 'images/s', 'peak MiB']
        evaluated_on = ''.join(f'stage {k} evaluated on: {result["evaluated_on"]}\n'
                               for k, result in enumerate(results))
        text = (f'### Staged Mask R-CNN: {self.cfg.work_dir}\n\n{evaluated_on}\n' +
                markdown_table(header, rows, align_left=2) +
                '\nTuned values of stages 2 and 3 (from ' + f'{self.tuned_dir}/):\n\n' +
                markdown_table(['value', 'used'], [[k, v] for k, v in tuned.items()]))
        write_text(text, osp.join(self.cfg.work_dir, 'staged_results.md'))
        write_json(dict(stages=[dict(config=c, **r) for c, r in zip(self.stage_files, results)], tuned=tuned),
                   osp.join(self.cfg.work_dir, 'staged_results.json'), indent=2)
        return text
