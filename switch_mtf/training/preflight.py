"""Pre-flight checks of a training run, before its first step.

Mesh TF finds many configuration mistakes late or never: a layout rule that
names a mesh dimension the mesh does not have is silently ignored (the
experts are then replicated instead of split), a mesh larger than the devices
it is given runs on fewer devices, a top-2 MoE with one expert trains, an
empty split makes the input pipeline spin forever, and a gin binding in a
misspelled scope (`encodr/Switch.num_experts`) is never used. Each check here
returns problems as sentences that name the offending value and the fix;
`check_training_run` raises one PreflightError listing all of them.

The Switch layer validates its own arguments when gin builds it, which is
also before training; the checks here cover what no single layer sees.
"""

import dataclasses
import gzip
import json
import os
import re
import zlib
from typing import Any, List, Optional, Sequence, Tuple

import gin
import mesh_tensorflow as mtf
from mesh_tensorflow.transformer import moe
from mesh_tensorflow.transformer import transformer
import seqio
import tensorflow.compat.v1 as tf

from switch_mtf.layer import experts as experts_lib
from switch_mtf.layer import switch as switch_layer

# Mesh TF's default layout rules name these whether or not the mesh has them
# ("have no effect unless the names are in utils.run.mesh_shape").
OPTIONAL_MESH_DIMS = ("batch", "model", "ensemble")
# Tensor dimensions of expert layers that a layout may split.
EXPERT_DIMS = (experts_lib.EXPERTS, experts_lib.EXPERT_HIDDEN)
_MOE1D_GATINGS = ("top_2", "top_n", "switch", "ntlb", "switch_max",
                  "expert_selection")
_MOE1D_SWITCH_POLICIES = ("input_dropout", "input_jitter", "argmax", "sample")
_MOE1D_SECOND_POLICIES = ("all", "none", "threshold", "random")
_CPU_DEVICE = re.compile(r"^(?:/job:[^/]+/replica:\d+/task:\d+)?/?"
                         r"(?:device:)?cpu:(\d+)$", re.I)
_JOB = re.compile(r"^/job:([^/]+)")


class PreflightError(ValueError):
  """The run cannot start; the message lists every problem and its fix."""

  def __init__(self, problems: Sequence[str]):
    super().__init__(
        "The run was stopped before its first step (switch_mtf pre-flight "
        "checks):\n  - " + "\n  - ".join(problems))
    self.problems = list(problems)


@dataclasses.dataclass(frozen=True)
class ExpertLayer:
  path: str  # e.g. "decoder/block_000/layer_005"
  layer: Any  # switch_mtf Switch or Mesh TF MoE1D


def _shape_str(shape: mtf.Shape) -> str:
  return ",".join("%s:%d" % (d.name, d.size) for d in shape.dims) or "(empty)"


def rule_pairs(layout_rules: Any) -> Tuple[Tuple[str, str], ...]:
  """(tensor dim, mesh dim) pairs of any form utils.run accepts."""
  if isinstance(layout_rules, mtf.LayoutRules):
    return tuple(sorted(layout_rules._pairs))  # pylint: disable=protected-access
  if isinstance(layout_rules, str):
    rules = [r.split(":") for r in layout_rules.split(",") if r.strip()]
    if any(len(r) != 2 or not all(p.strip() for p in r) for r in rules):
      raise PreflightError(["utils.run.layout_rules=%r is not a comma-"
                            "separated list of '<tensor dim>:<mesh dim>'."
                            % layout_rules])
    return tuple((a.strip(), b.strip()) for a, b in rules)
  return tuple((str(a), str(b)) for a, b in layout_rules)


