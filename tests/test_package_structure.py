"""The package's shape, read from the source (no imports run): commands are imported only by
cli.py, the core imports nothing from the stages, and no module imports itself back through others
(every import counts, top-level or inside a function)."""
import ast
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("swaptalk_jax", "data_prep", "configs")


def _module_name(path: pathlib.Path) -> str:
  parts = list(path.relative_to(REPO).with_suffix("").parts)
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _python_files(roots=PACKAGES + ("tests", "benchmarks", "tools")):
  for root in roots:
    yield from sorted((REPO / root).rglob("*.py"))


MODULES = {_module_name(p): p for p in _python_files(PACKAGES)}


def _imports(path: pathlib.Path) -> set[str]:
  """Modules `path` imports (absolute names; `from pkg import sub` counts as pkg.sub if it is one)."""
  tree = ast.parse(path.read_text(), str(path))
  found = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      found.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      for alias in node.names:
        sub = f"{node.module}.{alias.name}"
        found.add(sub if sub in MODULES else node.module)
  return found


def test_commands_are_imported_only_by_the_cli():
  offenders = [f"{path.relative_to(REPO)} imports {name}" for path in _python_files()
               if path.relative_to(REPO).as_posix() != "swaptalk_jax/cli.py"
               for name in _imports(path)
               if name == "swaptalk_jax.commands" or name.startswith("swaptalk_jax.commands.")]
  assert not offenders, "\n".join(offenders)


def test_core_imports_nothing_from_the_stages():
  offenders = [f"{path.relative_to(REPO)} imports {name}"
               for path in sorted((REPO / "swaptalk_jax" / "core").rglob("*.py"))
               for name in _imports(path) if name.startswith("swaptalk_jax.trainers")]
  assert not offenders, "\n".join(offenders)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
  """Strongly connected components with more than one module (Tarjan), each sorted."""
  index, low, stack, on_stack, out = {}, {}, [], set(), []

  def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in graph.get(v, ()):
      if w not in index:
        visit(w)
        low[v] = min(low[v], low[w])
      elif w in on_stack:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      component = []
      while True:
        w = stack.pop()
        on_stack.discard(w)
        component.append(w)
        if w == v:
          break
      if len(component) > 1:
        out.append(sorted(component))

  for v in sorted(graph):
    if v not in index:
      visit(v)
  return out


def test_no_import_cycles():
  graph = {name: {m for m in _imports(path) if m in MODULES and m != name}
           for name, path in MODULES.items()}
  # A package's __init__ importing its own submodules is how packages export names, not a cycle.
  for name in graph:
    graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
  cycles = _cycles(graph)
  assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_walk_sees_a_cycle():
  assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
  assert not _cycles({"a": {"b"}, "b": set()})


@pytest.mark.parametrize("name", ["swaptalk_jax.cli", "swaptalk_jax.core.trainer",
                                  "swaptalk_jax.params_file", "swaptalk_jax.models.arcface"])
def test_walk_knows_the_modules(name):
  assert name in MODULES
