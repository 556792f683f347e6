"""Checkpoints written whole or not at all: mmengine's local file backend, made atomic."""
from pathlib import Path
from typing import Union

from mmengine.fileio import LocalBackend, register_backend

from mmcityscapes.common.io import atomic_output


class AtomicLocalBackend(LocalBackend):
    """mmengine's ``LocalBackend`` whose ``put`` and ``put_text`` write to a temporary name and
    rename it when complete (``atomic_output``). Everything mmengine writes through its file
    backends, checkpoints (``Runner.save_checkpoint``) and the ``last_checkpoint`` pointer
    (``CheckpointHook``) among them, is then never truncated under its final name: a kill or a
    full disk while writing leaves the previous file, and ``last_checkpoint`` names a complete
    one. A full disk stops with one line naming the file and the free space.

    Registered for local paths when this module is imported (``prepare_runtime`` imports it).
    """

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        with atomic_output(str(filepath)) as tmp, open(tmp, 'wb') as f:
            f.write(obj)

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
        with atomic_output(str(filepath)) as tmp, open(tmp, 'w', encoding=encoding) as f:
            f.write(obj)


register_backend('local', AtomicLocalBackend, force=True, prefixes='')