def mesh_problems(mesh_shape: mtf.Shape, mesh_devices: Optional[Sequence[str]],
                  num_cpu_devices: int) -> List[str]:
  """Mesh slices vs. the devices they are placed on (off TPU)."""
  found = [
      "mesh dimension %r has size %d in utils.run.mesh_shape %r; every "
      "dimension needs size >= 1." % (d.name, d.size, _shape_str(mesh_shape))
      for d in mesh_shape.dims if d.size < 1]
  if mesh_devices is None:
    return found  # Mesh TF places every slice on the default device.
  if len(mesh_devices) != mesh_shape.size:
    found.append(
        "utils.run.mesh_devices names %d device(s) but utils.run.mesh_shape "
        "%r has %d slices; give exactly one device per slice (e.g. "
        "switch_mtf.logical_cpu_devices.num_devices = %d) or change the mesh "
        "shape." % (len(mesh_devices), _shape_str(mesh_shape),
                    mesh_shape.size, mesh_shape.size))
  for device in mesh_devices:
    match = _CPU_DEVICE.match(device.strip())
    job = _JOB.match(device.strip())
    if job and job.group(1) != "localhost":
      found += _cluster_device_problems(device.strip())
      continue  # another task's: switch_mtf.cluster_devices checks devices
    if match and int(match.group(1)) >= num_cpu_devices:
      found.append(
          "mesh device %r does not exist: the session has %d CPU device(s), "
          "so TensorFlow would silently place that slice on cpu:0. Bind "
          "utils.run.mesh_devices = @switch_mtf.logical_cpu_devices() with "
          "num_devices = %d (gin/layouts/cpu-4_*.gin do)."
          % (device, num_cpu_devices, mesh_shape.size))
  return found


def _cluster_device_problems(device: str) -> List[str]:
  """A device of another task must be one of TF_CONFIG's cluster."""
  try:
    jobs = {job: len(tasks) for job, tasks in
            json.loads(os.environ.get("TF_CONFIG") or "{}")
            .get("cluster", {}).items()}
  except (ValueError, AttributeError, TypeError):
    jobs = {}
  spec = tf.DeviceSpec.from_string(device)
  task = spec.task or 0
  if task < jobs.get(spec.job, 0):
    return []
  return [
      "mesh device %r names task %d of job %r, which the cluster does not "
      "have (%s); bind utils.run.mesh_devices = "
      "@switch_mtf.cluster_devices() (gin/layouts/cluster-4_*.gin), which "
      "lists the cluster's own devices." % (
          device, task, spec.job,
          "TF_CONFIG has " + ", ".join("%d %s task(s)" % (n, j)
                                       for j, n in sorted(jobs.items()))
          if jobs else "TF_CONFIG is not set")]


def layout_problems(pairs: Sequence[Tuple[str, str]],
                    mesh_shape: mtf.Shape) -> List[str]:
  """Layout rules naming mesh dimensions that do not exist."""
  mesh_dims = [d.name for d in mesh_shape.dims]
  return [
      "layout rule '%s:%s' names mesh dimension %r, which utils.run."
      "mesh_shape %r does not have (its dimensions: %s), so Mesh TF would "
      "silently replicate %r; fix the rule's mesh dimension or add it to the "
      "mesh shape." % (tensor_dim, mesh_dim, mesh_dim, _shape_str(mesh_shape),
                       ", ".join(mesh_dims) or "none", tensor_dim)
      for tensor_dim, mesh_dim in pairs
      if mesh_dim not in mesh_dims and mesh_dim not in OPTIONAL_MESH_DIMS]


def model_expert_layers(model: Any, path: str = "") -> List[ExpertLayer]:
  """Switch and MoE1D layers of a built model (any nesting of stacks)."""
  stack = getattr(model, "layer_stack", None)
  if stack is not None:
    return [ExpertLayer("/".join(filter(None, (path, layer.name))), layer)
            for layer in stack.layers
            if isinstance(layer, (switch_layer.Switch, moe.MoE1D))]
  found = []
  for part in ("encoder", "decoder", "student", "teacher"):
    if getattr(model, part, None) is not None:
      found += model_expert_layers(getattr(model, part),
                                   "/".join(filter(None, (path, part))))
  return found


