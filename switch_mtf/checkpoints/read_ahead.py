"""Producing tensors on one core while another writes them, in bounded memory.

A conversion reads, casts and transposes tensors (NumPy) and writes them
(TensorFlow's SaveV2 or file writes); both release the GIL, so on two cores
they overlap. `ahead` runs the producing iterator in a thread that stays at
most `max_bytes` of finished items ahead of the consumer: with the item
being produced and the one being consumed, no more than max_bytes plus
three items are in memory, whatever the model's size.
"""

import collections
import threading
from typing import Callable, Iterable, Iterator, TypeVar

Item = TypeVar("Item")


def ahead(items: Iterable[Item], max_bytes: int,
          nbytes: Callable[[Item], int]) -> Iterator[Item]:
  """Yields `items` in order, produced by a thread up to max_bytes ahead.

  The producer starts an item only while the finished items waiting for
  the consumer take fewer than max_bytes (so one item bigger than that is
  produced alone). An exception in the producer is raised in the consumer
  when it reaches that point; closing the returned generator (or an
  exception in the consumer's loop, once the generator is closed or
  collected) stops the producer after its current item.
  """
  condition = threading.Condition()
  queue = collections.deque()
  state = {"bytes": 0, "done": False, "error": None, "stop": False}

  def produce() -> None:
    iterator = iter(items)
    try:
      while True:
        with condition:
          condition.wait_for(
              lambda: state["stop"] or state["bytes"] < max_bytes)
          if state["stop"]:
            return
        try:
          item = next(iterator)
        except StopIteration:
          return
        size = nbytes(item)
        with condition:
          queue.append((item, size))
          state["bytes"] += size
          condition.notify_all()
        del item  # the queue holds the only reference
    except BaseException as e:  # pylint: disable=broad-except
      state["error"] = e  # re-raised in the consumer
    finally:
      close = getattr(iterator, "close", None)
      if close is not None:
        close()
      with condition:
        state["done"] = True
        condition.notify_all()

  thread = threading.Thread(target=produce, name="read_ahead", daemon=True)
  thread.start()
  try:
    while True:
      with condition:
        condition.wait_for(lambda: queue or state["done"])
        if not queue:
          break
        item, size = queue.popleft()
        state["bytes"] -= size
        condition.notify_all()
      yield item
      del item
    if state["error"] is not None:
      raise state["error"]
  finally:
    with condition:
      state["stop"] = True
      condition.notify_all()
    thread.join()
