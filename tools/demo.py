"""The README's main command: train and test a small semantic model and a small Mask R-CNN.

    python tools/demo.py          # or: make demo

Uses real Cityscapes when ``data/cityscapes`` holds them. Otherwise it generates the mini
dataset in ``data/cityscapes_mini`` (never inside ``data/cityscapes``). It prepares the data,
trains the two ``configs/mini`` models into ``work_dirs/demo/``, tests their final checkpoints
and prints the mIoU and mAP tables. Re-running resumes finished or interrupted runs.
"""
import argparse
import os
import os.path as osp
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = ['configs/mini/deeplabv3_r18_mini.py', 'configs/mini/maskrcnn_r18_mini.py']
GENERATED_MARKER = '.synthetic_cityscapes.json'


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--data-root', default='data/cityscapes', help='real Cityscapes, if present')
    parser.add_argument('--mini-root', default='data/cityscapes_mini',
                        help='where the mini dataset is generated when there is no real data')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--nproc', type=int, default=os.cpu_count())
    return parser.parse_args()


def run(cmd, **kwargs):
    print('$', ' '.join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO, **kwargs)


def main():
    args = parse_args()
    start = time.time()
    py = sys.executable
    real = osp.isdir(osp.join(REPO, args.data_root, 'leftImg8bit')) and not osp.isfile(
        osp.join(REPO, args.data_root, GENERATED_MARKER))
    if real:
        root = args.data_root
        print(f'using real Cityscapes in {root}')
    else:
        root = args.mini_root
        print(f'no Cityscapes in {args.data_root}: generating the mini dataset in {root}')
        run([py, 'tools/misc/synthetic_cityscapes.py', root, '--train', '48', '--val', '12',
             '--test', '2', '--extra', '8', '--nproc', str(args.nproc)])
    run([py, 'tools/dataset_converters/cityscapes.py', root, '--nproc', str(args.nproc)])

    env = dict(os.environ, CITYSCAPES_ROOT=osp.join(root, ''))
    tables = []
    for config in CONFIGS:
        work_dir = osp.join(args.work_dir, osp.splitext(osp.basename(config))[0])
        run([py, 'tools/train.py', config, '--work-dir', work_dir, '--resume'], env=env)
        with open(osp.join(REPO, work_dir, 'last_checkpoint')) as f:
            checkpoint = f.read().strip()
        run([py, 'tools/test.py', config, checkpoint, '--work-dir', work_dir], env=env)
        table = f'test_{osp.splitext(osp.basename(config))[0]}_{osp.splitext(osp.basename(checkpoint))[0]}.md'
        with open(osp.join(REPO, work_dir, table)) as f:  # tools/test.py's name for it
            tables.append(f.read())
    print(f'\n## Results on {"real" if real else "generated"} Cityscapes ({root}, val split)\n')
    print('\n'.join(tables))
    print(f'total time: {(time.time() - start) / 60:.1f} min')


if __name__ == '__main__':
    main()
