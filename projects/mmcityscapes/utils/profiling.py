"""Where training steps spend their time: torch profiler and onnxruntime profile summaries as
markdown tables."""
import json
import time
from collections import defaultdict
from typing import Any, Callable, Sequence

import torch
from torch.profiler import ProfilerActivity, profile

from mmcityscapes.common.tables import markdown_table

SYNCHRONISATIONS = ('cudaStreamSynchronize', 'cudaDeviceSynchronize', 'cudaEventSynchronize')
KERNEL_LAUNCHES = ('cudaLaunchKernel', 'cudaLaunchKernelExC', 'cuLaunchKernel', 'cuLaunchKernelEx')


def profile_steps(run_steps: Callable[[], None], steps: int, title: str, cuda: bool, top: int = 15) -> str:
    """Profile ``run_steps()`` (``steps`` steps) and return markdown: host-device synchronisations
    and kernel launches per step, then the ``top`` operators by device time (CUDA) and by host
    time, self time only (an operator's children are counted in their own rows)."""
    with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])) as prof:
        run_steps()
    events = prof.key_averages()

    def count(names: Sequence[str]) -> int:
        return sum(event.count for event in events if event.key in names)

    def ranked(attribute: str, where: str) -> str:
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


def onnxruntime_profile_table(trace_file: str, optimized_onnx_file: str, steps: int, title: str, top: int = 15) -> str:
    """Markdown of the ``top`` operators of an onnxruntime profile (``trace_file`` of ``steps``
    runs) by time; convolutions are split by kernel size, dilation and groups, read from the nodes
    of the graph onnxruntime ran (``optimized_onnx_file``: its fused and NCHWc nodes)."""
    import onnx
    convolutions = {}
    for node in onnx.load(optimized_onnx_file, load_external_data=False).graph.node:
        if node.op_type == 'Conv':
            attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            kernel, dilation = attributes.get('kernel_shape', []), attributes.get('dilations', [1])
            convolutions[node.name] = convolution_kind(kernel, dilation, attributes.get('group', 1))
    times, calls = defaultdict(float), defaultdict(int)
    for event in json.load(open(trace_file)):
        if event.get('cat') == 'Node' and event['name'].endswith('_kernel_time'):
            name = event['name'][:-len('_kernel_time')]
            key = convolutions.get(name, event['args'].get('op_name', name))
            times[key] += event['dur'] / 1e3
            calls[key] += 1
    total = sum(times.values())
    rows = sorted(times, key=lambda k: -times[k])[:top]
    return '\n'.join([f'### {title}', '', f'{steps} steps, onnxruntime profile: {total / steps:.1f} ms of operator '
                       'time per step.', '', markdown_table(
                           ['operator (by time)', 'calls per step', 'ms per step', 'share'],
                           [[k, f'{calls[k] / steps:g}', f'{times[k] / steps:.2f}', f'{100 * times[k] / total:.1f} %']
                            for k in rows])])


def convolution_kind(kernel: Sequence[int], dilation: Sequence[int], groups: int) -> str:
    return f'Conv {"x".join(map(str, kernel))}, dilation {max(dilation)}' + (f', groups {groups}' if groups > 1 else '')


def convolution_table(model: torch.nn.Module, run_steps: Callable[[], None], steps: int, title: str) -> str:
    """Markdown of the wall time of ``model``'s ``Conv2d`` calls during ``run_steps()`` by kernel
    size, dilation and groups (the keys of ``onnxruntime_profile_table``). On the CPU, where a call
    returns when its result is there."""
    times, calls, starts = defaultdict(float), defaultdict(int), {}

    def before(module: torch.nn.Module, inputs: tuple) -> None:
        starts[module] = time.perf_counter()

    def after(module: torch.nn.Module, inputs: tuple, output: Any) -> None:
        kind = convolution_kind(module.kernel_size, module.dilation, module.groups)
        times[kind] += (time.perf_counter() - starts.pop(module)) * 1e3
        calls[kind] += 1
    convolutions = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    handles = [hook(function) for m in convolutions
               for hook, function in ((m.register_forward_pre_hook, before), (m.register_forward_hook, after))]
    try:
        run_steps()
    finally:
        for handle in handles:
            handle.remove()
    rows = sorted(times, key=lambda k: -times[k])
    return '\n'.join([f'### {title}: convolutions', '', f'{steps} steps: {sum(times.values()) / steps:.1f} ms of '
                       'Conv2d time per step.', '', markdown_table(
                           ['convolution', 'calls per step', 'ms per step'],
                           [[k, f'{calls[k] / steps:g}', f'{times[k] / steps:.2f}'] for k in rows])])
