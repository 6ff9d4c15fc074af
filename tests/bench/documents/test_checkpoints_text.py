"""docs/checkpoints.md's generated sections from fabricated result files."""

import dataclasses
import json
import os

from switch_mtf.bench.checkpoints import conversion_bench
from switch_mtf.bench.checkpoints import upcycling
from switch_mtf.bench.common import provenance
from switch_mtf.bench.common import store as store_lib
from switch_mtf.bench.documents import checkpoints_text


def _direction(mb_per_second, rss, limit, share):
  return {"seconds": 1202 / mb_per_second, "conversion_seconds": 5.0,
          "mb_written": 1202.0, "mb_per_second_written": mb_per_second,
          "conversion_mb_per_second_written": 240.0, "peak_rss_mb": rss,
          "peak_rss_limit_mb": limit, "meets_memory_target": rss <= limit,
          "meets_speed_target": (
              mb_per_second >= conversion_bench.TARGET_MB_PER_SECOND),
          "load": {"other_cpu_share_mean": share}}


def _write_conversion(results_dir, hf_to_mtf_speed, code_sha256=None):
  record = provenance.record("tools/conversion_bench.py", [],
                             conversion_bench.CODE_PARTS)
  if code_sha256:
    record["code_sha256"] = code_sha256
  results = {
      "provenance": record, "size": "switch_base",
      "target_mb_per_second": conversion_bench.TARGET_MB_PER_SECOND,
      "runs": {"E8": {
          "parameters": 601e6, "largest_tensor_parameters": 18.9e6,
          "hf_to_mtf": _direction(hf_to_mtf_speed, 837, 1151, 0.05),
          "mtf_to_hf": _direction(114.1, 757, 1076, 0.02)}}}
  path = os.path.join(results_dir, checkpoints_text.CONVERSION_FILE)
  os.makedirs(os.path.dirname(path))
  with open(path, "w") as f:
    json.dump(results, f)


def test_conversion_section_states_each_target_and_the_load(tmp_path):
  _write_conversion(str(tmp_path), 112.1)
  lines = checkpoints_text.conversion(str(tmp_path))
  text = "\n".join(lines)
  assert "at most 5.0%." in lines[0]
  assert "| switch_base E8 | 601M | 18.9M | hf_to_mtf |" in text
  assert "slowest 112.1 MB/s: **met**" in text
  assert "every measured model: **met**" in text
  assert "Stale" not in text


def test_a_slow_or_stale_conversion_result_says_so(tmp_path):
  _write_conversion(str(tmp_path), 77.7, code_sha256="0" * 64)
  text = "\n".join(checkpoints_text.conversion(str(tmp_path)))
  assert "slowest 77.7 MB/s: **not met**" in text
  assert "**Stale**: code of checkpoints changed" in text


def test_missing_results_say_how_to_measure(tmp_path):
  assert "tools/conversion_bench.py" in checkpoints_text.conversion(
      str(tmp_path))[0]
  assert "tools/upcycle_experiment.py" in checkpoints_text.upcycling_lines(
      str(tmp_path))[0]


def test_upcycling_section_pairs_the_arms_by_seed(tmp_path):
  config = upcycling.Config(seeds=(0, 1))
  store = store_lib.ResultStore(
      os.path.join(str(tmp_path), checkpoints_text.UPCYCLE_FILE),
      "python tools/upcycle_experiment.py --seeds=0,1",
      meta={"config": dataclasses.asdict(config)})
  ce = {"dense": (5.5, 5.6), "dense_continued": (5.2, 5.3),
        "upcycled": (5.0, 5.2), "switch_scratch": (5.4, 5.1)}
  for arm, values in ce.items():
    for seed, value in enumerate(values):
      store.put("%s_s%d" % (arm, seed),
                {"eval": {"3000": {"neg_log_perplexity": -value}}})
  text = "\n".join(checkpoints_text.upcycling_lines(str(tmp_path)))
  assert "| upcycled | 5.0000 | 5.2000 |" in text
  # dense_continued - upcycled: 0.2 and 0.1; switch_scratch: 0.4 and -0.1.
  # Student's t with 1 degree of freedom: 12.706 * 0.0707 / sqrt(2) = 0.635.
  assert ("upcycled - dense_continued, validation CE: -0.1500, 95% interval "
          "[-0.7853, +0.4853] (Student's t over 2 paired seeds; not "
          "significant)") in text
  assert ("Upcycled beats both other arms in 1 of the 2 seeds with every arm "
          "scored (0); 2 seeds planned.") in text
  assert "| upcycled_s1 | – | not recorded | recorded without provenance |" in (
      text)