def experts_per_token(layer: Any) -> int:
  """k of top-k routing: 1 for Switch, 2 for Mesh TF's default top-2 MoE."""
  if isinstance(layer, moe.MoE1D):
    hparams = layer._hparams  # pylint: disable=protected-access
    return {"top_2": 2,
            "top_n": hparams.moe_top_n_num_experts_per_token,
            "ntlb": hparams.moe_ntlb_top_k}.get(hparams.moe_gating, 1)
  return 1


def _moe1d_problems(where: str, hparams: Any) -> List[str]:
  """MoE1D arguments Mesh TF accepts but cannot train with."""
  found = []
  if hparams.moe_gating not in _MOE1D_GATINGS:
    found.append("%s: MoE1D.moe_gating=%r is unknown; use one of %s."
                 % (where, hparams.moe_gating, ", ".join(_MOE1D_GATINGS)))
  if hparams.moe_num_experts < 1:
    found.append("%s: MoE1D.num_experts=%r must be >= 1."
                 % (where, hparams.moe_num_experts))
  if not hparams.moe_group_size >= 1:
    found.append("%s: MoE1D.group_size=%r must be >= 1 (the paper's code "
                 "uses 1024)." % (where, hparams.moe_group_size))
  for knob in ("capacity_factor_train", "capacity_factor_eval"):
    value = getattr(hparams, "moe_" + knob)
    if not value > 0:
      found.append("%s: MoE1D.%s=%r must be > 0 (the paper uses 1.0-2.0)."
                   % (where, knob, value))
  if hparams.moe_gating in ("switch", "switch_max"):
    for knob in ("switch_policy_train", "switch_policy_eval"):
      value = getattr(hparams, "moe_" + knob)
      if value not in _MOE1D_SWITCH_POLICIES:
        found.append("%s: MoE1D.%s=%r is unknown; use one of %s."
                     % (where, knob, value, ", ".join(_MOE1D_SWITCH_POLICIES)))
  if hparams.moe_gating == "top_2":
    for knob in ("second_policy_train", "second_policy_eval"):
      value = getattr(hparams, "moe_" + knob)
      if value not in _MOE1D_SECOND_POLICIES:
        found.append("%s: MoE1D.%s=%r is unknown; use one of %s."
                     % (where, knob, value, ", ".join(_MOE1D_SECOND_POLICIES)))
  return found


def expert_layer_problems(layers: Sequence[ExpertLayer], mesh_shape: mtf.Shape,
                          pairs: Sequence[Tuple[str, str]]) -> List[str]:
  """Top-k vs. experts, MoE1D arguments, even splits over the mesh."""
  rules = mtf.LayoutRules(list(pairs))
  found = []
  for item in layers:
    layer = item.layer
    if isinstance(layer, moe.MoE1D):
      hparams = layer._hparams  # pylint: disable=protected-access
      found += _moe1d_problems(item.path, hparams)
      num_experts, hidden_size = (hparams.moe_num_experts,
                                  hparams.moe_hidden_size)
    else:
      num_experts, hidden_size = layer.num_experts, layer.hidden_size
    k = experts_per_token(layer)
    if num_experts >= 1 and k > num_experts:
      found.append(
          "%s: each token goes to its top %d experts but the layer has only "
          "%d; use num_experts >= %d (or MoE1D.moe_gating='switch' for top-1)."
          % (item.path, k, num_experts, k))
    for dim_name, size in zip(EXPERT_DIMS, (num_experts, hidden_size)):
      axis = rules.tensor_dimension_to_mesh_axis(
          mtf.Dimension(dim_name, size), mesh_shape)
      if axis is not None and size >= 1 and size % mesh_shape.dims[axis].size:
        shards = mesh_shape.dims[axis].size
        found.append(
            "%s: %s=%d is not divisible by mesh dimension %r (size %d) that "
            "the layout splits %r over; use a multiple of %d or change the "
            "layout rule." % (item.path, dim_name, size,
                              mesh_shape.dims[axis].name, shards, dim_name,
                              shards))
  return found


