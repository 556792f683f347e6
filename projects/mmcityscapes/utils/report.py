"""Metric tables: markdown for people, JSON for tools."""
import numbers

from .io import write_json, write_text


def metrics_markdown(metrics, title=None):
    """One row per metric, in the order the evaluators returned them."""
    lines = [f'### {title}', ''] if title else []
    lines += ['| metric | value |', '| --- | ---: |']
    for name, value in metrics.items():
        shown = f'{value:.4f}' if isinstance(value, numbers.Real) else str(value)
        lines.append(f'| {name} | {shown} |')
    return '\n'.join(lines) + '\n'


def write_metrics(metrics, out_stem, title=None):
    """Write ``<out_stem>.md`` and ``<out_stem>.json``; return the markdown."""
    table = metrics_markdown(metrics, title)
    write_text(table, out_stem + '.md')
    write_json({k: float(v) if isinstance(v, numbers.Real) else v for k, v in metrics.items()},
               out_stem + '.json', indent=2)
    return table
