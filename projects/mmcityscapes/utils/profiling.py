"""Where training steps spend their time: torch profiler summaries as markdown tables."""
from torch.profiler import ProfilerActivity, profile

from ..cityscapes.report import markdown_table

SYNCHRONISATIONS = ('cudaStreamSynchronize', 'cudaDeviceSynchronize', 'cudaEventSynchronize')
KERNEL_LAUNCHES = ('cudaLaunchKernel', 'cudaLaunchKernelExC', 'cuLaunchKernel', 'cuLaunchKernelEx')


def profile_steps(run_steps, steps, title, cuda, top=15):
    """Profile ``run_steps()`` (``steps`` steps) and return markdown: host-device synchronisations
    and kernel launches per step, then the ``top`` operators by device time (CUDA) and by host
    time, self time only (an operator's children are counted in their own rows)."""
    with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])) as prof:
        run_steps()
    events = prof.key_averages()

    def count(names):
        return sum(event.count for event in events if event.key in names)

    def ranked(attribute, where):
        rows = sorted((e for e in events if getattr(e, attribute) > 0), key=lambda e: -getattr(e, attribute))[:top]
        return markdown_table([f'operator (by {where} time)', 'calls per step', f'self {where} ms per step'],
                              [[e.key, f'{e.count / steps:g}', f'{getattr(e, attribute) / 1e3 / steps:.2f}']
                               for e in rows])
    syncs, launches = count(SYNCHRONISATIONS), count(KERNEL_LAUNCHES)
    lines = [f'### {title}', '', f'{steps} steps; per step: {syncs / steps:g} host-device synchronisations '
             f'({", ".join(SYNCHRONISATIONS)}), {launches / steps:g} kernel launches.', '']
    if cuda:
        lines += [ranked('self_device_time_total', 'device'), '']
    else:
        lines += ['CPU run: the host is the device, so the host table is the whole story.', '']
    return '\n'.join(lines + [ranked('self_cpu_time_total', 'host')])
