"""Process groups: the one of a distributed launch, created before any Runner, and each process
of a launch on its own for a while (runs side by side)."""
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, Iterator, Tuple

import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.dist import broadcast_object_list, init_dist


def broadcast(value: Any) -> Any:
    """``value`` of rank 0 on every process (itself when not distributed)."""
    box = [value]
    broadcast_object_list(box)
    return box[0]


def init_distributed(cfg: Config) -> None:
    """Create the process group of a distributed launch (gloo for ``pytorch`` without CUDA:
    mmengine's own initialisation calls ``torch.cuda.set_device``). Here, before any Runner,
    because the plugin's runners communicate between the runs they chain."""
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or torch_dist.is_initialized():
        return
    if launcher == 'pytorch' and not torch.cuda.is_available():
        torch_dist.init_process_group(backend='gloo')
    else:
        init_dist(launcher, **cfg.get('env_cfg', {}).get('dist_cfg', {}))


@contextmanager
def standalone_processes(rejoin: bool = True, timeout_s: int = 1800) -> Iterator[Tuple[int, int]]:
    """Run the body in every process of a distributed launch as if each were launched alone:
    the process group is taken down, so mmengine's samplers, seeds, metrics and barriers see a
    world of one (each process keeps its GPU). With ``rejoin`` it is built again after the body,
    over the launch's own rendezvous store; a process that has not arrived after ``timeout_s``
    seconds stops the others with an error. Yields ``(rank, world_size)``, ``(0, 1)`` when not
    distributed."""
    if not torch_dist.is_initialized():
        yield 0, 1
        return
    rank, world_size, backend = torch_dist.get_rank(), torch_dist.get_world_size(), torch_dist.get_backend()
    store = torch_dist.distributed_c10d._get_default_store()  # kept: rank 0 may host it (env://)
    torch_dist.barrier()  # a process still connecting to the others would see its peer gone
    torch_dist.destroy_process_group()
    yield rank, world_size
    if rejoin:
        _REJOINS.append(rank)
        torch_dist.init_process_group(backend, store=torch_dist.PrefixStore(f'rejoin_{len(_REJOINS)}/', store),
                                      rank=rank, world_size=world_size, timeout=timedelta(seconds=timeout_s))


_REJOINS = []  # one entry per rebuilt process group: each rendezvous gets its own store keys
