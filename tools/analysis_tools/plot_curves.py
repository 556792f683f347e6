"""Training curves of a run as one PNG: losses, learning rate and validation metrics.

    python tools/analysis_tools/plot_curves.py work_dirs/unet_r34 [--out curves.png] [--metrics mIoU aAcc]

Reads every ``<timestamp>/vis_data/scalars.json`` of the work dir in order, so a resumed run is
one curve. Training entries (those with a learning rate) are plotted against the iteration,
validation entries against the epoch (epoch-based runs) or the iteration.
"""
import argparse
import glob
import os.path as osp

from mmcityscapes.common.errors import UserError, run_tool
from mmcityscapes.common.figures import save_figure, subplots
from mmcityscapes.common.io import check_writable
from mmcityscapes.common.logs import read_scalars

NOT_PLOTTED = ('time', 'data_time', 'memory', 'step', 'iter', 'epoch', 'lr', 'base_lr')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('work_dir')
    parser.add_argument('--out', help='PNG path (default: <work_dir>/curves.png)')
    parser.add_argument('--metrics', nargs='+', help='validation metrics to plot (default: all summary metrics)')
    return parser.parse_args()


def series(entries, key, x):
    points = sorted({e[x]: e[key] for e in entries if key in e and x in e}.items())  # a resumed run repeats steps
    return [p[0] for p in points], [p[1] for p in points]


def plot(train, val, metrics, out):
    losses = sorted({k for e in train for k in e if 'loss' in k})
    by_epoch = any('epoch' in e for e in train)
    metrics = metrics or sorted({k for e in val for k in e if k not in NOT_PLOTTED and '.' not in k})
    fig, axes = subplots(1, 3, figsize=(16, 4.5))
    for key in losses:
        axes[0].plot(*series(train, key, 'iter'), label=key, linewidth=1)
    axes[0].set(title='training losses', xlabel='iteration')
    axes[1].plot(*series(train, 'lr', 'iter'), color='tab:green')
    axes[1].set(title='learning rate', xlabel='iteration')
    axes[1].ticklabel_format(axis='y', style='sci', scilimits=(-3, 3))
    for key in metrics:
        axes[2].plot(*series(val, key, 'step'), marker='o', markersize=3, label=key)
    axes[2].set(title='validation', xlabel='epoch' if by_epoch else 'iteration')
    for ax in (axes[0], axes[2]):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, out)
    return losses, metrics


def main():
    args = parse_args()
    if not glob.glob(osp.join(args.work_dir, '*', 'vis_data', 'scalars.json')):
        raise UserError(f'no */vis_data/scalars.json under {args.work_dir} (not an mmengine work dir?)')
    train, val = read_scalars(args.work_dir)
    if not train:
        raise UserError(f'no training entries in the logs of {args.work_dir}')
    out = args.out or osp.join(args.work_dir, 'curves.png')
    check_writable(out, '--out', folder=False)
    losses, metrics = plot(train, val, args.metrics, out)
    print(f'wrote {out}: {len(train)} training entries ({", ".join(losses)}), '
          f'{len(val)} validation entries ({", ".join(metrics) or "none"})')


if __name__ == '__main__':
    run_tool(main)
