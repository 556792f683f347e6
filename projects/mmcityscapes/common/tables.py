"""Metric tables: markdown for people, JSON and CSV for tools, in percent whatever the metric's unit."""
import numbers
import os.path as osp
from typing import Any, Dict, Iterable, List, Optional, Sequence

from prettytable import PrettyTable, TableStyle

from mmcityscapes.common.figures import save_figure, subplots
from mmcityscapes.common.io import write_csv, write_json, write_text

FRACTIONS = ('coco/', 'cityscapes/')  # metric prefixes of values logged as fractions, not percent
CHARTED = ('IoU', 'AP')  # per-class metrics (names ending so) that write_metrics draws


def percent(metric: str, value: float) -> float:
    """A metric's value in percent (mmdet's metrics log fractions, mmseg's percent)."""
    return 100 * value if metric.startswith(FRACTIONS) else value


def shown(metric: str, value: Any) -> str:
    """A metric's value as every table prints it: percent, two decimals (AP 13.70, mIoU 30.37)."""
    return f'{percent(metric, value):.2f}' if isinstance(value, numbers.Real) else str(value)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence], align_left: int = 1) -> str:
    """A markdown table: the first ``align_left`` columns left-aligned, the others right-aligned."""
    table = PrettyTable(header)
    table.set_style(TableStyle.MARKDOWN)
    for i, name in enumerate(header):
        table.align[name] = 'l' if i < align_left else 'r'
    table.add_rows([[str(cell) for cell in row] for row in rows])
    return table.get_string() + '\n'


def metrics_markdown(metrics: Dict[str, Any], title: Optional[str] = None) -> str:
    """A title, the non-numeric entries as ``key: value`` lines (``evaluated_on``), a summary
    table of the scalar metrics and a per-class table of ``<metric>.<class>`` keys, in percent."""
    numeric = {k: v for k, v in metrics.items() if isinstance(v, numbers.Real)}
    summary = {k: v for k, v in numeric.items() if '.' not in k}
    per_class = {}
    for key, value in numeric.items():
        if '.' in key:
            metric, cls = key.split('.', 1)
            per_class.setdefault(cls, {})[metric] = value
    text = f'### {title}\n\n' if title else ''
    text += ''.join(f'{key}: {value}\n' for key, value in metrics.items() if key not in numeric)
    text += '\n' if len(numeric) < len(metrics) else ''
    text += markdown_table(['metric', '%'], [(name, shown(name, value)) for name, value in summary.items()])
    if per_class:
        columns = list(dict.fromkeys(metric for values in per_class.values() for metric in values))  # all, in order
        text += '\n' + markdown_table(['class', *columns], [
            (cls, *(shown(c, values[c]) if c in values else '' for c in columns)) for cls, values in per_class.items()])
    return text


def describe_dataset(dataset: Any) -> str:
    """Which images a table was computed on: the annotation file (or image folder) and count."""
    while hasattr(dataset, 'dataset'):  # dataset wrappers
        dataset = dataset.dataset
    source = dataset.ann_file or dataset.data_prefix.get('img_path') or dataset.data_prefix.get('img')
    return f'{source} ({len(dataset)} images)'


def metrics_rows(metrics: Dict[str, Any]) -> List[dict]:
    """One ``metric, class, value`` row per value; ``class`` is empty for the summary metrics."""
    return [dict(zip(('metric', 'class'), key.split('.', 1) if '.' in key else (key, '')), value=value)
            for key, value in metrics.items()]


def test_result_stem(work_dir: str, config: str, checkpoint: Optional[str] = None) -> str:
    """``<work_dir>/test_<config>_<checkpoint>`` (names without folder and extension; without a
    checkpoint ``test_<config>``): where a test's tables go, so that two configs tested on one
    checkpoint never overwrite each other."""
    name = lambda path: osp.splitext(osp.basename(path))[0]  # noqa: E731
    return osp.join(work_dir, f'test_{name(config)}' + (f'_{name(checkpoint)}' if checkpoint else ''))


def per_class_chart(metrics: Dict[str, Any], path: str, title: Optional[str] = None) -> bool:
    """Horizontal bars of every per-class IoU / AP metric (``<metric>.<class>`` keys), one panel
    each, in percent; a class without a value (NaN: no ground truth) has no bar. Returns whether
    there was anything to draw."""
    panels = {}
    for key, value in metrics.items():
        metric, _, cls = key.partition('.')
        if cls and metric.endswith(CHARTED) and isinstance(value, numbers.Real):
            panels.setdefault(metric, {})[cls] = percent(metric, float(value))
    if not panels:
        return False
    n_classes = max(len(values) for values in panels.values())
    fig, axes = subplots(1, len(panels), squeeze=False, figsize=(4 * len(panels), 1 + 0.28 * n_classes))
    for ax, (metric, values) in zip(axes[0], panels.items()):
        classes = list(values)
        bars = ax.barh(range(len(classes)), [0 if v != v else v for v in values.values()], color='tab:blue')
        ax.bar_label(bars, labels=['n/a' if v != v else f'{v:.1f}' for v in values.values()], fontsize=7, padding=2)
        ax.set_yticks(range(len(classes)), classes, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, 105)
        ax.set_title(f'{metric} (%)', fontsize=9, loc='left')
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    return True


def write_metrics(metrics: Dict[str, Any], out_stem: str, title: Optional[str] = None) -> str:
    """Write ``<out_stem>.md``, ``.json``, ``.csv`` and, for per-class IoU / AP, ``.png``
    (``per_class_chart``); return the markdown."""
    table = metrics_markdown(metrics, title)
    per_class_chart(metrics, out_stem + '.png', title)
    write_text(table, out_stem + '.md')
    write_csv(metrics_rows(metrics), out_stem + '.csv')
    write_json({k: float(v) if isinstance(v, numbers.Real) else v for k, v in metrics.items()},
               out_stem + '.json', indent=2)
    return table
