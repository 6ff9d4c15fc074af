"""Released checkpoints in and out: Hugging Face and T5X to Mesh TF and back.

A converted model dir holds a Mesh TF checkpoint, the `checkpoint` state
file, `model.gin` (the model, for `--gin_file`) and the SentencePiece
vocabulary, so `switch_mtf_transformer` evaluates, scores, decodes and
fine-tunes from it. One job per module: `architecture.py` (what a model is,
format-free), `mtf_names.py` (its Mesh TF variables), `gin_emitter.py` (its
gin), `hf_config.py` / `hf_names.py` (its Hugging Face form),
`t5x_names.py` / `released.py` (T5X's form, the released configs), readers
and writers of each file format, and one module per conversion
(`import_hf.py`, `import_t5x.py`, `export_hf.py`, `upcycle.py`).
docs/checkpoints.md has the mapping table and what is refused, and why.

May import: switch_mtf.tasks (the task vocabulary), switch_mtf.cli.
"""
