"""Preemption: SIGTERM/SIGUSR1 stop training after the current iteration with a checkpoint that
--resume continues exactly from; tools/slurm_train.sh asks Slurm for the signal and requeues."""
import glob
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from conftest import PY, REPO, SMALL_UNET, run_tool

PREEMPTED = 75
# U-Net R34 (epoch-based), one image per step: 10 steps an epoch on the mini train split.
RECIPE = ['configs/unet_r34.py', '--cfg-options', *SMALL_UNET, 'train_dataloader.batch_size=1',
          'train_cfg.max_epochs=2', 'randomness.seed=0']


def logged_lrs(work_dir):
    """{step: lr} over every run (timestamp folder) of ``work_dir``, and how often steps were logged."""
    lrs, counts = {}, {}
    for path in sorted(glob.glob(f'{work_dir}/*/vis_data/scalars.json')):
        for record in map(json.loads, open(path)):
            if 'lr' in record:
                lrs[record['step']] = record['lr']
                counts[record['step']] = counts.get(record['step'], 0) + 1
    return lrs, counts


def start_until_logged(command, env, work_dir, pattern, timeout=600):
    """Start ``command``; return the process once a log line of ``work_dir`` matches ``pattern``."""
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if any(re.search(pattern, open(log).read()) for log in glob.glob(f'{work_dir}/*/*.log')):
            return proc
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError(f'{pattern!r} never logged:\n{proc.communicate()[0][-3000:]}')


def final_meta(work_dir, name):
    return torch.load(f'{work_dir}/{name}', map_location='cpu', weights_only=False)['meta']


@pytest.mark.slow
def test_sigterm_mid_epoch_saves_and_resume_trains_each_step_once(mini_env, tmp_path):
    reference, preempted = tmp_path / 'reference', tmp_path / 'preempted'
    one_epoch = [*RECIPE, 'train_cfg.max_epochs=1']
    run_tool('tools/train.py', *one_epoch, '--work-dir', str(reference), env=mini_env)
    proc = start_until_logged([PY, 'tools/train.py', *one_epoch, '--work-dir', str(preempted)], mini_env, preempted,
                              r'Epoch\(train\)\s*\[1\]\[\s*2/10\]')
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=300)[0]
    assert proc.returncode == PREEMPTED, output[-3000:]
    stopped = re.search(r'PreemptionHook: stopped by SIGTERM after iteration (\d+) \(epoch 1, saved (\S+)\); '
                        'continue with --resume', output)
    assert stopped, output[-3000:]
    step = int(stopped.group(1))
    assert 2 <= step < 10 and stopped.group(2).endswith(f'iter_{step}.pth')
    assert open(preempted / 'last_checkpoint').read().strip().endswith(f'iter_{step}.pth')
    assert final_meta(preempted, f'iter_{step}.pth')['iter'] == step

    resumed = run_tool('tools/train.py', *one_epoch, '--work-dir', str(preempted), '--resume', env=mini_env)
    assert f'skipping {step} batches already trained' in resumed.stdout + resumed.stderr
    lrs, counts = logged_lrs(preempted)
    expected_lrs, _ = logged_lrs(reference)
    assert sorted(counts) == list(range(1, 11)) and set(counts.values()) == {1}  # each step trained once
    assert lrs == pytest.approx(expected_lrs, rel=1e-9)
    assert final_meta(preempted, 'epoch_1.pth')['iter'] == final_meta(reference, 'epoch_1.pth')['iter'] == 10


def rank_pid(launcher_pid, rank):
    """The pid of the worker with ``RANK=rank`` among the children of a torchrun process."""
    for task in os.listdir(f'/proc/{launcher_pid}/task'):
        for child in open(f'/proc/{launcher_pid}/task/{task}/children').read().split():
            if f'RANK={rank}'.encode() in open(f'/proc/{child}/environ', 'rb').read().split(b'\0'):
                return int(child)
    raise AssertionError(f'no rank {rank} under {launcher_pid}')


