"""K-fold cross-validation as an mmengine runner (the protocol of the U-Net CV recipe, configs/README.md)."""
import copy
import os.path as osp
from typing import Dict, Optional

import numpy as np
from mmengine.config import Config
from mmengine.dist import is_main_process
from mmengine.registry import RUNNERS

from mmcityscapes.common.io import write_csv, write_json, write_text
from mmcityscapes.common.tables import markdown_table, shown
from mmcityscapes.datasets.layout import innermost_dataset
from mmcityscapes.engine.dist import standalone_processes
from mmcityscapes.engine.runner.sequence import train_and_test, train_side_by_side


@RUNNERS.register_module()
class CrossValidationRunner:
    """Train one model per fold of the training split, validate each on its held-out fold,
    and report every metric as mean ± std over the folds; optionally also train the final
    model on the whole training split, evaluated on val.

    Select it in a config::

        runner_type = 'CrossValidationRunner'
        cv = dict(folds=5, split_dir='splits/cv5', final_model=True, parallel=True)

    Fold ``k`` trains on ``<split_dir>/fold<k>_train.txt`` and validates on
    ``fold<k>_val.txt`` (written by tools/dataset_converters/cityscapes.py, paths relative to
    the data root) as an ordinary mmengine Runner in ``<work_dir>/fold_<k>/``, so it works
    under ``tools/dist_train.sh`` like any config: with ``parallel`` (the default) each process
    trains whole folds on its own, side by side (``train_side_by_side``: 5 folds on 2 processes
    take 3 rounds), with the recipe's batch and lr; without it every fold is one DDP run over all
    processes. The fold's metrics are those of its best
    checkpoint (``save_best``), or of its last one, with the config's test evaluator on the
    held-out fold.

    Re-running continues where it stopped: finished folds are skipped, an interrupted fold
    resumes from its last checkpoint, and a fold trained with a different config stops the
    run instead of being mixed into the table.

    Results: ``<work_dir>/cv_results.{md,json,csv}``; each run's own in its ``result.json``
    (``engine/runner/sequence.py``).
    """

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        cv = cfg.get('cv')
        if not cv or 'folds' not in cv:
            raise KeyError("CrossValidationRunner needs cfg.cv = dict(folds=..., split_dir=...)")
        self.folds = int(cv['folds'])
        self.split_dir = cv.get('split_dir', f'splits/cv{self.folds}')
        self.final_model = cv.get('final_model', False)
        self.parallel = cv.get('parallel', True)

    @classmethod
    def from_cfg(cls, cfg: Config):
        return cls(copy.deepcopy(cfg))

    def run_config(self, name: str) -> Config:
        """The plain-Runner config of one fold (``fold_<k>``) or of the final model."""
        cfg = copy.deepcopy(self.cfg)
        cfg.pop('runner_type')
        cfg.pop('cv')
        cfg.work_dir = osp.join(self.cfg.work_dir, name)
        cfg.experiment_name = f'{osp.basename(self.cfg.work_dir)}_{name}'
        if name.startswith('fold_'):
            k = int(name.split('_')[1])
            train = innermost_dataset(cfg.train_dataloader.dataset)
            val = innermost_dataset(cfg.val_dataloader.dataset)
            train.ann_file = osp.join(self.split_dir, f'fold{k}_train.txt')
            val.ann_file = osp.join(self.split_dir, f'fold{k}_val.txt')
            val.data_prefix = copy.deepcopy(train.data_prefix)  # held-out images come from train
            cfg.test_dataloader = copy.deepcopy(cfg.val_dataloader)
        return cfg

    def train(self) -> None:
        names = [f'fold_{k}' for k in range(self.folds)] + (['final'] if self.final_model else [])
        runs = {name: (self.run_config(name), f'{osp.basename(self.cfg.work_dir)} {name}') for name in names}
        if self.parallel:
            for cfg, _ in runs.values():
                cfg.launcher = 'none'
            with standalone_processes(rejoin=False):
                results = train_side_by_side(runs)
            if results is None:
                return  # the process that trains the last run writes the tables
        else:
            results = {name: train_and_test(cfg, title) for name, (cfg, title) in runs.items()}
        metrics = {name: result['metrics'] for name, result in results.items()}
        final = metrics.pop('final', None)
        if is_main_process():
            print(self.write_results(metrics, final))

    def write_results(self, folds: Dict[str, dict], final: Optional[dict]) -> str:
        keys = list(next(iter(folds.values())))
        rows = []
        for key in keys:
            values = np.array([folds[f][key] for f in folds], np.float64)
            std = values.std(ddof=1) if len(values) > 1 else 0.0
            rows.append(dict(metric=key, **{f: folds[f][key] for f in folds},
                             mean=float(np.nanmean(values)), std=float(std),
                             **({'final (val)': final.get(key)} if final else {})))
        out = osp.join(self.cfg.work_dir, 'cv_results')
        write_json(rows, out + '.json', indent=2)
        write_csv(rows, out + '.csv')
        header = ['metric', *folds, 'mean ± std'] + (['final (val)'] if final else [])
        cells = []
        for row in rows:
            metric = row['metric']
            cells.append([metric, *(shown(metric, row[f]) for f in folds),
                          f'{shown(metric, row["mean"])} ± {shown(metric, row["std"])}'])
            if final:
                cells[-1].append(shown(metric, row['final (val)']) if row['final (val)'] is not None else '')
        table = (f'### {len(folds)}-fold cross-validation: {osp.basename(self.cfg.work_dir)}\n\n'
                 + markdown_table(header, cells))
        write_text(table, out + '.md')
        return table
