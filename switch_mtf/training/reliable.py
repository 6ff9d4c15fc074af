"""`reliable_train_model`: Mesh TF's `train_model`, checked and restartable.

The t5 CLI (`t5_mesh_transformer` / `switch_mtf_transformer`) is used as is;
gin swaps in this function through the one hook `utils.run` offers for
training, `utils.run.train_model_fn` (gin/runs/reliable.gin). It is called
after gin is parsed and the Estimator is built, and before anything is
trained: the place for checks that need the whole configuration. It then
runs Mesh TF's own `train_model` with:

- pre-flight checks (preflight.py): mesh and devices, layout rules, expert
  layers, the task or mixture and one example of each of its tasks, gin
  bindings in scopes no layer uses;
- the checkpoint to resume from verified (checkpoint_guard.py), falling back
  to the previous complete one only when asked;
- a stop at non-finite loss or router probabilities, and no checkpoint with
  non-finite weights (numerics.py);
- the same result whether or not the run was killed and rerun: seeded data
  replayed past what the checkpoint has seen (`skip_seen_data`), seeded and
  replayed random ops (random_streams.py), training continuing from exactly
  what was saved (checkpoint_guard.py), and resource variables.

Resource variables: with TF1 reference variables, which `utils.run` gets by
default, a variable's read in the forward pass aliases its buffer, so the
backward pass of the same `session.run` can read a weight its update has
already overwritten. Which one wins depends on thread scheduling; on a
2-core CPU two identical runs diverged from step 3. A resource variable's
read is a snapshot, and Mesh TF's variables are created inside `train()`,
so enabling resource variables for that call is enough.
"""

import contextlib
import functools
import inspect
from typing import Any, Callable, Iterator, List, Optional, Tuple

from absl import logging
import gin
from mesh_tensorflow.transformer import utils as mtf_utils
import tensorflow.compat.v1 as tf
from tensorflow_estimator.python.estimator import run_config

from switch_mtf.cli import gin_config
from switch_mtf.training import checkpoint_guard
from switch_mtf.training import execution_order
from switch_mtf.training import numerics
from switch_mtf.training import preflight
from switch_mtf.training import random_streams


class _WithHooks:
  """The Estimator, with our hooks and saving listeners added to train()."""

  def __init__(self, estimator, hooks: List[tf.train.SessionRunHook],
               saving_listeners: List[tf.train.CheckpointSaverListener]):
    self._estimator = estimator
    self._hooks = hooks
    self._saving_listeners = saving_listeners

  def train(self, input_fn, max_steps=None, hooks=None, **kwargs):
    listeners = list(kwargs.pop("saving_listeners", None) or [])
    return self._estimator.train(
        input_fn=input_fn, max_steps=max_steps,
        hooks=list(hooks or []) + self._hooks,
        saving_listeners=listeners + self._saving_listeners, **kwargs)

  def __getattr__(self, name: str) -> Any:
    return getattr(self._estimator, name)


@contextlib.contextmanager
def checkpoints_without_graph() -> Iterator[None]:
  """Saver hooks built inside write the lowered graph once, not four times.

  Mesh TF's model_fn builds its own CheckpointSaverHook. Besides the graph
  its summary writer puts in the events file (what TensorBoard shows), it
  writes the whole lowered graph as graph.pbtxt, a second copy into the
  events file and a .meta with every checkpoint; with this pinned protobuf's
  pure-Python serialisation that takes, for Switch-Tiny on 2 CPU cores,
  about 25 s before the first step and 5 s per checkpoint, more than the
  training itself. Nothing restores from those copies. The hook class is
  swapped for a subclass while training is set up, so Mesh TF's code and
  the Estimator's isinstance checks see the class they expect.
  """
  original = tf.train.CheckpointSaverHook

  class _SaverHookWithoutGraph(original):
    """CheckpointSaverHook(save_graph_def=False) that also skips the graph
    copy its first save adds to the events file."""

    def __init__(self, *args, save_graph_def: bool = False, **kwargs):
      super().__init__(*args, save_graph_def=save_graph_def, **kwargs)

    def after_create_session(self, session, coord):
      if self._save_graph_def:
        super().after_create_session(session, coord)
        return
      # The base method without its graph writing: the checkpoint of the
      # starting step, and the save timer started from it.
      step = session.run(self._global_step_tensor)
      self._save(session, step)
      self._timer.update_last_triggered_step(step)

  tf.train.CheckpointSaverHook = _SaverHookWithoutGraph
  try:
    yield
  finally:
    tf.train.CheckpointSaverHook = original