def first_example(task: seqio.Task, sequence_length: Any,
                  split: str) -> None:
  """Reads one preprocessed example of `task`; raises what the read raises."""
  with tf.Graph().as_default():
    dataset = task.get_dataset(sequence_length, split=split, use_cached=False,
                               shuffle=False, num_epochs=1).take(1)
    example = tf.data.make_one_shot_iterator(dataset).get_next()
    with tf.Session() as session:
      try:
        session.run(example)
      except tf.errors.OutOfRangeError:
        raise ValueError(
            "its %r split yields no examples: training would wait forever "
            "for the first batch" % split) from None


def gzip_problems(paths: Sequence[str]) -> List[str]:
  """Damaged gzip files (truncated, corrupt), each read to its end.

  TensorFlow's TextLineDataset stops silently at the damage of a truncated
  gzip file, so training would run on part of the data without a word.
  """
  found = []
  for path in paths:
    try:
      with gzip.open(path, "rb") as f:
        while f.read(1 << 20):
          pass
    except (EOFError, OSError, zlib.error) as e:
      found.append(
          "%s is a damaged gzip file (%s: %s); TensorFlow would read it only "
          "up to the damage, without an error. Restore the file (the shipped "
          "ones come with the package: reinstall it)."
          % (path, type(e).__name__, e))
  return found


def embedded_data_files(task_name: str, split: str) -> List[str]:
  """The existing local files an embedded task reads for `split`."""
  # pylint: disable=g-import-not-at-top
  from switch_mtf.tasks import local_superglue
  from switch_mtf.tasks import paths as task_paths
  from switch_mtf.tasks import readers
  from switch_mtf.tasks import wiki
  # pylint: enable=g-import-not-at-top
  if task_name.startswith("wiki_") and split in wiki.SPLIT_FILES:
    candidates = [os.path.join(task_paths.WIKI_DIR, wiki.SPLIT_FILES[split])]
  elif task_name in local_superglue.GLUE_STYLE_TASKS or task_name in (
      local_superglue.WSC_TRAIN_TASK, local_superglue.WSC_EVAL_TASK):
    task_dir = local_superglue.GLUE_STYLE_TASKS.get(
        task_name, (None, local_superglue.WSC_DIR))[1]
    stem = os.path.join(readers.local_superglue_dir(), task_dir,
                        readers.SPLIT_FILES.get(split, split))
    candidates = [stem + ".jsonl", stem + ".jsonl.gz"]
  else:
    candidates = []
  return [path for path in candidates if os.path.isfile(path)]


def source_problems(task: seqio.Task, split: str) -> List[str]:
  """What a source that checks its own data (`preflight_problems`, e.g. the
  own corpus, which reads every file) finds wrong with `split`."""
  check = getattr(task.source, "preflight_problems", None)
  return ["task %r: %s" % (task.name, problem)
          for problem in (check(split) if check else [])]


