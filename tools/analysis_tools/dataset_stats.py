"""Object-size and class distribution of Cityscapes instances, as the staged Mask R-CNN project's README shows them.

    python tools/analysis_tools/dataset_stats.py data/cityscapes --split train val
    python tools/analysis_tools/dataset_stats.py data/cityscapes --out-dir work_dirs/dataset_stats

Reads ``annotations/instancesonly_filtered_gtFine_<split>.json`` (from the data converter) and
writes ``class_dist_objects.png``, ``size_dist_objects.png`` and ``dataset_stats.md``: instances
per class, split into COCO's small (< 32²), medium (< 96²) and large areas, plus crowd regions.
"""
import argparse
import os.path as osp

import numpy as np

from mmcityscapes.cityscapes.files import coco_file
from mmcityscapes.common.errors import UserError, run_tool
from mmcityscapes.common.figures import save_figure, subplots
from mmcityscapes.common.io import check_writable, read_json, write_text
from mmcityscapes.common.tables import markdown_table

SIZES = ('small', 'medium', 'large')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('data_root')
    parser.add_argument('--split', nargs='+', default=['train', 'val'])
    parser.add_argument('--out-dir', default='work_dirs/dataset_stats')
    return parser.parse_args()


def size_bucket(area):
    return 'small' if area < 32 ** 2 else 'medium' if area < 96 ** 2 else 'large'


def count_instances(coco):
    """{class name: {'small'|'medium'|'large'|'crowd': count}} for one COCO file."""
    names = {c['id']: c['name'] for c in coco['categories']}
    counts = {name: dict.fromkeys(SIZES + ('crowd',), 0) for name in names.values()}
    for ann in coco.get('annotations', []):
        key = 'crowd' if ann['iscrowd'] else size_bucket(ann['area'])
        counts[names[ann['category_id']]][key] += 1
    return counts


def markdown(stats):
    sections = []
    for split, counts in stats.items():
        total = {k: sum(c[k] for c in counts.values()) for k in SIZES + ('crowd',)}
        rows = []
        for name, c in list(counts.items()) + [('**all**', total)]:
            k = sum(c[s] for s in SIZES)
            share = lambda s: f'{c[s]} ({100 * c[s] / k:.0f}%)' if k else '0'  # noqa: E731
            rows.append((name, k, share('small'), share('medium'), share('large'), c['crowd']))
        sections.append(f'### {split}: {sum(total[k] for k in SIZES)} instances\n\n' + markdown_table(
            ['class', 'instances', 'small', 'medium', 'large', 'crowd regions'], rows))
    return '\n'.join(sections)


def plot(stats, out_dir):
    classes = list(next(iter(stats.values())))
    x = np.arange(len(classes))
    fig, ax = subplots(figsize=(9, 4))
    width = 0.8 / len(stats)
    for i, (split, counts) in enumerate(stats.items()):
        ax.bar(x + i * width, [sum(counts[c][s] for s in SIZES) for c in classes], width, label=split)
    ax.set_xticks(x + width * (len(stats) - 1) / 2, classes, rotation=30)
    ax.set_ylabel('instances')
    ax.set_title('Instances per class')
    ax.legend()
    save_figure(fig, osp.join(out_dir, 'class_dist_objects.png'), dpi=120, bbox_inches='tight')

    fig, axes = subplots(1, len(stats), figsize=(6 * len(stats), 4), squeeze=False)
    for ax, (split, counts) in zip(axes[0], stats.items()):
        bottom = np.zeros(len(classes))
        for size in SIZES:
            values = np.array([counts[c][size] for c in classes])
            ax.bar(classes, values, bottom=bottom, label=size)
            bottom += values
        ax.set_title(f'Object sizes ({split})')
        ax.tick_params(axis='x', rotation=30)
        ax.legend()
    save_figure(fig, osp.join(out_dir, 'size_dist_objects.png'), dpi=120, bbox_inches='tight')


def main():
    args = parse_args()
    check_writable(args.out_dir, '--out-dir')
    try:
        stats = {split: count_instances(read_json(coco_file(args.data_root, split))) for split in args.split}
    except UserError as e:
        raise UserError(f'{e} (run tools/dataset_converters/cityscapes.py first)') from None
    table = markdown(stats)
    write_text(table, osp.join(args.out_dir, 'dataset_stats.md'))
    plot(stats, args.out_dir)
    print(table)
    print(f'plots and table written to {args.out_dir}')


if __name__ == '__main__':
    run_tool(main)
