"""The speed report's model tables, written from stored step times.

No timings: bookkeeping checked against hand-computed values.
"""

from switch_mtf.bench.common import store as store_lib
from switch_mtf.bench.speed import model_step
from switch_mtf.bench.speed import report as speed_report


def test_precision_models_report_their_dtype_and_ratio_to_dense(tmp_path):
  specs = model_step.precision_specs()
  assert [s.activation_dtype for s in specs.values()] == [
      "float32", "bfloat16", "float32", "bfloat16", "bfloat16"]
  assert ("Switch.router_dtype = 'bfloat16'" in
          specs["switch_tiny_E8_gather_bfloat16_router_bfloat16"].gin_params)
  assert not any("router_dtype" in p
                 for p in specs["switch_tiny_E8_gather_bfloat16"].gin_params)
  store = store_lib.ResultStore(str(tmp_path / "models.json"))
  store.put("tiny/precision", {"models": {
      name: {"median_ms": ms, "params": 2e6, "expert_params": 0,
             "spec": spec.as_dict()}
      for (name, spec), ms in zip(specs.items(), (400, 200, 500, 300, 250))}})
  rows = [line for line in speed_report.model_section(store, str(tmp_path))
          if line.startswith("| switch_tiny_E8_gather_bfloat16 |")]
  assert rows == ["| switch_tiny_E8_gather_bfloat16 | bfloat16 | 2.00M | "
                  "0.00M | 300.0 | 0.75 |"]
  # One expert count: no experts-doubling plot from the precision models.
  assert not (tmp_path / "experts_doubling.png").exists()
