"""Metric tables: markdown for people, JSON and CSV for tools."""
import numbers
import os.path as osp

from prettytable import PrettyTable, TableStyle

from .io import write_csv, write_json, write_text


def markdown_table(header, rows, align_left=1):
    """A markdown table: the first ``align_left`` columns left-aligned, the others right-aligned."""
    table = PrettyTable(header)
    table.set_style(TableStyle.MARKDOWN)
    for i, name in enumerate(header):
        table.align[name] = 'l' if i < align_left else 'r'
    table.add_rows([[str(cell) for cell in row] for row in rows])
    return table.get_string() + '\n'


def metrics_markdown(metrics, title=None):
    """A summary table of the scalar metrics, then a per-class table of ``<metric>.<class>`` keys."""
    shown = lambda v: f'{v:.4f}' if isinstance(v, numbers.Real) else str(v)  # noqa: E731
    summary = {k: v for k, v in metrics.items() if '.' not in k}
    per_class = {}
    for key, value in metrics.items():
        if '.' in key:
            metric, cls = key.split('.', 1)
            per_class.setdefault(cls, {})[metric] = value
    lines = [f'### {title}', ''] if title else []
    lines += ['| metric | value |', '| --- | ---: |']
    lines += [f'| {name} | {shown(value)} |' for name, value in summary.items()]
    if per_class:
        columns = list(next(iter(per_class.values())))
        lines += ['', '| class | ' + ' | '.join(columns) + ' |', '| --- |' + ' ---: |' * len(columns)]
        lines += [f'| {cls} | ' + ' | '.join(shown(values.get(c)) for c in columns) + ' |'
                  for cls, values in per_class.items()]
    return '\n'.join(lines) + '\n'


def describe_dataset(dataset):
    """Which images a table was computed on: the annotation file (or image folder) and count."""
    while hasattr(dataset, 'dataset'):  # dataset wrappers
        dataset = dataset.dataset
    source = dataset.ann_file or dataset.data_prefix.get('img_path') or dataset.data_prefix.get('img')
    return f'{source} ({len(dataset)} images)'


def metrics_rows(metrics):
    """One ``metric, class, value`` row per value; ``class`` is empty for the summary metrics."""
    return [dict(zip(('metric', 'class'), key.split('.', 1) if '.' in key else (key, '')), value=value)
            for key, value in metrics.items()]


def test_result_stem(work_dir, config, checkpoint):
    """``<work_dir>/test_<config>_<checkpoint>`` (names without folder and extension): where a
    test's tables go, so that two configs tested on one checkpoint never overwrite each other."""
    name = lambda path: osp.splitext(osp.basename(path))[0]  # noqa: E731
    return osp.join(work_dir, f'test_{name(config)}_{name(checkpoint)}')


def write_metrics(metrics, out_stem, title=None):
    """Write ``<out_stem>.md``, ``.json`` and ``.csv``; return the markdown."""
    table = metrics_markdown(metrics, title)
    write_text(table, out_stem + '.md')
    write_csv(metrics_rows(metrics), out_stem + '.csv')
    write_json({k: float(v) if isinstance(v, numbers.Real) else v for k, v in metrics.items()},
               out_stem + '.json', indent=2)
    return table
