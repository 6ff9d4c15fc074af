"""Moving tokens to their expert slots and expert outputs back to tokens.

Two interchangeable implementations with identical outputs:

- "einsum": the one-hot [O, G, S, experts, capacity] dispatch and combine
  tensors of the official code; a gather by matrix multiply, which is what
  TPUs are good at.
- "gather": index ops instead (a segment sum into slots and a batched gather
  back), so no [G, S, E, C] tensor is ever built; cheaper on CPU/GPU meshes,
  where the one-hot einsums cost O(tokens * S * cf * d_model).

"auto" (the layer's default) picks einsum when the graph is being built for
a TPU (inside a TPU computation, as TPUEstimator builds T5's model) and
gather everywhere else, so CPU and GPU users get the fast path unasked.

Both return expert inputs as [O, experts_unsplit, G, C, d_model] (groups
still split like the batch), ready for the all-to-all in experts.py. For
token-choice routings (router.Routing) every slot holds at most one token
and the kept token's gate multiplies its expert output once, so the two
modes agree exactly, not just closely. For experts choosing tokens
(expert_choice.ExpertChoiceRouting) the gather mode reads each slot's token
by index and sums weighted slots back into their tokens; a token picked by
three or more experts may then differ from the einsum's sum in the last bit
(float addition order).
"""

import contextlib
from typing import Iterator, Union

import mesh_tensorflow as mtf
import tensorflow.compat.v1 as tf
from tensorflow.python.tpu import tpu_function
from tensorflow.python.tpu import tpu_replication

from switch_mtf.layer import expert_choice
from switch_mtf.layer import router as router_lib

EINSUM = "einsum"
GATHER = "gather"
AUTO = "auto"
MODES = (AUTO, EINSUM, GATHER)
_assume_tpu = []  # non-empty inside assume_tpu()


def check_mode(mode: str) -> str:
  """Returns `mode` or raises a ValueError naming the choices."""
  if mode not in MODES:
    raise ValueError(
        "Switch.dispatch_mode=%r is not known; use %r (einsum on TPU, gather "
        "elsewhere), %r (one-hot einsums, the official TPU-friendly code) or "
        "%r (index ops, no [G,S,E,C] tensors; for CPU/GPU meshes)." % (
            mode, AUTO, EINSUM, GATHER))
  return mode


def building_for_tpu() -> bool:
  """Whether ops created now go into a TPU computation.

  TPUEstimator calls the model function inside a TPU shard context and a
  TPUReplicateContext; CPU/GPU graphs (Estimator, our bench and tests) are
  built in neither. Inside assume_tpu(), always true.
  """
  if _assume_tpu or tpu_function.get_tpu_context().number_of_shards is not None:
    return True
  graph = tf.get_default_graph()
  while graph is not None:
    context = graph._get_control_flow_context()  # pylint: disable=protected-access
    while context is not None:
      if isinstance(context, tpu_replication.TPUReplicateContext):
        return True
      context = context.outer_context
    graph = getattr(graph, "outer_graph", None)
  return False


@contextlib.contextmanager
def assume_tpu() -> Iterator[None]:
  """Builds "auto" layers as for a TPU, e.g. to count a TPU model's FLOPs."""
  _assume_tpu.append(True)
  try:
    yield
  finally:
    _assume_tpu.pop()


def resolve_mode(mode: str) -> str:
  """The concrete mode ("einsum" or "gather") that `mode` runs as here."""
  if check_mode(mode) != AUTO:
    return mode
  return EINSUM if building_for_tpu() else GATHER


