"""Gather every run under one or more work dirs into one comparison table and chart.

    python tools/analysis_tools/results_table.py work_dirs/ [--out work_dirs/results] [--metrics mIoU ...]

Rows, found recursively:

* ``test_<config>_<checkpoint>.json`` written by tools/test.py, and by the cross-validation and
  staged runners for each fold and stage (source ``test``);
* ``cv_results.json``, the mean ± std over cross-validation folds (``cv mean ± std``);
* a work dir with none of these but a training log: its last validation entry (``last val``).

Writes ``OUT.md`` (markdown) and ``OUT.png`` (one bar chart per metric). COCO and Cityscapes AP
are shown in %, like mIoU.
"""
import argparse
import glob
import os.path as osp

from mmcityscapes.common.errors import UserError, run_tool
from mmcityscapes.common.figures import save_figure, subplots
from mmcityscapes.common.io import check_writable, read_json, write_text
from mmcityscapes.common.logs import read_scalars
from mmcityscapes.common.tables import FRACTIONS, markdown_table, percent

HEADLINE = ['mIoU', 'aAcc', 'mF1', 'coco/bbox_mAP', 'coco/segm_mAP', 'coco/segm_mAP_50', 'cityscapes/mAP',
            'cityscapes/AP50']


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('work_dirs', nargs='+')
    parser.add_argument('--out', help='output stem (default: <first work dir>/results)')
    parser.add_argument('--metrics', nargs='+', default=HEADLINE, help='columns, where present')
    return parser.parse_args()


def collect(root):
    """[(run, source, {metric: value or (mean, std)})] under ``root``."""
    base = osp.dirname(osp.abspath(root).rstrip('/'))
    rows, reported = [], set()
    for path in sorted(glob.glob(osp.join(root, '**', '*.json'), recursive=True)):
        directory, name = osp.split(path)
        run = osp.relpath(directory, base)
        if name.startswith('test_'):
            rows.append((f'{run}/{name[5:-5]}', 'test', read_json(path)))
        elif name == 'cv_results.json':
            rows.append((run, 'cv mean ± std', {r['metric']: (r['mean'], r['std']) for r in read_json(path)}))
        else:
            continue
        reported.add(directory)
    for scalars in sorted(glob.glob(osp.join(root, '**', 'vis_data', 'scalars.json'), recursive=True)):
        work_dir = osp.dirname(osp.dirname(osp.dirname(scalars)))
        if work_dir in reported:
            continue
        reported.add(work_dir)
        _, validation = read_scalars(work_dir)
        if validation:
            rows.append((osp.relpath(work_dir, base), 'last val', validation[-1]))
    return rows


def cell(metric, value):
    if value is None:
        return ''
    if isinstance(value, (list, tuple)):
        return f'{percent(metric, value[0]):.2f} ± {percent(metric, value[1]):.2f}'
    return f'{percent(metric, value):.2f}' if isinstance(value, (int, float)) else str(value)


def markdown(rows, metrics):
    return markdown_table(['run', 'source', *metrics, 'evaluated on'],
                          [(run, source, *(cell(m, values.get(m)) for m in metrics), values.get('evaluated_on', ''))
                           for run, source, values in rows], align_left=2)


def chart(rows, metrics, path):
    """A horizontal bar chart per metric, stacked, one labelled bar per run that has the metric
    (error bars: std over folds)."""
    per_metric = [[(run, values[m]) for run, _, values in rows if m in values] for m in metrics]
    fig, axes = subplots(len(metrics), 1, squeeze=False, figsize=(11, 1 + 0.32 * sum(map(len, per_metric))),
                             gridspec_kw=dict(height_ratios=[len(h) + 1 for h in per_metric]))
    for ax, metric, have in zip(axes[:, 0], metrics, per_metric):
        means = [percent(metric, v[0] if isinstance(v, (list, tuple)) else v) for _, v in have]
        errors = [percent(metric, v[1]) if isinstance(v, (list, tuple)) else 0 for _, v in have]
        bars = ax.barh(range(len(have)), means, xerr=errors, color='tab:blue', height=0.7)
        ax.bar_label(bars, fmt='%.1f', fontsize=7, padding=2)
        ax.set_yticks(range(len(have)), [run for run, _ in have], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlim(0, max(m + e for m, e in zip(means, errors)) * 1.15 or 1)
        ax.set_title(metric + (' (AP, %)' if metric.startswith(FRACTIONS) else ''), fontsize=9, loc='left')
    fig.tight_layout()
    save_figure(fig, path)


def main():
    args = parse_args()
    rows = []
    for work_dir in args.work_dirs:
        if not osp.isdir(work_dir):
            raise UserError(f'no such work dir: {work_dir}')
        rows += collect(work_dir)
    if not rows:
        raise UserError(f'no test tables, cross-validation results or training logs under {" ".join(args.work_dirs)}')
    metrics = [m for m in args.metrics if any(m in values for _, _, values in rows)]
    out = args.out or osp.join(args.work_dirs[0], 'results')
    check_writable(out, '--out', folder=False)
    table = markdown(rows, metrics)
    write_text(table, out + '.md')
    chart(rows, metrics, out + '.png')
    print(table)
    print(f'wrote {out}.md and {out}.png ({len(rows)} runs)')


if __name__ == '__main__':
    run_tool(main)
