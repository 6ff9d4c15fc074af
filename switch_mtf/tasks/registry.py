"""Registering our tasks and mixtures, and looking them up by name.

Registration only records sources, preprocessors and metrics; nothing is read
until a dataset is requested, so importing `switch_mtf.tasks` stays cheap.
"""

import difflib
from typing import List, Sequence, Union

import seqio

TASKS: List[str] = []
MIXTURES: List[str] = []
# The embedded (offline) tasks, in the order tools/inspect_tasks.py shows them.
LOCAL_TASKS: List[str] = []


def add_task(name: str, local: bool = False, **task_kwargs) -> seqio.Task:
  """seqio.TaskRegistry.add, remembering the name as one of ours."""
  task = seqio.TaskRegistry.add(name, **task_kwargs)
  TASKS.append(name)
  if local:
    LOCAL_TASKS.append(name)
  return task


def add_mixture(name: str, tasks: Sequence) -> seqio.Mixture:
  """seqio.MixtureRegistry.add, remembering the name as one of ours."""
  mixture = seqio.MixtureRegistry.add(name, tasks)
  MIXTURES.append(name)
  return mixture


def get_task_or_mixture(name: str) -> Union[seqio.Task, seqio.Mixture]:
  """Looks a name up; an unknown one gets the closest of our names."""
  if name in seqio.MixtureRegistry.names():
    return seqio.MixtureRegistry.get(name)
  if name in seqio.TaskRegistry.names():
    return seqio.TaskRegistry.get(name)
  ours = TASKS + MIXTURES
  close = difflib.get_close_matches(name, ours, n=3, cutoff=0.5)
  hint = f" Did you mean {', '.join(close)}?" if close else ""
  raise ValueError(
      f"Unknown task or mixture {name!r}.{hint} switch-mtf registers (with "
      f"--module_import=switch_mtf.tasks): tasks {sorted(TASKS)}; mixtures "
      f"{sorted(MIXTURES)}. docs/tasks.md lists them with their sources.")