class EinsumDispatcher:
  """Dispatch and combine by one-hot einsums, as the official code does.

  dispatch and combine tensors hold one 1.0 (combine: the weight) per
  (token, slot) pair: [O, G, S, E, C] for tokens choosing experts,
  [O, G, E, C, S] for experts choosing tokens; einsum reads either.
  """

  def __init__(self, dispatch_tensor: mtf.Tensor, combine_tensor: mtf.Tensor,
               experts_dim: mtf.Dimension, capacity_dim: mtf.Dimension,
               group_dim: mtf.Dimension):
    self._dispatch = dispatch_tensor
    self._combine = combine_tensor
    self._slot_dims = [experts_dim, capacity_dim]
    self._group_dim = group_dim

  def dispatch(self, inputs: mtf.Tensor) -> mtf.Tensor:
    """[O, G, S, M] tokens -> [O, experts_unsplit, G, C, M] expert slots."""
    outer_dim, groups_dim, _, model_dim = inputs.shape.dims
    experts_dim, capacity_dim = self._slot_dims
    return mtf.einsum(
        [inputs, self._dispatch],
        mtf.Shape([outer_dim, experts_dim, groups_dim, capacity_dim,
                   model_dim]))

  def combine(self, expert_outputs: mtf.Tensor) -> mtf.Tensor:
    """[O, experts_unsplit, G, C, M] -> [O, G, S, M], weighted and summed."""
    outer_dim, _, groups_dim, _, model_dim = expert_outputs.shape.dims
    return mtf.einsum(
        [expert_outputs, self._combine],
        mtf.Shape([outer_dim, groups_dim, self._group_dim, model_dim]))


def _token_choice_einsum(routing: router_lib.Routing,
                         dtype: tf.DType) -> EinsumDispatcher:
  """Mesh TF's [O, G, S, E, C] tensors: kept tokens, gate-weighted."""
  slot_one_hot = (
      mtf.one_hot(routing.expert_index, routing.experts_dim,
                  dtype=tf.float32)
      * mtf.one_hot(mtf.to_int32(routing.position_in_expert),
                    routing.capacity_dim, dtype=tf.float32))
  return EinsumDispatcher(
      mtf.cast(slot_one_hot * routing.kept, dtype),
      mtf.cast(slot_one_hot * routing.gate, dtype), routing.experts_dim,
      routing.capacity_dim, routing.kept.shape.dims[-1])


def _expert_choice_einsum(routing: expert_choice.ExpertChoiceRouting,
                          dtype: tf.DType) -> EinsumDispatcher:
  """Mesh TF's expert_selection [O, G, E, C, S] tensors."""
  slot_one_hot = mtf.one_hot(routing.slot_token, routing.group_dim,
                             dtype=tf.float32)
  return EinsumDispatcher(
      mtf.cast(slot_one_hot, dtype),
      mtf.cast(slot_one_hot * routing.slot_weight, dtype),
      routing.experts_dim, routing.capacity_dim, routing.group_dim)


class GatherDispatcher:
  """Dispatch and combine with index ops; no one-hot [G, S, E, C] tensors.

  Each token gets one flat slot index, expert * C + position; dropped and
  padding tokens point at a trash slot, which dispatch skips and combine
  reads as zeros. Dispatch and combine are each other's adjoint, which
  gives both their gradients.
  """

  def __init__(self, routing: router_lib.Routing, dtype: tf.DType):
    num_slots = routing.experts_dim.size * routing.capacity_dim.size
    slot = (mtf.to_float(routing.expert_index) * routing.capacity_dim.size
            + routing.position_in_expert)
    # Float arithmetic is exact here: slot counts are far below 2**24.
    self._slot = mtf.to_int32(slot * routing.kept
                              + (1.0 - routing.kept) * num_slots)
    self._gate = mtf.cast(routing.gate, dtype)
    self._routing = routing

  def dispatch(self, inputs: mtf.Tensor) -> mtf.Tensor:
    """[O, G, S, M] tokens -> [O, experts_unsplit, G, C, M] expert slots."""
    outer_dim, groups_dim, _, model_dim = inputs.shape.dims
    slots_shape = mtf.Shape([outer_dim, self._routing.experts_dim, groups_dim,
                             self._routing.capacity_dim, model_dim])
    return _to_slots(inputs, self._slot, slots_shape)

  def combine(self, expert_outputs: mtf.Tensor) -> mtf.Tensor:
    """[O, experts_unsplit, G, C, M] -> [O, G, S, M], gate-weighted."""
    outer_dim, _, groups_dim, _, model_dim = expert_outputs.shape.dims
    group_dim = self._slot.shape.dims[-1]
    tokens_shape = mtf.Shape([outer_dim, groups_dim, group_dim, model_dim])
    return _from_slots(expert_outputs, self._slot, tokens_shape) * self._gate


