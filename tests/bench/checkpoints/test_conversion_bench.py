"""The conversion benchmark runs end to end on a tiny model (smoke test).

The benchmark itself (switch-base-8's shapes, 2.4 GB) is run by the
coordinator on an idle machine; no timing is asserted here, only that
every number is recorded, sized as the files are, with provenance.
"""

import json

import numpy as np

from switch_mtf.bench.checkpoints import conversion_bench
from switch_mtf.checkpoints import mtf_names
from tests.checkpoints import tool_help


def test_switch_base_shapes_are_the_released_base_with_8_experts():
  arch = conversion_bench.switch_base(8)
  params = sum(int(np.prod(p.shape)) for p in mtf_names.params(arch))
  # switch-base-8 is ~620M parameters with 32128 vocabulary rows; ours has
  # 8192 rows: (32128 - 8192) x 768 = 18.4M fewer.
  assert 595e6 < params < 605e6
  assert arch.num_experts == 8 and arch.encoder.sparse_layers == (
      1, 3, 5, 7, 9, 11)


def test_tiny_run_records_every_number(tmp_path):
  tool = tool_help.load_tool("conversion_bench")
  assert tool_help.undocumented(tool.build_parser()) == []
  results_path = tmp_path / "bench.json"
  assert tool.main(["--size=tiny", "--num_experts=4",
                    "--work_dir=%s" % (tmp_path / "work"),
                    "--results=%s" % results_path]) == 0
  results = json.load(open(results_path))
  assert sorted(results["runs"]) == ["E4"]
  assert results["provenance"]["code_parts"] == ["checkpoints"]
  large = results["runs"]["E4"]
  assert large["largest_tensor_parameters"] == 8192 * 32  # the embedding
  assert not (tmp_path / "work" / "E4").exists()  # scratch deleted
  assert results["scaling"] is None  # one model: no curve
  for direction in ("hf_to_mtf", "mtf_to_hf"):
    numbers = large[direction]
    assert numbers["seconds"] > 0 and numbers["peak_rss_mb"] > 100
    # The tool's own time excludes the interpreter and imports.
    assert 0 < numbers["conversion_seconds"] < numbers["seconds"]
    assert numbers["conversion_mb_per_second_written"] > numbers[
        "mb_per_second_written"]
    assert numbers["sync_seconds"] >= 0
    assert numbers["mb_written"] > 0.5 * numbers["mb_read"] * (
        0.5 if direction == "hf_to_mtf" else 1)  # float32 -> bfloat16
    assert isinstance(numbers["meets_memory_target"], bool)
  # Back to HF: the bfloat16 checkpoint's weights, in bfloat16.
  assert abs(large["mtf_to_hf"]["mb_written"]
             - large["hf_to_mtf"]["mb_written"]) < 0.2 * large[
                 "mtf_to_hf"]["mb_written"]


def test_scaling_fits_peak_rss_to_the_largest_tensor():
  # Peak RSS 600 MB + 3x the largest tensor (as read) for the two largest
  # models; the smallest sits above the line (its shards, not its largest
  # tensor, set its memory) and must not bend it.
  runs = {}
  for experts, extra in ((8, 150), (16, 0), (32, 0)):
    largest = conversion_bench.parameter_counts(
        conversion_bench.switch_base(experts))["largest_tensor_parameters"]
    runs["E%d" % experts] = {"largest_tensor_parameters": largest, **{
        direction: {"peak_rss_mb": 600 + extra + 3 * largest * read_bytes
                                   / 1e6}
        for direction, read_bytes in (("hf_to_mtf", 4), ("mtf_to_hf", 2))}}
  target = conversion_bench.switch_base(256)
  fit = conversion_bench.scaling(runs, target)
  params = mtf_names.params(target)
  largest = max(int(np.prod(p.shape)) for p in params)
  assert largest == 256 * 768 * 3072  # an experts stack
  assert fit["extrapolated_to"]["parameters"] == sum(
      int(np.prod(p.shape)) for p in params)
  for direction, read_bytes in (("hf_to_mtf", 4), ("mtf_to_hf", 2)):
    line = fit[direction]
    assert abs(line["peak_rss_mb_per_largest_tensor_mb"] - 3) < 1e-3
    assert abs(line["peak_rss_mb_at_no_tensor"] - 600) < 0.5
    predicted = 600 + 3 * largest * read_bytes / 1e6
    assert abs(line["predicted_peak_rss_mb"] - predicted) <= 1
    limit = 2 * largest * read_bytes / 1e6 + 1000
    assert line["meets_memory_target"] == (predicted <= limit)
  lines = conversion_bench.summary_lines({"size": "switch_base",
                                          "runs": {}, "scaling": fit})
  assert len(lines) == 4 and "E256" in lines[2]
