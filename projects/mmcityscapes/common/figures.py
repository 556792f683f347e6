"""Figures: matplotlib without pyplot (imported only when a figure is made), written atomically."""
import sys
from typing import TYPE_CHECKING, Any, Optional, Tuple

from mmcityscapes.common.io import atomic_output

if TYPE_CHECKING:  # matplotlib is imported only when a figure is made
    from matplotlib.figure import Figure


def subplots(*args, figsize: Optional[Tuple[float, float]] = None, **kwargs) -> Tuple['Figure', Any]:
    """``(figure, axes)`` as ``pyplot.subplots``, without pyplot: a plain ``Figure`` drawn by Agg,
    with matplotlib imported only when a figure is made (light tools' ``--help`` stays fast)."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*args, **kwargs)


def save_figure(fig: 'Figure', path: str, dpi: int = 100, **kwargs) -> None:
    """Write a matplotlib figure atomically (``Figure.savefig`` keywords) and close it if pyplot
    manages it (optuna's plots)."""
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=dpi, **kwargs)
    if 'matplotlib.pyplot' in sys.modules:
        sys.modules['matplotlib.pyplot'].close(fig)
