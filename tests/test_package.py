"""The plugin as a package: installable, registration only through custom_imports, light modules
and tools that start without torch."""
import os
import os.path as osp
import shutil
import subprocess

import pytest

from conftest import PY, REPO

HEAVY = ('torch', 'torchvision', 'mmengine', 'mmcv', 'mmdet', 'mmseg')
LIGHT_TOOLS = ['tools/analysis_tools/eval_cityscapes.py', 'tools/dataset_converters/cityscapes.py',
               'tools/misc/synthetic_cityscapes.py', 'tools/analysis_tools/dataset_stats.py',
               'tools/analysis_tools/plot_curves.py', 'tools/analysis_tools/results_table.py']
HEAVY_LOADED = f'print(sorted({{m.split(".")[0] for m in sys.modules}} & {set(HEAVY)!r}))'


def python(code, cwd):
    return subprocess.run([PY, '-c', code], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_plugin_installs_in_a_fresh_venv_and_imports_from_anywhere(tmp_path):
    """``pip install -e .`` into a venv that has nothing but pip (the build backend comes from the
    package index, as for any user), then the package imports from another folder, from this
    checkout: it needs no dependency to import."""
    venv = tmp_path / 'venv'
    base = subprocess.run([PY, '-c', 'import sys; print(sys.base_prefix)'], capture_output=True,
                          text=True).stdout.strip()
    subprocess.run([osp.join(base, 'bin', 'python3'), '-m', 'venv', str(venv)], check=True, timeout=300)
    install = subprocess.run([str(venv / 'bin' / 'python'), '-m', 'pip', 'install', '--no-deps', '-e', REPO],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    proc = subprocess.run([str(venv / 'bin' / 'python'), '-c', 'import mmcityscapes as p; print(p.__file__)'],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == osp.join(REPO, 'projects', 'mmcityscapes', '__init__.py')


def test_installed_plugin_registers_through_custom_imports(tmp_path):
    """From outside the repository, a config's custom_imports registers the components, and
    importing the package alone registers none."""
    config = tmp_path / 'uses_plugin.py'
    config.write_text("custom_imports = dict(imports=['mmcityscapes.components'], allow_failed_imports=False)\n")
    code = ('import mmcityscapes\n'
            'from mmseg.registry import MODELS\n'
            'before = MODELS.get("UNetHead")\n'
            'from mmengine.config import Config\n'
            f'Config.fromfile({str(config)!r})\n'
            'print(before, MODELS.get("UNetHead").__module__)')
    proc = python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ['None', 'mmcityscapes.models.unet_head']


def test_light_layers_import_without_torch(tmp_path):
    """Every module of ``mmcityscapes.common`` and ``mmcityscapes.cityscapes`` (found by walking the
    packages, so a new module is covered too) and the bare package import without torch or
    OpenMMLab."""
    code = ('import pkgutil, sys, importlib, mmcityscapes, mmcityscapes.common, mmcityscapes.cityscapes\n'
            'names = [m.name for package in (mmcityscapes.common, mmcityscapes.cityscapes)\n'
            '         for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]\n'
            'for name in names:\n    importlib.import_module(name)\n'
            f'print(len(names))\n{HEAVY_LOADED}')
    proc = python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    count, loaded = proc.stdout.split('\n', 1)
    assert int(count) >= 16 and loaded.strip() == '[]'


def test_light_tools_start_without_torch():
    """Each light tool's ``--help``, run as a script, loads none of torch/OpenMMLab."""
    for tool in LIGHT_TOOLS:
        code = (f'import runpy, sys\nsys.argv = [{tool!r}, "--help"]\n'
                f'try:\n    runpy.run_path({tool!r}, run_name="__main__")\nexcept SystemExit:\n    pass\n'
                f'{HEAVY_LOADED}')
        proc = python(code, REPO)
        assert proc.returncode == 0, (tool, proc.stderr[-3000:])
        assert proc.stdout.strip().splitlines()[-1] == '[]', tool
        assert 'usage:' in proc.stdout, tool


# The plugin's layers, lowest first: a module imports modules of its own layer or of lower ones.
LAYERS = [('common',), ('cityscapes',), ('utils',), ('models', 'datasets', 'evaluation', 'visualization', 'tuning'),
          ('engine',), ('deployment',), ('apis', 'analysis', 'panoptic'), ('components',)]


def plugin_imports():
    """{module: the plugin modules it imports}, packages included: importing ``a.b.c`` runs the
    ``__init__`` of ``a.b`` first unless the importing module is inside ``a.b`` already."""
    import ast
    import pkgutil

    import mmcityscapes
    modules = {'mmcityscapes': mmcityscapes.__file__}
    for info in pkgutil.walk_packages(mmcityscapes.__path__, 'mmcityscapes.'):
        modules[info.name] = info.module_finder.find_spec(info.name).origin
    graph = {}
    for name, path in modules.items():
        package = name if path.endswith('__init__.py') else name.rpartition('.')[0]
        targets = set()
        for node in ast.walk(ast.parse(open(path).read())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ''
                if node.level:
                    base = '.'.join(package.split('.')[:len(package.split('.')) - node.level + 1] + [base]).strip('.')
                found = [f'{base}.{alias.name}' for alias in node.names if f'{base}.{alias.name}' in modules]
                targets |= set(found or [base])
            elif isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
        edges = set()
        for target in targets & set(modules):
            parts = target.split('.')
            edges |= {'.'.join(parts[:i]) for i in range(2, len(parts) + 1)
                      if not package.startswith('.'.join(parts[:i]))}
        graph[name] = edges - {name}
    return graph


def layer(module):
    top = module.split('.')[1] if '.' in module else None
    return next((i for i, names in enumerate(LAYERS) if top in names), -1)


def test_plugin_imports_have_no_cycle_and_go_down_the_layers():
    """No module imports one of a higher layer (``LAYERS``, as the plugin README draws them) or
    ``components`` (the configs' ``custom_imports`` alone register the plugin), and the modules
    import each other without a cycle."""
    graph = plugin_imports()
    assert len(graph) > 60 and all(layer(m) >= 0 for m in graph if m != 'mmcityscapes'), sorted(graph)
    upward = [(m, t) for m, targets in graph.items() for t in targets
              if layer(t) > layer(m) or (t == 'mmcityscapes.components' and m != t)]
    assert not upward
    state, stack = {}, []

    def visit(module):  # depth-first search; a module met again while on the stack closes a cycle
        state[module] = 'open'
        stack.append(module)
        for target in sorted(graph[module]):
            assert state.get(target) != 'open', 'import cycle: ' + ' -> '.join(stack[stack.index(target):] + [target])
            if target not in state:
                visit(target)
        stack.pop()
        state[module] = 'done'

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_components_imports_every_registered_class():
    """``components.py`` (what configs import) names every class the plugin registers, so none is
    missing from a config's registries."""
    import ast
    import pkgutil

    import mmcityscapes
    registered = set()
    for info in pkgutil.walk_packages(mmcityscapes.__path__, 'mmcityscapes.'):
        tree = ast.parse(open(info.module_finder.find_spec(info.name).origin).read())
        registered |= {node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef) and any(
            'register_module' in ast.unparse(decorator) for decorator in node.decorator_list)}
    import mmcityscapes.components as components
    assert len(registered) > 20 and registered <= set(components.__all__), registered - set(components.__all__)


def test_loading_a_checkpoint_imports_no_deployment_module_nor_onnxruntime(tmp_path):
    """``ModelSource`` gives the model of a plain checkpoint, its tensors loaded, without importing
    ``mmcityscapes.deployment`` or an ONNX runtime (the config is read without its custom_imports,
    which register the onnxruntime models among the others)."""
    config = osp.join(REPO, 'configs', 'mini', 'fast_scnn_mini.py')
    code = ('import sys, torch\n'
            'from mmengine.config import Config\n'
            'from mmcityscapes.apis.model_source import ModelSource\n'
            'from mmcityscapes.utils.model import build_model\n'
            f'cfg = Config.fromfile({config!r}, import_custom_modules=False)\n'
            'torch.manual_seed(0)\n'
            'saved = build_model(cfg).state_dict()\n'
            f'torch.save(dict(state_dict=saved, meta={{}}), {str(tmp_path / "weights.pth")!r})\n'
            'torch.manual_seed(1)\n'
            f'loaded = ModelSource({str(tmp_path / "weights.pth")!r}).build(cfg).state_dict()\n'
            'print(all(torch.equal(saved[k], loaded[k]) for k in saved), len(saved))\n'
            'print(sorted(m for m in sys.modules if m.startswith(("mmcityscapes.deployment", "onnx"))))')
    proc = python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    equal, count, modules = proc.stdout.replace('\n', ' ', 1).split(' ', 2)
    assert (equal, int(count) > 100, modules.strip()) == ('True', True, '[]')


@pytest.mark.slow
def test_plugin_installed_without_a_checkout_runs_benchmark_eval(tmp_path):
    """The plugin installed non-editable (``pip install --target`` from a copy of the package's
    files, so the build leaves nothing in the repository), imported from outside the repository,
    runs ``benchmark_eval`` on a generated val pair: its evaluators are the installed package's
    ``python -m`` modules, and every one gives the official scores."""
    source, target = tmp_path / 'source', tmp_path / 'site'
    shutil.copytree(osp.join(REPO, 'projects', 'mmcityscapes'), source / 'projects' / 'mmcityscapes',
                    ignore=shutil.ignore_patterns('__pycache__'))
    for name in ('pyproject.toml', 'README.md', 'LICENSE'):
        shutil.copy(osp.join(REPO, name), source / name)
    install = subprocess.run([PY, '-m', 'pip', 'install', '--no-deps', '--no-build-isolation', '--target', str(target),
                              str(source)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]
    shutil.rmtree(source)  # nothing but the installed files is left to import
    code = ('import mmcityscapes\n'
            'from mmcityscapes.analysis.benchmark_eval import benchmark_eval\n'
            f'benchmark_eval("instance", 2, 4, 128, 256, 2, {str(tmp_path / "run")!r})\n'
            'print(mmcityscapes.__file__)')
    proc = subprocess.run([PY, '-c', code], cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(target)),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == str(target / 'mmcityscapes' / '__init__.py')
    assert 'identical results: True;' in proc.stdout and '`eval_cityscapes.py --task instance`' in proc.stdout
