"""One run of a sequence of runs (a cross-validation fold, a stage): the unit both runners share."""
import copy
import hashlib
import json
import os.path as osp
from typing import Dict, Optional, Tuple

import numpy as np
from mmengine.config import Config
from mmengine.dist import barrier, is_main_process
from mmengine.runner import Runner

from mmcityscapes.common.errors import UserError
from mmcityscapes.common.io import read_json, write_json, write_text
from mmcityscapes.common.tables import describe_dataset, test_result_stem, write_metrics
from mmcityscapes.engine.runner.runtime import prepare_runtime
from mmcityscapes.engine.work_dir import claim_work_dir
from mmcityscapes.utils.checkpoint import best_checkpoint

# Keys that change between launches of the same experiment; not part of its identity.
VOLATILE_KEYS = ('work_dir', 'experiment_name', 'resume', 'load_from', 'launcher')


def config_hash(cfg: Config) -> str:
    content = {k: v for k, v in cfg.to_dict().items() if k not in VOLATILE_KEYS}
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]


def train_and_test(cfg: Config, title: Optional[str] = None) -> dict:
    """Train ``cfg`` in ``cfg.work_dir``, test its best checkpoint and return the result:
    ``checkpoint``, ``metrics`` (the config's test evaluator), ``evaluated_on`` and
    ``train_stats`` (``TrainStatsHook``), as written to ``<work_dir>/result.json``; the metric
    table goes to ``<work_dir>/test_<run>_<checkpoint>.{md,json,csv}`` (``test_result_stem``).

    A run with a result is skipped; an interrupted one resumes from its latest checkpoint; a
    work dir trained with another config (its ``config_hash``) stops the run with one line
    instead of mixing results. Every process of a distributed launch calls it; the main one writes.
    """
    work_dir = cfg.work_dir
    identity = config_hash(cfg)
    identity_file, result_file = osp.join(work_dir, 'config_hash'), osp.join(work_dir, 'result.json')
    if osp.isfile(identity_file):
        with open(identity_file) as f:
            if f.read().strip() != identity:
                raise UserError(f'{work_dir} was trained with a different config; remove it or use '
                                'another work dir instead of mixing results')
    if osp.isfile(result_file):
        if is_main_process():
            print(f'{work_dir}: done, skipped')
        return read_json(result_file)
    if is_main_process():
        write_text(identity + '\n', identity_file)
    cfg = copy.deepcopy(cfg)
    if osp.isfile(osp.join(work_dir, 'last_checkpoint')):
        cfg.resume, cfg.load_from = True, None
    cfg.custom_hooks = [*cfg.get('custom_hooks', []), dict(type='TrainStatsHook')]
    prepare_runtime(cfg, splits=('train', 'val', 'test'))
    runner = Runner.from_cfg(cfg)
    runner.train()
    barrier()  # rank 0 may still be writing the checkpoints
    checkpoint = best_checkpoint(work_dir)
    runner.load_checkpoint(checkpoint)
    # numpy scalars (mmseg's IoUMetric returns float32) as Python numbers, for result.json
    metrics = {k: v.item() if isinstance(v, np.generic) else v for k, v in runner.test().items()}
    result = dict(checkpoint=checkpoint, metrics=metrics,
                  evaluated_on=describe_dataset(runner.test_dataloader.dataset),
                  train_stats=runner.message_hub.get_info('train_stats'))
    if is_main_process():
        stem = test_result_stem(work_dir, osp.basename(osp.normpath(work_dir)), checkpoint)
        write_metrics(dict(metrics, evaluated_on=result['evaluated_on']), stem,
                      f'{title or osp.basename(work_dir)} — {osp.basename(checkpoint)}')
        write_json(result, result_file, indent=2)  # last: its presence means done
    barrier()
    return result


def train_side_by_side(runs: Dict[str, Tuple[Config, str]]) -> Optional[Dict[str, dict]]:
    """Share ``runs`` (name -> ``(cfg, title)``) between the processes of a launch, each run
    trained by one process on its own (call inside ``standalone_processes``, with
    ``cfg.launcher='none'``): a process takes, in order, the next run that is neither finished nor
    held by another process (its work dir's lock, which the kernel releases however that process
    ends: a killed process's run is free again and resumes) and goes on until none is left to take.
    Returns every run's ``train_and_test`` result once all are finished, or None while some still
    train elsewhere: the process that finishes the last one returns them all."""
    results, took = {}, True
    while took:
        took = False
        for name, (cfg, title) in runs.items():
            if name in results or isinstance(lock := claim_work_dir(cfg.work_dir), str):
                continue
            with lock:  # released when the run is done, not when the process ends
                results[name] = train_and_test(cfg, title)
            took = True
    for name, (cfg, _) in runs.items():  # finished elsewhere meanwhile
        if name not in results and osp.isfile(result_file := osp.join(cfg.work_dir, 'result.json')):
            results[name] = read_json(result_file)
    return {name: results[name] for name in runs} if len(results) == len(runs) else None
