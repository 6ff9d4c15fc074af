"""The guarded run's seed: its own binding, else the data seed T5's binds.

`reliable_train_model` seeds the data order itself, so without this a
`mesh_train_dataset_fn.seed` binding (the demo's and the claims' paired data
orders) would silently be replaced by seed 0.
"""

import gin
import pytest

from switch_mtf.cli import launcher
from switch_mtf.training import reliable

# Registers mesh_train_dataset_fn with gin, as the CLI does (torch-free).
launcher.import_t5_models_without_torch()
from t5.models import mesh_transformer  # pylint: disable=g-import-not-at-top,unused-import,wrong-import-position


@pytest.fixture(autouse=True)
def clear_gin():
  gin.clear_config()
  yield
  gin.clear_config()


def _resolve(*bindings):
  gin.parse_config(list(bindings))
  return reliable.resolve_seed(
      gin.query_parameter("switch_mtf.reliable_train_model.seed")
      if "reliable_train_model.seed" in " ".join(bindings) else 0)


def test_default_seed_is_zero():
  assert _resolve() == 0


def test_a_data_seed_binding_seeds_the_guarded_run():
  assert _resolve("mesh_train_dataset_fn.seed = 1234") == 1234


def test_our_seed_alone_is_used():
  assert _resolve("switch_mtf.reliable_train_model.seed = 7") == 7


def test_agreeing_bindings_are_accepted_and_disagreeing_refused():
  assert _resolve("mesh_train_dataset_fn.seed = 5",
                  "switch_mtf.reliable_train_model.seed = 5") == 5
  with pytest.raises(ValueError, match="disagree"):
    _resolve("mesh_train_dataset_fn.seed = 5",
             "switch_mtf.reliable_train_model.seed = 6")


def test_an_unseeded_data_binding_keeps_our_seed():
  # demo_pretrain.gin-style None: T5's unseeded default, not a seed.
  assert _resolve("mesh_train_dataset_fn.seed = None") == 0