@pytest.mark.slow
def test_sigterm_to_one_rank_stops_both_at_one_iteration(mini_env, tmp_path):
    """Under tools/dist_train.sh (2 gloo processes), a signal to rank 1 alone: both ranks stop
    after the same iteration (none waits for a peer that left), rank 0 saves, and --resume
    through dist_train.sh trains the rest of the schedule, each step once."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    env = dict(mini_env, PORT=str(port), PYTHON=PY)
    command = ['bash', 'tools/dist_train.sh', *RECIPE[:1], '2', *RECIPE[1:], '--work-dir', str(tmp_path)]
    proc = start_until_logged(command, env, tmp_path, r'Epoch\(train\)\s*\[1\]\[\s*2/5\]')
    os.kill(rank_pid(proc.pid, 1), signal.SIGTERM)
    output = proc.communicate(timeout=300)[0]
    assert proc.returncode != 0 and re.search(r'exitcode\s*:\s*75\b', output), output[-3000:]
    stopped = re.search(r'stopped by a signal to another process after iteration (\d+) \(epoch 1, saved', output)
    assert stopped, output[-3000:]
    step = int(stopped.group(1))
    assert final_meta(tmp_path, f'iter_{step}.pth')['iter'] == step

    resumed = subprocess.run([*command, '--resume'], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _, counts = logged_lrs(tmp_path)
    assert sorted(counts) == list(range(1, 11)) and set(counts.values()) == {1}
    assert final_meta(tmp_path, 'epoch_2.pth')['iter'] == 10


def fake_slurm(tmp_path, srun_status):
    """A PATH with an ``srun`` that records its arguments and exits ``srun_status``, and an
    ``scontrol`` that records its own."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for name, status in (('srun', srun_status), ('scontrol', 0)):
        (bin_dir / name).write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/{name}.args\nexit {status}\n')
        (bin_dir / name).chmod(0o755)
    return f'{bin_dir}:{os.environ["PATH"]}'


@pytest.mark.parametrize('job,restarts', [(None, 0), ('4242', 0), ('4242', 1)])
def test_slurm_train_asks_for_the_signal_and_requeues(tmp_path, job, restarts):
    env = {k: v for k, v in os.environ.items() if not k.startswith('SLURM_')}
    env.update(PATH=fake_slurm(tmp_path, PREEMPTED), SLURM_RESTART_COUNT=str(restarts),
               **({'SLURM_JOB_ID': job} if job else {}))
    proc = subprocess.run(['bash', 'tools/slurm_train.sh', 'gpu', 'name', 'configs/unet_r34.py', 'work_dirs/x',
                           '--amp'], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == PREEMPTED
    srun = (tmp_path / 'srun.args').read_text().split()
    assert '--signal=USR1@300' in srun and srun[-1] == '--amp'
    assert ('--resume' in srun) == bool(restarts)  # a requeued job resumes, a first one starts
    if job:
        assert (tmp_path / 'scontrol.args').read_text().split() == ['requeue', job]
        assert f'job {job} requeued' in proc.stderr
    else:
        assert not (tmp_path / 'scontrol.args').exists()
        assert 'continue with: bash tools/slurm_train.sh gpu name configs/unet_r34.py work_dirs/x --amp --resume' \
            in proc.stderr


def test_slurm_train_passes_a_training_failure_through(tmp_path):
    env = dict(os.environ, PATH=fake_slurm(tmp_path, 1), SLURM_JOB_ID='4242')
    proc = subprocess.run(['bash', 'tools/slurm_train.sh', 'gpu', 'name', 'configs/unet_r34.py'], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and not (tmp_path / 'scontrol.args').exists()


def test_a_second_signal_ends_the_process_at_once():
    """The first SIGTERM is recorded (training stops after its iteration); a second one is not
    held back."""
    code = ('import os, signal, time\n'
            'from mmcityscapes.engine.hooks.preemption_hook import _received, listen_for_stop_signals\n'
            'listen_for_stop_signals()\n'
            'os.kill(os.getpid(), signal.SIGTERM)\n'
            'time.sleep(0.1)\n'
            'print(_received, flush=True)\n'
            'listen_for_stop_signals()\n'  # a later run of a sequence does not re-arm it
            'os.kill(os.getpid(), signal.SIGTERM)\n'
            'time.sleep(5)\n'
            'print("survived")\n')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.split() == ["['SIGTERM']"] and proc.returncode == -signal.SIGTERM