def _seeded(dataset_fn: Callable[..., Any], seed: int) -> Callable[..., Any]:
  """dataset_fn with `seed` (shuffle and preprocessing), when it takes one."""
  if "seed" in inspect.signature(dataset_fn).parameters:
    return functools.partial(dataset_fn, seed=seed)
  logging.warning("%s takes no seed: its data order is not reproducible.",
                  getattr(dataset_fn, "__name__", dataset_fn))
  return dataset_fn


def _bound(parameter: str) -> Tuple[bool, Any]:
  """(whether gin binds `parameter`, its value)."""
  try:
    return True, gin.query_parameter(parameter)
  except ValueError:
    return False, None


def resolve_seed(seed: Optional[int]) -> Optional[int]:
  """The run's seed: ours if bound, else the data seed gin gives T5's
  `mesh_train_dataset_fn`, else `seed` (default 0).

  Our seed also seeds the data order, so a data seed binding alone keeps its
  meaning; two different bindings are refused rather than one ignored.
  """
  ours_bound, _ = _bound("switch_mtf.reliable_train_model.seed")
  data_bound, data_seed = _bound("mesh_train_dataset_fn.seed")
  if not data_bound or data_seed is None:
    return seed
  if not ours_bound:
    return data_seed
  if data_seed != seed:
    raise ValueError(
        "reliable_train_model.seed = %r and mesh_train_dataset_fn.seed = %r "
        "disagree; the guarded run seeds the data order with its own seed. "
        "Bind one of them (or both to the same value)." % (seed, data_seed))
  return seed


def _mixture_or_task_name(train_dataset_fn: Callable[..., Any]
                          ) -> Optional[str]:
  """What T5's mesh_train_dataset_fn reads, or None for other dataset fns."""
  if getattr(train_dataset_fn, "__name__", "") != "mesh_train_dataset_fn":
    return None
  value = gin.query_parameter("mesh_train_dataset_fn.mixture_or_task_name")
  if isinstance(value, gin.config.ConfigurableReference) and value.evaluate:
    value = value.scoped_configurable_fn()  # e.g. %MIXTURE_NAME
  return value


def _num_cpu_devices(estimator) -> int:
  config = (estimator.config.session_config
            or run_config.get_default_session_config())
  return config.device_count.get("CPU", 1)


def check_before_training(estimator, vocabulary, sequence_length,
                          dataset_split: str,
                          train_dataset_fn: Callable[..., Any],
                          check_data: bool = True) -> None:
  """Pre-flight checks on the configuration `utils.run` is training with."""
  mesh_shape = gin_config.run_arg("mesh_shape")
  layout_rules = gin_config.run_arg("layout_rules")
  model = mtf_utils.build_model(
      model_type=gin_config.run_arg("model_type"),
      input_vocab_size=mtf_utils.inputs_vocabulary(vocabulary).vocab_size,
      output_vocab_size=mtf_utils.targets_vocabulary(vocabulary).vocab_size,
      layout_rules=layout_rules, mesh_shape=mesh_shape)
  preflight.check_training_run(
      mesh_shape=mesh_shape, layout_rules=layout_rules,
      mesh_devices=gin_config.run_arg("mesh_devices"),
      num_cpu_devices=_num_cpu_devices(estimator), model=model,
      mixture_or_task_name=(_mixture_or_task_name(train_dataset_fn)
                            if check_data else None),
      sequence_length=sequence_length, split=dataset_split)


