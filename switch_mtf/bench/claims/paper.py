"""The paper's numbers each claim is compared with (Fedus et al., JMLR 2022).

Quoted from the paper text (arXiv v3 = JMLR); "NLP" is negative log
perplexity (higher is better), our figures are validation cross-entropy
(CE = -NLP, lower is better).
"""

SAMPLE_EFFICIENCY = (
    "Figure 4 (right) / §3.1: at fixed FLOPs per token, more experts are "
    "more sample efficient; Switch-Base 64 experts reaches T5-Base's "
    "quality at step 60k instead of 450k (7.5x speed-up in steps); Figure 5: "
    "same quality in one-seventh of the wall-clock time on 32 TPUv3 cores.")

CAPACITY_FACTOR = {
    # Table 1: 128 experts, every other FFN, 100k steps, 32 TPUv3 cores.
    # (model, capacity factor): (NLP at 100k, examples/s)
    ("Switch", 1.0): (-1.561, 1000),
    ("Switch", 1.25): (-1.553, 910),
    ("Switch", 2.0): (-1.554, 860),
    ("top-2 MoE", 1.0): (-1.572, 860),
    ("top-2 MoE", 1.25): (-1.559, 790),
    ("top-2 MoE", 2.0): (-1.547, 840),
    ("T5-Base (dense)", None): (-1.731, 1600),
}
DROPPED_TOKENS = "§2.2/§4.1: dropped tokens 'typically < 1%' at cf 1.0-1.25"

PRECISION = {
    # Table 2: 32 experts, early in training; (NLP, examples/s, diverged)
    "float32": (-1.718, 1160, False),
    "bfloat16 everywhere": (-3.780, 1390, True),
    "bfloat16 + float32 router (selective)": (-1.716, 1390, False),
}

INIT_SCALE = {
    # Table 3: 32-expert Switch-Base after 3.5k steps, 3 seeds: NLP mean, std
    0.1: (-2.72, 0.01),
    1.0: (-3.60, 0.68),
}

EXPERT_DROPOUT = {
    # Table 4: Switch-Base fine-tuned after 34B tokens; GLUE / SuperGLUE
    "d=0.1": (84.7, 73.0),
    "d=0.1, ed=0.4": (85.2, 73.0),
    "T5-Base d=0.1": (82.9, 72.4),
}

LAYER_SPEED = (
    "Table 1: Switch-Base (cf 1.0) 1000 ex/s vs T5-Base 1600 ex/s on 32 "
    "TPUv3 cores, i.e. a full Switch model step costs ~1.6x the dense step "
    "(every other FFN sparse, plus all-to-all communication).")

ROUTER_POLICY = {
    # Table 11: router exploration strategies, Switch Transformer quality
    # (NLP); "no material speed performance difference between the
    # variants". Input jitter is used throughout the paper.
    "argmax": -1.471,
    "sample": -1.570,  # "sample softmax"
    "input_dropout": -1.480,
    "input_jitter": -1.468,
}

NTLB = (
    "Appendix B: No-Token-Left-Behind reroutes overflow tokens to their "
    "next-best expert; 'we found no empirical benefits' (no figures given).")

PRIORITY_DROPPING = (
    "Not in the paper: probability-priority dropping is Mesh TF's switch_max "
    "gating. At the same capacity factor (1.0), Table 1's Switch-Base "
    "(token-order dropping) reaches NLP -1.561.")

EXPERTS_ATTENTION = {
    # Table 10: 32 experts, 524k tokens per batch; (model, precision):
    # (NLP at 100k steps, NLP at 16 hours, examples/s); None = diverged.
    ("Experts FF", "float32"): (-1.548, -1.614, 1480),
    ("Expert Attention", "float32"): (-1.524, -1.606, 1330),
    ("Expert Attention", "bfloat16"): None,
    ("Experts FF + Attention", "float32"): (-1.513, -1.607, 1240),
    ("Experts FF + Attention", "bfloat16"): None,
}
