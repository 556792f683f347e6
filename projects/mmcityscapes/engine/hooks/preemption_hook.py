"""Stop on SIGTERM or SIGUSR1 (a Slurm preemption or time limit) or a first Ctrl-C (SIGINT) after
the current iteration,
with a checkpoint that ``--resume`` continues exactly from."""
import os
import os.path as osp
import signal
import threading
from types import FrameType
from typing import NoReturn, Optional

import torch
from mmengine.dist import all_reduce, barrier, get_world_size, is_main_process
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import EpochBasedTrainLoop, Runner
from torch.utils.data._utils import signal_handling

from mmcityscapes.common.io import write_text

# EX_TEMPFAIL of sysexits.h: stopped on request, resumable. tools/slurm_train.sh requeues on it.
PREEMPTED_EXIT = 75
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)  # a second one ends the process at once
_received = []


def _record(signum: int, frame: Optional[FrameType]) -> None:
    _received.append(signal.Signals(signum).name)
    signal.signal(signum, signal.SIG_DFL)  # a second one ends the process at once


def listen_for_stop_signals() -> None:
    """Record SIGTERM/SIGUSR1/SIGINT instead of dying (idempotent; for the rest of this process's
    life, so a signal between the runs of a sequence stops the next one), and make dataloader workers
    ignore them unless their parent sends them: Slurm and torchrun signal every process of a
    task, and a worker that dies of it (torch's worker handler re-raises a SIGTERM not sent by its
    parent) would fail the step being saved."""
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) is not _record and not _received:
            signal.signal(signum, _record)
    if signal_handling._set_worker_signal_handlers is not _set_worker_signal_handlers:
        _torch_worker_handlers.append(signal_handling._set_worker_signal_handlers)
        signal_handling._set_worker_signal_handlers = _set_worker_signal_handlers


_torch_worker_handlers = []


def _set_worker_signal_handlers(*args) -> None:
    """torch's handlers of a dataloader worker (called as the worker starts), then the stop
    signals taken by a thread that ends the worker when its parent sends one (the loader's
    shutdown, as torch's handler does) and drops the others."""
    _torch_worker_handlers[0](*args)
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    threading.Thread(target=_exit_on_parent_s_signal, args=(os.getppid(),), daemon=True).start()


def _exit_on_parent_s_signal(parent: int) -> None:
    while signal.sigwaitinfo(STOP_SIGNALS).si_pid != parent:
        pass
    os._exit(0)


@HOOKS.register_module()
class PreemptionHook(Hook):
    """Turn a recorded stop signal (``listen_for_stop_signals``) into a clean stop.

    After the iteration during which it arrived (validation included) the run saves
    ``iter_<n>.pth`` with optimizer and scheduler state, points ``last_checkpoint`` at it and
    exits with ``PREEMPTED_EXIT``. A signal before training starts or after it ends (a sequence
    runner between runs) stops the run there: nothing is lost. Processes of a distributed run
    agree after every iteration (one all-reduce of a flag), so all stop at the same one even
    when the signal reaches them at different times.
    """

    priority = 'LOWEST'  # after ParamSchedulerHook and CheckpointHook: the saved state is this iteration's

    def stop_requested(self) -> bool:
        requested = torch.tensor([len(_received)], dtype=torch.int64)
        if get_world_size() > 1:
            all_reduce(requested, op='max')
        return bool(requested.item())

    # not before_run: Runner.test calls that too, and testing stays killable
    def before_train(self, runner: Runner) -> None:
        listen_for_stop_signals()
        if self.stop_requested():
            self.stop(runner, f'before training {runner.work_dir}')

    def after_train_iter(self, runner: Runner, batch_idx: int, data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        if not self.stop_requested():
            return
        step = runner.iter + 1
        filename = f'iter_{step}.pth'
        runner.save_checkpoint(runner.work_dir, filename, save_optimizer=True, save_param_scheduler=True,
                               meta=dict(epoch=runner.epoch, iter=step))
        path = osp.join(runner.work_dir, filename)
        if is_main_process():
            write_text(path, osp.join(runner.work_dir, 'last_checkpoint'))
        barrier()  # no process exits before the checkpoint is written (srun --kill-on-bad-exit)
        where = f'epoch {runner.epoch + 1}, ' if isinstance(runner.train_loop, EpochBasedTrainLoop) else ''
        self.stop(runner, f'after iteration {step} ({where}saved {path})')

    def after_train(self, runner: Runner) -> None:
        if self.stop_requested():
            self.stop(runner, f'after training {runner.work_dir}')

    @staticmethod
    def stop(runner: Runner, when: str) -> NoReturn:
        name = _received[0] if _received else 'a signal to another process'
        runner.logger.warning(f'PreemptionHook: stopped by {name} {when}; continue with --resume')
        raise SystemExit(PREEMPTED_EXIT)