def data_problems(mixture_or_task_name: str, sequence_length: Any,
                  split: str) -> List[str]:
  """The task or mixture exists and each trained task yields an example."""
  # The lookup of switch_mtf.tasks suggests close names for a typo.
  from switch_mtf.tasks import registry  # pylint: disable=g-import-not-at-top
  try:
    provider = registry.get_task_or_mixture(mixture_or_task_name)
  except ValueError as e:
    return [str(e)]
  if isinstance(provider, seqio.Mixture):
    try:
      tasks = [t for t in provider.tasks if provider.get_rate(t) > 0]
    except Exception as e:  # pylint: disable=broad-except
      # Size-based rates (mC4's) read every task's split sizes.
      return ["mixture %r: its sampling rates cannot be computed, they read "
              "each task's number of training examples (%s: %s); check that "
              "its data is prepared where the run looks (e.g. "
              "--t5_tfds_data_dir)." % (mixture_or_task_name,
                                        type(e).__name__,
                                        str(e).splitlines()[0])]
  else:
    tasks = [provider]
  found = []
  for task in tasks:
    damaged = gzip_problems([p for p in embedded_data_files(task.name, split)
                             if p.endswith(".gz")])
    damaged += source_problems(task, split)
    if damaged:
      found += damaged
      continue
    try:
      first_example(task, sequence_length, split)
    except Exception as e:  # pylint: disable=broad-except
      # Readers raise many types; the message (file, line, fix) is the point.
      found.append("task %r (of %r): reading the first %r example failed: "
                   "%s: %s" % (task.name, mixture_or_task_name, split,
                               type(e).__name__, e))
  return found


def _is_our_layer(selector: str) -> bool:
  # pylint: disable-next=protected-access
  configurable = gin.config._REGISTRY.get_match(selector)
  wrapped = getattr(configurable, "wrapped", None)
  return (isinstance(wrapped, type)
          and issubclass(wrapped, transformer.TransformerLayer)
          and wrapped.__module__.startswith("switch_mtf."))


def unused_binding_problems() -> List[str]:
  """Scoped bindings of our layers that no layer of the model used.

  gin rejects an unknown parameter name, but accepts any scope: a binding in
  a misspelled scope (`encodr/Switch.num_experts`) is silently ignored.
  Layers are built with the model, so by now every scope that configures a
  layer has been used. Unscoped bindings are left alone: a model file
  included by one without Switch layers (gin/bench/moe_top2_tiny.gin)
  legitimately binds Switch parameters that nothing uses.
  """
  # pylint: disable=protected-access
  bound = gin.config._CONFIG
  used_scopes = {}
  for scope, selector in gin.config._OPERATIVE_CONFIG:
    used_scopes.setdefault(selector, set()).add(scope)
  # pylint: enable=protected-access
  found = []
  for (scope, selector), params in sorted(bound.items()):
    if not scope or not params or not _is_our_layer(selector):
      continue
    used = used_scopes.get(selector, set())
    if not any(s == scope or s.startswith(scope + "/") for s in used):
      name = selector.rpartition(".")[2]
      found.append(
          "gin binds %s/%s.%s but no %s layer was built in scope %r (the "
          "model built it in %s); fix the scope or remove the binding."
          % (scope, name, ", ".join(sorted(params)), name, scope,
             ", ".join(repr(s) for s in sorted(used)) or "no scope"))
  return found


def check_training_run(*, mesh_shape: Any, layout_rules: Any,
                       mesh_devices: Optional[Sequence[str]],
                       num_cpu_devices: int, model: Any,
                       mixture_or_task_name: Optional[str],
                       sequence_length: Any, split: str) -> None:
  """Runs every check; raises PreflightError listing all problems found.

  Args:
    mesh_shape, layout_rules, mesh_devices: as `utils.run` receives them.
    num_cpu_devices: CPU devices of the training session's config.
    model: the model `utils.build_model` builds from the same gin config.
    mixture_or_task_name: what the train dataset reads; None skips the data
      checks (a dataset function other than mesh_train_dataset_fn).
    sequence_length, split: as the train dataset is read.
  """
  mesh_shape = mtf.convert_to_shape(mesh_shape)
  pairs = rule_pairs(layout_rules)
  found = mesh_problems(mesh_shape, mesh_devices, num_cpu_devices)
  found += layout_problems(pairs, mesh_shape)
  found += expert_layer_problems(model_expert_layers(model), mesh_shape, pairs)
  if mixture_or_task_name is not None:
    found += data_problems(mixture_or_task_name, sequence_length, split)
  found += unused_binding_problems()
  if found:
    raise PreflightError(found)
