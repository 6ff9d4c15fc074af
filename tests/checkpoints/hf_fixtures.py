"""Tiny Hugging Face model folders for the conversion tests.

`save_random_model` builds transformers' own model (needs torch), puts
random values in every parameter (layer norms and relative bias included,
scaled so that float32 logits stay well conditioned) and saves it with
`save_pretrained`, plus our embedded SentencePiece model as spiece.model
(8000 pieces + 100 sentinels -> 8192 embedding rows). `write_synthetic`
writes a folder without torch from transformers' config class and the
tensor names of hf_names: for tests of bad input, not of the mapping.
"""

import json
import os
import shutil
from typing import Any, Dict

import numpy as np

from switch_mtf.checkpoints import architecture
from switch_mtf.checkpoints import hf_names
from switch_mtf.checkpoints import safetensors_file
from switch_mtf.checkpoints import tensor_plan
from switch_mtf.tasks import paths

VOCAB_SIZE = 8192
SPIECE = paths.EMBEDDED_VOCAB_PATH

SWITCH_CONFIG = dict(
    vocab_size=VOCAB_SIZE, d_model=32, d_kv=8, d_ff=64, num_heads=4,
    num_layers=4, num_decoder_layers=4, num_experts=4,
    num_sparse_encoder_layers=2, num_sparse_decoder_layers=2,
    expert_capacity=256, router_jitter_noise=0.0, dropout_rate=0.1)
T5_V10_CONFIG = dict(
    vocab_size=VOCAB_SIZE, d_model=32, d_kv=8, d_ff=64, num_heads=4,
    num_layers=2, num_decoder_layers=3, feed_forward_proj="relu",
    tie_word_embeddings=True)
T5_V11_CONFIG = dict(T5_V10_CONFIG, feed_forward_proj="gated-gelu",
                     tie_word_embeddings=False)


def save_random_model(path: str, family: str, config: Dict[str, Any],
                      seed: int = 0, safe_serialization: bool = True):
  """Saves a randomised transformers model; returns it (in eval mode)."""
  import torch  # pylint: disable=g-import-not-at-top
  import transformers  # pylint: disable=g-import-not-at-top
  if family == hf_names.SWITCH:
    model = transformers.SwitchTransformersForConditionalGeneration(
        transformers.SwitchTransformersConfig(**config))
  else:
    model = transformers.T5ForConditionalGeneration(
        transformers.T5Config(**config))
  generator = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for name, parameter in model.named_parameters():
      noise = torch.randn(parameter.shape, generator=generator)
      if "layer_norm" in name:
        parameter.copy_(1.0 + 0.2 * noise)
      elif "relative_attention_bias" in name or "router" in name:
        # Strong enough that position and routing vary token to token.
        parameter.copy_(0.5 * noise)
      else:
        parameter.copy_(0.1 * noise)
  model.save_pretrained(path, safe_serialization=safe_serialization)
  shutil.copy(SPIECE, os.path.join(path, "spiece.model"))
  return model.eval()


def write_synthetic(path: str, arch: architecture.Architecture, family: str,
                    config: Dict[str, Any], seed: int = 0) -> Dict[str, Any]:
  """A torch-free HF folder for `arch`; returns the written config dict."""
  import transformers  # pylint: disable=g-import-not-at-top
  config_class = (transformers.SwitchTransformersConfig
                  if family == hf_names.SWITCH else transformers.T5Config)
  os.makedirs(path, exist_ok=True)
  config_class(**config).to_json_file(os.path.join(path, "config.json"))
  rng = np.random.RandomState(seed)
  specs, arrays = [], []
  for mapping in hf_names.mappings(arch, family):
    shape = tensor_plan.source_shape(mapping)
    for name in mapping.sources:
      specs.append((name, shape, "float32"))
      arrays.append(rng.normal(0, 0.1, shape).astype(np.float32))
  safetensors_file.write(os.path.join(path, "model.safetensors"), specs,
                         arrays, {"format": "pt"})
  shutil.copy(SPIECE, os.path.join(path, "spiece.model"))
  with open(os.path.join(path, "config.json")) as f:
    return json.load(f)
