"""The one peak-memory meter: training statistics and the benchmarks both read it."""
import ctypes
import os
from typing import Union

import torch


class PeakMemory:
    """Peak memory of ``device`` since the last ``reset()`` (or the ``with`` block's start): the
    CUDA allocator's peak of memory allocated by tensors, or on CPU the process's peak resident
    set (Linux's VmHWM, which ``reset`` sets back to the current resident set after glibc returned
    freed memory to the OS). ``peak()`` is absolute; ``growth()`` is beyond what was in use at
    the reset (the weights and optimizer state of a warmed-up model), in bytes."""

    def __init__(self, device: Union[str, torch.device, None] = None) -> None:
        self.device = torch.device(device or ('cuda' if torch.cuda.is_available() else 'cpu'))
        self.start = 0

    def reset(self) -> 'PeakMemory':
        if self.device.type == 'cuda':
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = torch.cuda.memory_allocated(self.device)
            return self
        try:
            ctypes.CDLL('libc.so.6').malloc_trim(0)
            with open('/proc/self/clear_refs', 'w') as f:
                f.write('5')  # resets VmHWM (Linux >= 4.0)
        except OSError:
            pass
        self.start = self._resident()
        return self

    def peak(self) -> int:
        if self.device.type == 'cuda':
            return torch.cuda.max_memory_allocated(self.device)
        try:
            with open('/proc/self/status') as f:
                return next(int(line.split()[1]) for line in f if line.startswith('VmHWM:')) * 1024
        except (OSError, StopIteration):
            return float('nan')

    def growth(self) -> int:
        return self.peak() - self.start

    @staticmethod
    def _resident():
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')

    __enter__ = reset

    def __exit__(self, *exc) -> bool:
        return False
