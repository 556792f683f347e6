"""Optuna search of stage 2's IoU thresholds and FPN gradient flow, on its own.

    python tools/tune.py configs/maskrcnn_stage2.py --trials 20       # from work_dirs/maskrcnn_stage1/
    python tools/tune.py CONFIG --trials 40 --storage postgresql://host/db   # several machines, one study
    cp work_dirs/tune_maskrcnn_stage2/hyperparams.py configs/_base_/tuned/  # use the result by hand

configs/maskrcnn_staged.py runs the same search inside the staged procedure. Each trial trains
the config for ``--epochs`` on the tuning subset from its ``load_from`` (stage 1's best
checkpoint) and is scored by val mask mAP (projects/mmcityscapes/engine/runner/search.py). The study
is kept in SQLite in the work dir, or in ``--storage``: a re-run continues it, a killed trial is
retried, a finished study only writes its result again. The best values go to
``<work-dir>/hyperparams.py`` (``--out``), a variables-only config like
configs/_base_/tuned/hyperparams.py; the work dir also gets history.png and importances.png.
"""
import argparse
import os.path as osp

from mmengine.config import DictAction

from mmcityscapes.common.errors import run_tool
from mmcityscapes.common.io import check_writable
from mmcityscapes.engine.runner.search import search
from mmcityscapes.tuning.values import write_tuned
from mmcityscapes.utils.config import default_work_dir, load_config


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='stage-2 config')
    study = parser.add_argument_group('study')
    study.add_argument('--trials', type=int, default=20, help='finished trials of the whole study (all workers)')
    study.add_argument('--study-name', default='stage2')
    study.add_argument('--storage', help='Optuna RDB URL shared by several workers (default: SQLite in the work dir)')
    study.add_argument('--heartbeat', type=int, default=30, help='seconds; a trial silent for twice this is retried')
    study.add_argument('--work-dir', help='default: work_dirs/tune_<config name>')
    study.add_argument('--out', help='best values (default: <work-dir>/hyperparams.py)')
    trial = parser.add_argument_group('each trial')
    trial.add_argument('--epochs', type=int, default=3, help='epochs over the tuning subset')
    trial.add_argument('--tune-ann', default='annotations/instancesonly_filtered_gtFine_train_tune.json',
                       help='training annotations of the tuning subset, relative to the data root')
    trial.add_argument('--load-from', help="starting weights or a work dir (default: the config's load_from)")
    trial.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def main():
    args = parse_args()
    work_dir = args.work_dir or default_work_dir(args.config, 'tune_')
    out = args.out or osp.join(work_dir, 'hyperparams.py')
    check_writable(work_dir, '--work-dir')
    check_writable(out, '--out', folder=False)
    base = load_config(args.config, args.cfg_options)
    if args.load_from:
        base.load_from = args.load_from
    values, note = search(base, work_dir, args.trials, args.epochs, args.tune_ann, args.storage,
                          args.study_name, args.heartbeat)
    if write_tuned(values, out, note):
        print(f'wrote {out}')
    print(f'{note}: {values}')


if __name__ == '__main__':
    run_tool(main)
