"""Tool runs for the tests, each a process of its own, without paying the libraries' import each time.

A new interpreter spends about 5 s of CPU importing torch, mmengine, mmcv, mmdet and mmseg before a
tool does anything, and the suite runs tools a few hundred times. ``ToolServer`` starts one process
that imports those third-party libraries (never the plugin or a tool), then forks a child per run:
the child takes the run's working directory, environment, arguments and output files, runs the tool
as ``python TOOL ARGS`` would (``__main__``, ``sys.argv``, ``sys.path[0]``) and ends as
multiprocessing's forked children end (non-daemon threads joined, ``atexit`` run), with the exit
status the interpreter would give. A run whose environment differs from the server's in a variable
that may be read at import time (``OMP_NUM_THREADS``, say) cannot be served this way:
``ToolServer.serves`` says so and the caller starts a new interpreter.

Run as a script, this file is the server: one JSON request per line on stdin, one JSON line per
answer on stdout (the child's exit status, and whether it outlived its timeout).
"""
import atexit
import json
import os
import runpy
import select
import signal
import subprocess
import sys
import threading
import traceback

# Third-party modules the tools import (the plugin and the tools are left to each run, so that a
# registration the plugin forgets fails as it would in a new interpreter).
PRELOAD = ['torch', 'torchvision', 'cv2', 'mmengine.runner', 'mmcv.ops', 'mmcv.transforms', 'mmdet.apis',
           'mmdet.datasets', 'mmdet.evaluation', 'mmdet.models', 'mmseg.apis', 'mmseg.datasets',
           'mmseg.evaluation', 'mmseg.models', 'onnxruntime', 'pycocotools.coco']
# Variables read only once a tool runs (configs read CITYSCAPES_ROOT when they are loaded).
READ_AT_RUN_TIME = {'CITYSCAPES_ROOT'}


class ToolServer:
    """A process that has imported ``PRELOAD`` and forks one child per tool run."""

    def __init__(self, python: str):
        self.env = dict(os.environ)
        self.process = subprocess.Popen([python, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        env=self.env, text=True)

    def serves(self, env: dict) -> bool:
        """Whether a run with ``env`` gives in a child of the server what it gives in a new interpreter."""
        keys = (set(env) | set(self.env)) - READ_AT_RUN_TIME
        return all(env.get(key) == self.env.get(key) for key in keys)

    def run(self, tool: str, args: list, cwd: str, env: dict, timeout: float) -> subprocess.CompletedProcess:
        """Run ``python tool *args`` in ``cwd`` with ``env``; the tool's output as text, as
        ``subprocess.run(..., capture_output=True, text=True)`` returns it."""
        out_dir = os.environ.get('TMPDIR', '/tmp')
        stdout, stderr = (os.path.join(out_dir, f'tool-{self.process.pid}.{name}') for name in ('out', 'err'))
        request = dict(tool=tool, args=[str(a) for a in args], cwd=str(cwd), env=env, stdout=stdout, stderr=stderr,
                       timeout=timeout)
        self.process.stdin.write(json.dumps(request) + '\n')
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f'the tool server (pid {self.process.pid}) ended with status {self.process.wait()}')
        answer = json.loads(line)
        output = []
        for path in (stdout, stderr):
            with open(path, errors='replace') as f:
                output.append(f.read())
            os.remove(path)
        if answer['timed_out']:
            raise subprocess.TimeoutExpired([tool, *args], timeout, *output)
        return subprocess.CompletedProcess([tool, *args], answer['status'], *output)

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=60)


def run_in_child(request: dict):
    """In the forked child: become ``python TOOL ARGS``; end as a forked child of multiprocessing ends
    (non-daemon threads joined, ``atexit`` run, output flushed, then ``os._exit``: the libraries' C++
    destructors would join thread pools that only the server has)."""
    os.chdir(request['cwd'])
    os.environ.clear()
    os.environ.update(request['env'])
    for fd, path, flags in ((0, os.devnull, os.O_RDONLY), (1, request['stdout'], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                            (2, request['stderr'], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
        opened = os.open(path, flags, 0o644)
        os.dup2(opened, fd)
        os.close(opened)
    tool = request['tool']
    sys.argv = [tool, *request['args']]
    sys.path[0] = os.path.dirname(os.path.abspath(tool))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    status = 0
    try:
        runpy.run_path(tool, run_name='__main__')
    except SystemExit as exit:  # read as the interpreter reads sys.exit's argument
        if exit.code is None or isinstance(exit.code, int):
            status = exit.code or 0
        else:
            print(exit.code, file=sys.stderr)
            status = 1
    except BaseException:
        traceback.print_exc()
        status = 1
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def serve():
    for module in PRELOAD:
        __import__(module)
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            run_in_child(request)
        child = os.pidfd_open(pid)
        ended, _, _ = select.select([child], [], [], request['timeout'])
        os.close(child)
        if not ended:  # killed, as subprocess.run kills a run that outlives its timeout
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        print(json.dumps(dict(status=os.waitstatus_to_exitcode(status), timed_out=not ended)), flush=True)


if __name__ == '__main__':
    serve()