@gin.configurable(module="switch_mtf")
def reliable_train_model(estimator, vocabulary, sequence_length, batch_size,
                         train_dataset_fn, train_steps, ensemble_inputs,
                         dataset_split: str = "train",
                         skip_seen_data: bool = False,
                         seen_data_init_step: int = 0,
                         checkpoint_input_pipeline: bool = False,
                         seed: Optional[int] = 0,
                         check_data: bool = True,
                         fall_back_to_previous_checkpoint: bool = False,
                         max_consecutive_nonfinite_steps: int = 1,
                         save_graph: bool = False) -> None:
  """Same contract as `mesh_tensorflow.transformer.utils.train_model`.

  Args:
    estimator, vocabulary, sequence_length, batch_size, train_dataset_fn,
      train_steps, ensemble_inputs, dataset_split, checkpoint_input_pipeline:
      as in `utils.train_model`; `utils.run` passes them.
    seen_data_init_step: as in `utils.train_model`, for model dirs of runs
      started without this function; otherwise the step the run started
      from is read from the model dir (checkpoint_guard.RUN_START_FILE), so
      fine-tuning from `utils.run.init_checkpoint` resumes right unasked.
    skip_seen_data: as in `utils.train_model`; runs/reliable.gin turns it
      on (`utils.run.skip_seen_data`, which `utils.run` passes here), so that
      a resumed run continues the data where its checkpoint left it.
    seed: seed of the data order, the weight init and every random op;
      None keeps TensorFlow's unseeded (irreproducible) behaviour. Unbound,
      it is `mesh_train_dataset_fn.seed` when gin binds that (resolve_seed).
    check_data: read one example of every trained task before training.
    fall_back_to_previous_checkpoint: if the checkpoint to resume from is
      damaged, resume from the newest complete earlier one (the env variable
      SWITCH_MTF_CHECKPOINT_FALLBACK=1 does the same); off, the run stops.
    max_consecutive_nonfinite_steps: stop after this many steps in a row
      with a non-finite loss or router probabilities.
    save_graph: write every copy of the lowered graph Mesh TF writes
      (graph.pbtxt, a .meta per checkpoint, two in the events file); off,
      only the one TensorBoard shows, since the rest costs more than
      training a small model (checkpoints_without_graph).
  """
  model_dir = estimator.model_dir
  seed = resolve_seed(seed)
  check_before_training(estimator, vocabulary, sequence_length, dataset_split,
                        train_dataset_fn, check_data)
  resumed_from = checkpoint_guard.resume_point(
      model_dir, checkpoint_guard.fall_back_requested(
          fall_back_to_previous_checkpoint))
  listeners = [numerics.FiniteCheckpointListener(model_dir)]
  if resumed_from is None:
    listeners.append(checkpoint_guard.RecordRunStart(model_dir))
    run_start = None
  else:
    # Steps taken since the run started: skipped in the data, replayed in
    # the random streams. Recorded by the first run in this model dir.
    run_start = checkpoint_guard.run_start_step(model_dir)
    run_start = seen_data_init_step if run_start is None else run_start
    if not skip_seen_data:
      logging.warning("Resuming from step %d without utils.run."
                      "skip_seen_data: the data starts over from its first "
                      "batch.", resumed_from)
  listeners.append(checkpoint_guard.ContinueFromSavedState())
  hooks = [numerics.NonFiniteGuard(model_dir,
                                   max_consecutive_nonfinite_steps),
           execution_order.FixedExecutionOrderHook()]
  if seed is not None:
    train_dataset_fn = _seeded(train_dataset_fn, seed)
    hooks.append(random_streams.ReproducibleRandomHook(
        seed, replay_from=run_start))
  logging.info(
      "Guarded training (switch_mtf.reliable_train_model, runs/reliable.gin):"
      " pre-flight checks passed; seed %s; %s.", seed,
      "starting in a new model dir" if resumed_from is None else
      "resuming from step %d, the data %s" % (
          resumed_from, "continued past the %d steps seen since step %d"
          % (resumed_from - run_start, run_start) if skip_seen_data
          else "starting over"))
  was_enabled = tf.resource_variables_enabled()
  tf.enable_resource_variables()
  try:
    with (contextlib.nullcontext() if save_graph
          else checkpoints_without_graph()):
      mtf_utils.train_model(
          _WithHooks(estimator, hooks, listeners), vocabulary,
          sequence_length, batch_size, train_dataset_fn, train_steps,
          ensemble_inputs, dataset_split=dataset_split,
          skip_seen_data=skip_seen_data,
          seen_data_init_step=(seen_data_init_step if run_start is None
                               else run_start),
          checkpoint_input_pipeline=checkpoint_input_pipeline)
  finally:
    if not was_enabled:
      tf.disable_resource_variables()
