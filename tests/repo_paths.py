"""The repository's folders, and its tools/*.py loaded as modules for tests."""

import importlib.util
import os
import types

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS_DIR = os.path.join(REPO_DIR, "tools")


def load_tool(name: str) -> types.ModuleType:
  """Imports tools/<name>.py, so a test calls its `main` as the shell would."""
  spec = importlib.util.spec_from_file_location(
      "tool_" + name, os.path.join(TOOLS_DIR, name + ".py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module
