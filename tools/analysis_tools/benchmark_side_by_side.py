"""Wall time of a cross-validation config's folds trained side by side, one per process, against
the same folds one after the other in one process.

    python tools/analysis_tools/benchmark_side_by_side.py configs/unet_r34_cv5.py --folds 2 --processes 2
        [--cfg-options ...] [--work-dir DIR]

Both ways run the plugin's own code on ``$CITYSCAPES_ROOT``: one after the other is
``train_and_test`` per fold in this process, with torch's default thread count; side by side is
``train_side_by_side`` (what ``cv.parallel`` runs under tools/dist_train.sh) in ``--processes``
processes of one thread each, as torchrun starts them. Each way trains in its own fresh directory
under ``--work-dir`` (default: a temporary one, removed). Prints the two wall times, their ratio
and each fold's mIoU both ways.
"""
import argparse
import multiprocessing
import os.path as osp
import tempfile
import time

import torch
from mmengine.config import DictAction

from mmcityscapes.common.errors import run_tool
from mmcityscapes.common.tables import markdown_table
from mmcityscapes.engine.runner.cross_validation import CrossValidationRunner
from mmcityscapes.engine.runner.sequence import train_and_test, train_side_by_side
from mmcityscapes.utils.config import load_config


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='a cross-validation config (runner_type CrossValidationRunner)')
    parser.add_argument('--folds', type=int, default=2, help='the first FOLDS folds of the config')
    parser.add_argument('--processes', type=int, default=2)
    parser.add_argument('--work-dir', help='keep both ways\' runs here (default: a temporary directory)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def fold_runs(config, options, work_dir, folds):
    cfg = load_config(config, options)
    if cfg.get('runner_type') != 'CrossValidationRunner':
        raise KeyError(f'{config}: runner_type is not CrossValidationRunner')
    cfg.work_dir, cfg.launcher = work_dir, 'none'
    runner = CrossValidationRunner.from_cfg(cfg)
    return {f'fold_{k}': (runner.run_config(f'fold_{k}'), f'fold {k}') for k in range(folds)}


def side_by_side_worker(config, options, work_dir, folds):
    torch.set_num_threads(1)
    train_side_by_side(fold_runs(config, options, work_dir, folds))


def main():
    args = parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.work_dir or tmp
        start = time.perf_counter()
        alone = {name: train_and_test(cfg, title) for name, (cfg, title) in
                 fold_runs(args.config, args.cfg_options, osp.join(root, 'one_after_the_other'), args.folds).items()}
        one_after_the_other = time.perf_counter() - start

        side_dir = osp.join(root, 'side_by_side')
        spawn = multiprocessing.get_context('spawn')
        workers = [spawn.Process(target=side_by_side_worker, args=(args.config, args.cfg_options, side_dir, args.folds))
                   for _ in range(args.processes)]
        start = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        side_by_side = time.perf_counter() - start
        if any(worker.exitcode for worker in workers):
            raise RuntimeError(f'a side-by-side process failed: exit codes {[w.exitcode for w in workers]}')
        beside = train_side_by_side(fold_runs(args.config, args.cfg_options, side_dir, args.folds))
    rows = [[f'{args.folds} folds one after the other, 1 process x {torch.get_num_threads()} threads',
             f'{one_after_the_other:.1f}', ' '.join(f'{r["metrics"]["mIoU"]:.2f}' for r in alone.values())],
            [f'{args.folds} folds side by side, {args.processes} processes x 1 thread', f'{side_by_side:.1f}',
             ' '.join(f'{r["metrics"]["mIoU"]:.2f}' for r in beside.values())]]
    print(markdown_table(['run', 'wall s', 'fold mIoU'], rows, align_left=1))
    print(f'side by side / one after the other: {side_by_side / one_after_the_other:.2f}')


if __name__ == '__main__':
    run_tool(main)
