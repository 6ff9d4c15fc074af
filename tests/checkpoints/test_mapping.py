"""The converter's Mesh TF names are the graph's: every family, every size.

Mesh TF is the reference: for each family the emitted gin is parsed as the
CLI parses it and Mesh TF's utils.build_model builds the model; the
variables it creates (names, shapes, master dtypes) must equal exactly
those mtf_names lists, which are the names the converters write. Reading
the built model back must give the Architecture the gin was emitted from.
The released sizes are also checked against the project's own model gins
(base, XXL and C; Large has Base's structure), so a converted
switch_classic checkpoint restores into models/switch_*.gin.
"""

import dataclasses

import pytest

from switch_mtf.checkpoints import architecture
from switch_mtf.checkpoints import gin_emitter
from switch_mtf.checkpoints import mtf_model
from switch_mtf.checkpoints import mtf_names
from switch_mtf.checkpoints import released

VOCAB = 256
ROUTING = architecture.Routing(
    group_size=64, capacity_factor_train=1.25, capacity_factor_eval=2.0,
    min_expert_capacity=4, jitter_eps=0.01, loss_coef=0.01,
    router_z_loss_coef=0.0)
_TINY = dict(vocab_size=VOCAB, d_model=16, d_ff=32, num_heads=2, d_kv=8)
FAMILIES = {
    # Switch-Base: every other FFN sparse (layers 1, 3), tied logits.
    "switch_base_like": architecture.Architecture(
        encoder=architecture.Stack(4, (1, 3)),
        decoder=architecture.Stack(4, (1, 3)), activation="relu",
        tied_embeddings=True, num_experts=4, routing=ROUTING, **_TINY),
    # Switch-C: every FFN sparse, separate logits, no jitter.
    "switch_c_like": architecture.Architecture(
        encoder=architecture.Stack(3, (0, 1, 2)),
        decoder=architecture.Stack(2, (0, 1)), activation="relu",
        tied_embeddings=False, num_experts=8,
        routing=dataclasses.replace(ROUTING, jitter_eps=0.0,
                                    capacity_factor_train=1.0,
                                    min_expert_capacity=2), **_TINY),
    # Switch-XXL: GEGLU experts and dense FFNs, separate logits.
    "switch_xxl_like": architecture.Architecture(
        encoder=architecture.Stack(2, (1,)),
        decoder=architecture.Stack(4, (1, 3)), activation="geglu",
        tied_embeddings=False, num_experts=2,
        routing=dataclasses.replace(ROUTING, capacity_factor_eval=4.0,
                                    router_dtype="bfloat16"), **_TINY),
    "t5_v1_0": architecture.Architecture(
        encoder=architecture.Stack(2), decoder=architecture.Stack(3),
        activation="relu", tied_embeddings=True, dropout_rate=0.0, **_TINY),
    "t5_v1_1": architecture.Architecture(
        encoder=architecture.Stack(2), decoder=architecture.Stack(2),
        activation="geglu", tied_embeddings=False, relative_buckets=16,
        norm_epsilon=1e-5, **_TINY),
    # Our CPU-sized models: learned absolute positions (Mesh TF only).
    "t5_tiny_like": architecture.Architecture(
        encoder=architecture.Stack(2), decoder=architecture.Stack(2),
        activation="relu", tied_embeddings=True,
        positions=architecture.ABSOLUTE, max_length=64, **_TINY),
}


def _emit_and_parse(tmp_path, arch, dtype):
  gin_file = tmp_path / "model.gin"
  gin_file.write_text(gin_emitter.model_gin(arch, dtype, None, ["test"]))
  mtf_model.parse([str(gin_file)])


@pytest.mark.parametrize("family,dtype", [
    (family, "float32") for family in sorted(FAMILIES)] + [
        ("switch_base_like", "bfloat16")])
def test_emitted_gin_builds_exactly_the_listed_variables(tmp_path, family,
                                                         dtype):
  arch = FAMILIES[family]
  _emit_and_parse(tmp_path, arch, dtype)
  built = mtf_model.variables(VOCAB)
  listed = {p.mtf_name: (p.shape, dtype) for p in mtf_names.params(arch)}
  assert built == listed
  assert len(listed) == len(mtf_names.params(arch))  # names are unique


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_the_built_model_reads_back_as_the_architecture(tmp_path, family):
  arch = FAMILIES[family]
  _emit_and_parse(tmp_path, arch, "float32")
  assert mtf_model.architecture_of(mtf_model.build(VOCAB), VOCAB) == arch
  assert mtf_model.master_dtype() == "float32"


def test_the_block_period_is_the_shortest_repeat_of_the_sparse_pattern():
  assert architecture.Stack(12, (1, 3, 5, 7, 9, 11)).period() == 2
  assert architecture.Stack(15, tuple(range(15))).period() == 1
  assert architecture.Stack(6).period() == 1
  assert architecture.Stack(6, (1, 4)).period() == 3
  assert architecture.Stack(5, (1,)).period() == 5


def _released(name, num_experts):
  release = {r.name: r for r in released.SWITCH_CLASSIC}[name]
  layers = released.sparse_layers(release.num_layers,
                                  release.every_ffn_sparse)
  return architecture.Architecture(
      vocab_size=32128, d_model=release.d_model, d_ff=release.d_ff,
      num_heads=release.num_heads, d_kv=release.d_kv,
      encoder=architecture.Stack(release.num_layers, layers),
      decoder=architecture.Stack(release.num_layers, layers),
      activation=release.activation,
      tied_embeddings=release.tied_embeddings, num_experts=num_experts,
      routing=release.routing)


@pytest.mark.parametrize("gin_file,release,num_experts", [
    ("models/switch_base_8.gin", "switch_classic/base", 8),
    # The largest graph; GEGLU experts are also in the fast emitted-gin test.
    pytest.param("models/switch_xxl.gin", "switch_classic/xxl", 128,
                 marks=pytest.mark.slow),
    ("models/switch_c.gin", "switch_classic/c", 2048),
])
def test_released_sizes_have_the_variables_of_our_model_gins(
    gin_file, release, num_experts):
  arch = _released(release, num_experts)
  mtf_model.parse([gin_file])
  listed = {p.mtf_name: p.shape for p in mtf_names.params(arch)}
  built = {name: shape for name, (shape, _) in mtf_model.variables(
      32128).items()}
  assert built == listed
