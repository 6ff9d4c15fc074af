"""Token groups and expert capacity: the static shapes of top-1 routing.

Routing runs per group of tokens so that every group sends the same number of
slots (the capacity) to every expert, which keeps all shapes static. Groups
never straddle batch shards: the group count is a multiple of the number of
ways the batch is split, and the group dimension reuses the batch dimension's
name, so the mesh splits groups exactly like the batch and all routing math
stays local to a shard (reference §1.2).
"""

from typing import Tuple


def split_into_groups(num_tokens: int, max_group_size: int,
                      num_batch_shards: int) -> Tuple[int, int]:
  """Returns (num_groups, group_size) with num_groups * group_size = tokens.

  The group count is the smallest value >= num_tokens // max_group_size that
  is a multiple of the batch shard count and divides the tokens evenly, as in
  Mesh TF's MoE1D; the group size can therefore exceed max_group_size
  (3000 tokens, max 1024 -> 2 groups of 1500).

  Args:
    num_tokens: tokens per expert replica (product of batch and length dims).
    max_group_size: the layer's `group_size` knob.
    num_batch_shards: how many ways the mesh splits the batch dimension.

  Raises:
    ValueError: on a non-positive group size or shard count, or when the
      tokens cannot be split evenly over the batch shards.
  """
  if max_group_size < 1:
    raise ValueError(
        "Switch.group_size=%r must be >= 1; set it to a positive number of "
        "tokens per routing group (the paper's code uses 1024)."
        % (max_group_size,))
  if num_batch_shards < 1:
    raise ValueError("num_batch_shards=%r must be >= 1." % (num_batch_shards,))
  if num_tokens % num_batch_shards:
    raise ValueError(
        "The Switch layer sees %d tokens per step, which the %d batch shards "
        "of the mesh cannot split evenly; make the batch size (times the "
        "sequence length) a multiple of the mesh dimension the batch is "
        "split over." % (num_tokens, num_batch_shards))
  num_groups = max(1, num_tokens // max_group_size)
  while num_groups % num_batch_shards or num_tokens % num_groups:
    num_groups += 1
  return num_groups, num_tokens // num_groups


def expert_capacity(group_size: int, num_experts: int, capacity_factor: float,
                    min_capacity: int) -> int:
  """Slots per expert per group: max(min(S, floor(S * cf / E)), min_capacity).

  Floor, not round, as in Mesh TF (flaxformer rounds); the minimum wins even
  over the group size, so tiny groups still route (reference §1.3).

  Raises:
    ValueError: on a non-positive capacity factor or expert count, or a
      negative minimum capacity.
  """
  if capacity_factor <= 0:
    raise ValueError(
        "Switch capacity factor %r must be > 0; the paper uses 1.0-1.25 for "
        "training and 2.0 for evaluation (capacity_factor_train / "
        "capacity_factor_eval)." % (capacity_factor,))
  if num_experts < 1:
    raise ValueError(
        "Switch.num_experts=%r must be >= 1." % (num_experts,))
  if min_capacity < 0:
    raise ValueError(
        "Switch.min_expert_capacity=%r must be >= 0 (the paper's code uses "
        "4)." % (min_capacity,))
  capacity = min(group_size, int(group_size * capacity_factor / num_experts))
  return max(capacity, min_capacity)
