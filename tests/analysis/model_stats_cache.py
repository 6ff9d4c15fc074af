"""Model statistics shared by the gin-config and model-statistics tests.

A graph build takes seconds, so each (gin files, params, mesh, layout) is
measured once per test session. `measure` replaces the process's gin config:
tests that read gin afterwards parse it again themselves.
"""

import functools
from typing import Any, Dict, Optional, Tuple

from switch_mtf.analysis import model_stats

# The paper's pre-training lengths (§4.1), for FLOPs comparable to Table 9.
PAPER_LENGTHS = "utils.run.sequence_length = {'inputs': 512, 'targets': 114}"


@functools.lru_cache(maxsize=None)
def stats(gin_files: Tuple[str, ...], gin_params: Tuple[str, ...] = (),
          mesh_shape: Optional[str] = None,
          layout_rules: Optional[str] = None) -> Dict[str, Any]:
  return model_stats.measure(gin_files, gin_params, mesh_shape=mesh_shape,
                             layout_rules=layout_rules)


def model(name: str, *gin_params: str) -> Dict[str, Any]:
  """Stats of models/<name>.gin at the paper's lengths on one device."""
  return stats(("models/%s.gin" % name,), (PAPER_LENGTHS, *gin_params))