class ExpertChoiceGatherDispatcher:
  """Experts choosing tokens, by index: gather into slots, sum back.

  The transpose of GatherDispatcher: there each token names its slot, here
  each slot names its token. Dispatch gathers and combine segment-sums;
  each is the other's adjoint, which gives both their gradients.
  """

  def __init__(self, routing: expert_choice.ExpertChoiceRouting,
               dtype: tf.DType):
    self._weight = mtf.cast(routing.slot_weight, dtype)
    self._routing = routing

  def dispatch(self, inputs: mtf.Tensor) -> mtf.Tensor:
    """[O, G, S, M] tokens -> [O, experts_unsplit, G, C, M] expert slots."""
    outer_dim, groups_dim, _, model_dim = inputs.shape.dims
    slots_shape = mtf.Shape([outer_dim, self._routing.experts_dim, groups_dim,
                             self._routing.capacity_dim, model_dim])
    return _gather_tokens(inputs, self._routing.slot_token, slots_shape)

  def combine(self, expert_outputs: mtf.Tensor) -> mtf.Tensor:
    """[O, experts_unsplit, G, C, M] -> [O, G, S, M], weighted and summed."""
    outer_dim, _, groups_dim, _, model_dim = expert_outputs.shape.dims
    tokens_shape = mtf.Shape([outer_dim, groups_dim, self._routing.group_dim,
                              model_dim])
    weighted = mtf.multiply(expert_outputs, self._weight,
                            output_shape=expert_outputs.shape)
    return _sum_slots(weighted, self._routing.slot_token, tokens_shape)


AnyRouting = Union[router_lib.Routing, expert_choice.ExpertChoiceRouting]


def make_dispatcher(mode: str, routing: AnyRouting, dtype: tf.DType):
  """Returns the dispatcher of a concrete `mode` for `routing` in `dtype`."""
  einsum = resolve_mode(mode) == EINSUM
  if isinstance(routing, expert_choice.ExpertChoiceRouting):
    return (_expert_choice_einsum if einsum
            else ExpertChoiceGatherDispatcher)(routing, dtype)
  return (_token_choice_einsum if einsum else GatherDispatcher)(routing, dtype)


def _splittable(tokens_shape: mtf.Shape):
  """Outer batch, groups and d_model may be split; group and slots not."""
  outer_dim, groups_dim, _, model_dim = tokens_shape.dims
  return [outer_dim, groups_dim, model_dim]


def _to_slots(tokens: mtf.Tensor, slot: mtf.Tensor,
              slots_shape: mtf.Shape) -> mtf.Tensor:
  """Segment-sums tokens [O,G,S,M] into slots [O,E,G,C,M] (one per slot).

  Segment ids already follow the [O, E, G, C] slot order, so the sum lands
  in place (no transpose, no slicing); trash tokens get id -1, which the
  sum skips.
  """
  num_experts, capacity = slots_shape.dims[1].size, slots_shape.dims[3].size

  def tf_fn(tokens_slice, slot_slice):
    outer, groups, _, model = tokens_slice.shape.as_list()
    ids = _flat_slot_ids(slot_slice, num_experts, capacity, trash=-1)
    summed = tf.math.unsorted_segment_sum(
        tf.reshape(tokens_slice, [-1, model]), tf.reshape(ids, [-1]),
        num_segments=outer * num_experts * groups * capacity)
    return tf.reshape(summed, [outer, num_experts, groups, capacity, model])

  def grad_fn(op, dy):
    return [_from_slots(dy, op.inputs[1], op.inputs[0].shape), None]

  return mtf.slicewise(tf_fn, [tokens, slot], output_shape=slots_shape,
                       output_dtype=tokens.dtype,
                       splittable_dims=_splittable(tokens.shape),
                       grad_function=grad_fn, name="switch_to_slots")


