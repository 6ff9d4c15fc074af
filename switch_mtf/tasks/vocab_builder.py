"""Trains the embedded SentencePiece vocabulary, reproducibly.

T5's convention is kept: a unigram model with pad=0, eos=1, unk=2 and no BOS,
without sentinels in the model file; seqio appends the 100 `<extra_id_N>`
sentinels at load time (`SentencePieceVocabulary(path, extra_ids=100)`), in
descending id order as span corruption expects.

Bit-for-bit reproducibility needs three things: the same training sentences
in the same order (the shipped corpus, read in file order), a fixed thread
count, and no file names in the model: SentencePiece records its input paths
and model prefix in the model's `trainer_spec`, so they are cleared.
"""

import json
import os
import string
import subprocess
import sys
import tempfile
from typing import Iterable, Iterator

from sentencepiece import sentencepiece_model_pb2

from switch_mtf.tasks import wiki_corpus

VOCAB_SIZE = 8000
# Fixed, not the machine's core count: the value is stored in the model file
# and, through the EM's per-thread sums, can change the learned scores.
NUM_THREADS = 2
# Longer than the longest paragraph, so that none is silently skipped.
MAX_SENTENCE_BYTES = 1 << 16
# Printable ASCII is always kept, however rare in Wikipedia prose: downstream
# formats need it (T5's WSC marks the pronoun as *he*; "<", "{", "~" occur in
# SuperGLUE text), and T5's own vocabulary has all of it.
REQUIRED_CHARS = "".join(c for c in string.printable if not c.isspace())


def training_paragraphs(corpus_path: str) -> Iterator[str]:
  """The paragraphs of the train corpus, in file order."""
  for line in wiki_corpus.read_corpus_lines(corpus_path):
    yield from wiki_corpus.paragraphs_of_line(line)


# Training runs in a fresh interpreter that loads SentencePiece alone: once
# TensorFlow is loaded in the same process (any `switch_mtf.tasks` import
# loads it), SentencePiece 0.1.99's trainer dies with SIGSEGV.
_TRAIN_SCRIPT = """
import json, sys
import sentencepiece
sentencepiece.SentencePieceTrainer.train(**json.loads(sys.argv[1]))
"""


def train_sentencepiece(sentences: Iterable[str],
                        vocab_size: int = VOCAB_SIZE) -> bytes:
  """Trains a T5-style unigram model on `sentences`; returns its bytes."""
  with tempfile.TemporaryDirectory() as tmp:
    corpus = os.path.join(tmp, "sentences.txt")
    with open(corpus, "w", encoding="utf-8") as f:
      for sentence in sentences:
        f.write(sentence + "\n")
    options = {
        "input": corpus,
        "model_prefix": os.path.join(tmp, "model"),
        "model_type": "unigram",
        "vocab_size": vocab_size,
        "character_coverage": 0.9995,
        "required_chars": REQUIRED_CHARS,
        "pad_id": 0,
        "eos_id": 1,
        "unk_id": 2,
        "bos_id": -1,
        "input_sentence_size": 0,  # Every paragraph: no random sampling.
        "max_sentence_length": MAX_SENTENCE_BYTES,
        "num_threads": NUM_THREADS,
        "minloglevel": 2,
    }
    result = subprocess.run(
        [sys.executable, "-c", _TRAIN_SCRIPT, json.dumps(options)],
        capture_output=True, text=True, check=False)
    if result.returncode != 0:
      raise RuntimeError(
          f"SentencePiece training failed (exit {result.returncode}):\n"
          f"{result.stderr[-2000:]}")
    model = sentencepiece_model_pb2.ModelProto()
    with open(os.path.join(tmp, "model.model"), "rb") as f:
      model.ParseFromString(f.read())
  # The temporary paths are recorded in the model; they are not part of it.
  del model.trainer_spec.input[:]
  model.trainer_spec.model_prefix = ""
  return model.SerializeToString(deterministic=True)


def build_vocab(corpus_path: str, output_path: str,
                vocab_size: int = VOCAB_SIZE) -> str:
  """Trains on the train corpus and writes the model; returns its path."""
  model = train_sentencepiece(training_paragraphs(corpus_path), vocab_size)
  with open(output_path, "wb") as f:
    f.write(model)
  return output_path
