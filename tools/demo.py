"""The README's main command: train and test a small semantic model and a small Mask R-CNN.

    python tools/demo.py          # or: make demo

Uses real Cityscapes when ``data/cityscapes`` holds them. Otherwise it generates the mini
dataset in ``data/cityscapes_mini`` (never inside ``data/cityscapes``). It prepares the data,
trains the two ``configs/mini`` models into ``work_dirs/demo/<config>/``, tests their final
checkpoints and prints the mIoU and mAP tables, all in this process (the plugin's generator,
converter and ``train_and_test``, the unit of the staged and cross-validation runners). The terminal
gets progress lines and the tables; mmengine's full output goes to each work dir's ``console.log``
(and its own log beside it).
Re-running skips finished runs and resumes an interrupted one.
"""
import argparse
import os
import os.path as osp
import time
from contextlib import redirect_stderr, redirect_stdout

from mmcityscapes.cityscapes import converter, synthetic
from mmcityscapes.cityscapes.files import is_cityscapes_root
from mmcityscapes.common.errors import run_tool
from mmcityscapes.common.io import check_writable
from mmcityscapes.common.tables import test_result_stem
from mmcityscapes.engine.work_dir import lock_work_dir
from mmcityscapes.utils.config import load_config

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = ['configs/mini/deeplabv3_r18_mini.py', 'configs/mini/maskrcnn_r18_mini.py']
MINI_COUNTS = dict(train=48, val=12, test=2, train_extra=8)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--data-root', default='data/cityscapes', help='real Cityscapes, if present')
    parser.add_argument('--mini-root', default='data/cityscapes_mini',
                        help='where the mini dataset is generated when there is no real data')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--nproc', type=int, default=os.cpu_count())
    return parser.parse_args()


def demo(args):
    real = is_cityscapes_root(args.data_root) and not osp.isfile(
        osp.join(args.data_root, synthetic.MARKER))
    root = args.data_root if real else args.mini_root
    if real:
        print(f'using real Cityscapes in {root}')
    else:
        print(f'no Cityscapes in {args.data_root}: generating the mini dataset in {root}')
        synthetic.generate(root, MINI_COUNTS, height=256, width=512, seed=0, nproc=args.nproc)
    converter.prepare(root, args.nproc)
    os.environ['CITYSCAPES_ROOT'] = osp.join(osp.abspath(root), '')  # read by the configs when they load
    from mmcityscapes.engine.hooks.progress_hook import ProgressHook  # torch: after the data, which needs none
    from mmcityscapes.engine.runner.sequence import train_and_test
    tables = []
    for config in CONFIGS:
        cfg = load_config(osp.join(REPO, config))
        name = osp.splitext(osp.basename(config))[0]
        cfg.work_dir = osp.join(args.work_dir, name)
        cfg.custom_hooks = [*cfg.get('custom_hooks', []), dict(type=ProgressHook.__name__, name=name)]
        lock = lock_work_dir(cfg.work_dir)  # noqa: F841 (held until the next run's lock replaces it)
        console = osp.join(cfg.work_dir, 'console.log')
        print(f'{name}: mmengine\'s output goes to {console}')
        with open(console, 'a') as log, redirect_stdout(log), redirect_stderr(log):
            result = train_and_test(cfg)
        with open(test_result_stem(cfg.work_dir, cfg.work_dir, result['checkpoint']) + '.md') as f:
            tables.append(f.read())
    print(f'\n## Results on {"real" if real else "generated"} Cityscapes ({root}, val split)\n')
    print('\n'.join(tables))


def main():
    args = parse_args()
    check_writable(args.work_dir, '--work-dir')
    start = time.time()
    demo(args)
    print(f'total time: {(time.time() - start) / 60:.1f} min')


if __name__ == '__main__':
    run_tool(main)