def _from_slots(slots: mtf.Tensor, slot: mtf.Tensor,
                tokens_shape: mtf.Shape) -> mtf.Tensor:
  """Gathers each token's slot [O,E,G,C,M] -> [O,G,S,M]; trash reads 0.

  Slots are read in their own [O, E, G, C] order (no transpose); one zero
  row appended after the last slot serves every trash token.
  """

  def tf_fn(slots_slice, slot_slice):
    outer, num_experts, groups, capacity, model = (
        slots_slice.shape.as_list())
    num_slots = outer * num_experts * groups * capacity
    flat = tf.pad(tf.reshape(slots_slice, [num_slots, model]),
                  [[0, 1], [0, 0]])
    ids = _flat_slot_ids(slot_slice, num_experts, capacity, trash=num_slots)
    return tf.reshape(tf.gather(flat, tf.reshape(ids, [-1])),
                      slot_slice.shape.as_list() + [model])

  def grad_fn(op, dy):
    return [_to_slots(dy, op.inputs[1], op.inputs[0].shape), None]

  return mtf.slicewise(tf_fn, [slots, slot], output_shape=tokens_shape,
                       output_dtype=slots.dtype,
                       splittable_dims=_splittable(tokens_shape),
                       grad_function=grad_fn, name="switch_from_slots")


def _flat_slot_ids(slot_slice: tf.Tensor, num_experts: int, capacity: int,
                   trash: int) -> tf.Tensor:
  """Per-group slots (expert * C + position) -> ids into a flat [O,E,G,C].

  Tokens without a slot (index E * C: dropped or padding) get `trash`.
  """
  outer, groups, _ = slot_slice.shape.as_list()
  outer_index = tf.reshape(tf.range(outer), [outer, 1, 1])
  group_index = tf.reshape(tf.range(groups), [1, groups, 1])
  ids = ((outer_index * num_experts + slot_slice // capacity) * groups
         + group_index) * capacity + slot_slice % capacity
  return tf.where(slot_slice < num_experts * capacity, ids,
                  tf.fill(tf.shape(ids), trash))


def _slot_token_ids(slot_token_slice: tf.Tensor, group_size: int
                    ) -> tf.Tensor:
  """[O, G, E, C] slot tokens -> flat [O * G * S] token ids, [O, E, G, C]."""
  return tf.transpose(
      expert_choice.flat_token_ids(slot_token_slice, group_size),
      [0, 2, 1, 3])


def _gather_tokens(tokens: mtf.Tensor, slot_token: mtf.Tensor,
                   slots_shape: mtf.Shape) -> mtf.Tensor:
  """Reads each slot's token: [O,G,S,M] -> [O,E,G,C,M]."""

  def tf_fn(tokens_slice, slot_token_slice):
    group_size, model = tokens_slice.shape.as_list()[2:]
    ids = _slot_token_ids(slot_token_slice, group_size)
    return tf.gather(tf.reshape(tokens_slice, [-1, model]), ids)

  def grad_fn(op, dy):
    return [_sum_slots(dy, op.inputs[1], op.inputs[0].shape), None]

  return mtf.slicewise(tf_fn, [tokens, slot_token], output_shape=slots_shape,
                       output_dtype=tokens.dtype,
                       splittable_dims=_splittable(tokens.shape),
                       grad_function=grad_fn, name="switch_gather_tokens")


def _sum_slots(slots: mtf.Tensor, slot_token: mtf.Tensor,
               tokens_shape: mtf.Shape) -> mtf.Tensor:
  """Adds each slot into its token: [O,E,G,C,M] -> [O,G,S,M]."""

  def tf_fn(slots_slice, slot_token_slice):
    model = slots_slice.shape.as_list()[-1]
    outer, groups = slot_token_slice.shape.as_list()[:2]
    group_size = tokens_shape.dims[2].size
    ids = _slot_token_ids(slot_token_slice, group_size)
    summed = tf.math.unsorted_segment_sum(
        tf.reshape(slots_slice, [-1, model]), tf.reshape(ids, [-1]),
        num_segments=outer * groups * group_size)
    return tf.reshape(summed, [outer, groups, group_size, model])

  def grad_fn(op, dy):
    return [_gather_tokens(dy, op.inputs[1], op.inputs[0].shape), None]

  return mtf.slicewise(tf_fn, [slots, slot_token], output_shape=tokens_shape,
                       output_dtype=slots.dtype,
                       splittable_dims=_splittable(tokens_shape),
                       grad_function=grad_fn, name="switch_sum_slots")
