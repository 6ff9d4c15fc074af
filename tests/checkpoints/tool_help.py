"""Loads a tools/ script as a module and checks that --help documents it."""

import argparse
import importlib.util
import os

from tests import repo_paths


def load_tool(name: str):
  """tools/<name>.py as a module (tools/ is not a package)."""
  path = os.path.join(repo_paths.REPO_DIR, "tools", name + ".py")
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def undocumented(parser: argparse.ArgumentParser):
  """(parser prog, argument) of every argument whose help is missing or
  does not show it, in the parser and its subcommands."""
  # pylint: disable=protected-access
  problems = []
  help_text = parser.format_help()
  for action in parser._actions:
    if isinstance(action, argparse._SubParsersAction):
      for mode, subparser in action.choices.items():
        if mode not in help_text:
          problems.append((parser.prog, mode))
        problems += undocumented(subparser)
      continue
    if action.dest == "help":
      continue
    names = action.option_strings or [action.dest]
    if not action.help or not any(name in help_text for name in names):
      problems.append((parser.prog, names[0]))
  return problems
