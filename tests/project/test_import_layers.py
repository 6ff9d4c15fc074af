"""Packages import only what their docstrings allow, and the layers are a DAG.

Every package's `__init__.py` docstring ends with a "May import:" paragraph
naming the packages of switch_mtf its modules may import ("nothing else of
switch_mtf", or a list; "its own subpackages" allows its descendants). This
parses every module's imports, lazy ones inside functions included, and
fails on any import the importing package does not declare.
"""

import ast
import os
import re
import textwrap
from typing import Dict, List, Set, Tuple

import pytest

from tests import repo_paths

ROOT = "switch_mtf"
_MAY_IMPORT = re.compile(r"May import:(.*?)(?:\n\s*\n|\Z)", re.S)


def _packages(src_dir: str) -> Dict[str, str]:
  """Dotted package name -> its directory, for every folder with __init__."""
  found = {}
  for dirpath, dirnames, filenames in os.walk(os.path.join(src_dir, ROOT)):
    dirnames[:] = [d for d in dirnames if d != "__pycache__"]
    if "__init__.py" in filenames:
      rel = os.path.relpath(dirpath, src_dir)
      found[rel.replace(os.sep, ".")] = dirpath
  return found


def _declared(package_dir: str) -> Tuple[Set[str], bool]:
  """(packages it may import, whether its own subpackages are allowed)."""
  path = os.path.join(package_dir, "__init__.py")
  doc = ast.get_docstring(ast.parse(open(path).read())) or ""
  match = _MAY_IMPORT.search(doc)
  if not match:
    raise AssertionError("%s: the docstring has no 'May import:' paragraph"
                         % path)
  text = " ".join(match.group(1).split())
  allowed = set(re.findall(r"\b%s(?:\.\w+)+" % ROOT, text))
  return allowed, "its own subpackages" in text


def _owner(module: str, packages: Dict[str, str]) -> str:
  """The innermost package that contains `module` (or is it)."""
  while module not in packages:
    module = module.rpartition(".")[0]
  return module


def _imports(path: str, module: str, is_package: bool) -> List[Tuple[int, str]]:
  """(line, imported module) for every import of switch_mtf in a file."""
  tree = ast.parse(open(path).read())
  base = module if is_package else module.rpartition(".")[0]
  found = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      found += [(node.lineno, a.name) for a in node.names]
    elif isinstance(node, ast.ImportFrom):
      target = node.module or ""
      if node.level:
        parts = base.split(".")
        parts = parts[:len(parts) - node.level + 1]
        target = ".".join(parts + ([target] if target else []))
      # `from package import name`: name may be a module of the package.
      found += [(node.lineno, target + "." + a.name) for a in node.names]
  return [(line, name) for line, name in found
          if name == ROOT or name.startswith(ROOT + ".")]


def violations(src_dir: str) -> List[str]:
  """Every import a package's docstring does not allow, and layer cycles."""
  packages = _packages(src_dir)
  rules = {name: _declared(path) for name, path in packages.items()}
  problems = []
  for package, package_dir in sorted(packages.items()):
    allowed, subpackages = rules[package]
    for name in sorted(os.listdir(package_dir)):
      if not name.endswith(".py"):
        continue
      is_init = name == "__init__.py"
      module = package if is_init else package + "." + name[:-3]
      path = os.path.join(package_dir, name)
      for line, target in _imports(path, module, is_init):
        owner = _owner(target, packages)
        if owner == package or owner in allowed:
          continue
        if subpackages and owner.startswith(package + "."):
          continue
        problems.append("%s:%d imports %s (package %s), which %s's docstring "
                        "does not allow" % (os.path.relpath(path, src_dir),
                                            line, target, owner, package))
  graph = {p: {a for a in allowed if a != p} for p, (allowed, _) in
           rules.items()}
  problems += ["layer cycle: " + " -> ".join(c) for c in _cycles(graph)]
  return problems


def _cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
  """Cycles of declared imports (depth-first search; one per back edge)."""
  cycles, state = [], {}

  def visit(node, stack):
    state[node] = "open"
    for nxt in sorted(graph.get(node, ())):
      if state.get(nxt) == "open":
        cycles.append(stack[stack.index(nxt):] + [nxt])
      elif nxt not in state:
        visit(nxt, stack + [nxt])
    state[node] = "done"

  for node in sorted(graph):
    if node not in state:
      visit(node, [node])
  return cycles


def test_every_import_is_allowed_by_its_packages_docstring():
  assert violations(repo_paths.REPO_DIR) == []


def test_the_layer_imports_nothing_else_of_ours():
  allowed, subpackages = _declared(
      os.path.join(repo_paths.REPO_DIR, ROOT, "layer"))
  assert allowed == set() and not subpackages


def _write(root, files):
  for rel, text in files.items():
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


def _toy(tmp_path, low_module_text):
  _write(tmp_path, {
      "switch_mtf/__init__.py": '"""Root.\n\nMay import: switch_mtf.low.\n"""',
      "switch_mtf/low/__init__.py": '"""Low.\n\nMay import: nothing.\n"""',
      "switch_mtf/low/a.py": low_module_text,
      "switch_mtf/high/__init__.py":
          '"""High.\n\nMay import: switch_mtf.low.\n"""',
      "switch_mtf/high/b.py": "from switch_mtf.low import a\n",
  })
  return violations(str(tmp_path))


def test_the_check_passes_a_clean_tree(tmp_path):
  assert _toy(tmp_path, "import os\n") == []


def test_the_check_catches_an_upward_import(tmp_path):
  problems = _toy(tmp_path, "from switch_mtf.high import b\n")
  assert len(problems) == 1
  assert "switch_mtf/low/a.py:1 imports switch_mtf.high.b" in problems[0]


def test_the_check_catches_a_lazy_relative_import(tmp_path):
  problems = _toy(tmp_path, "def f():\n  from ..high import b\n")
  assert len(problems) == 1 and "switch_mtf.high.b" in problems[0]


def test_the_check_catches_a_declared_cycle(tmp_path):
  _write(tmp_path, {
      "switch_mtf/__init__.py": '"""R.\n\nMay import: nothing.\n"""',
      "switch_mtf/x/__init__.py": '"""X.\n\nMay import: switch_mtf.y.\n"""',
      "switch_mtf/y/__init__.py": '"""Y.\n\nMay import: switch_mtf.x.\n"""',
  })
  assert violations(str(tmp_path)) == [
      "layer cycle: switch_mtf.x -> switch_mtf.y -> switch_mtf.x"]


def test_a_package_without_a_rule_is_an_error(tmp_path):
  _write(tmp_path, {"switch_mtf/__init__.py": '"""Root, no rule."""'})
  with pytest.raises(AssertionError, match="May import"):
    violations(str(tmp_path))
