"""The SentencePiece vocabulary every switch-mtf task uses, chosen by name.

Three choices: "embedded" (the default; trained on the shipped Wikipedia
corpus, works offline), "t5" (T5's cc_all.32000 model on GCS, the vocabulary
of the paper, for Cloud TPU users) and "mt5" (mT5's 250,000-piece
multilingual model on GCS, for mC4 as the paper's mSwitch). The first two get
T5's 100 sentinels (`extra_ids`) appended; mT5's model holds its 100 already
("100extra"), and is used as mT5's own tasks use it, with none added.

Tasks are registered when `switch_mtf.tasks` is imported, which happens before
`t5_mesh_transformer` parses gin. The choice is therefore resolved when the
vocabulary is first used, not when the task is built: bind
`task_vocabulary.name = 't5'` (e.g. `--gin_param="task_vocabulary.name='t5'"`)
or set SWITCH_MTF_VOCABULARY=t5. A path to a `.model` file is accepted too.
"""

import os
from typing import Dict, Optional

import gin
import seqio
import t5.data

from switch_mtf.tasks import paths

EXTRA_IDS = t5.data.DEFAULT_EXTRA_IDS
MT5_SPM_PATH = "gs://t5-data/vocabs/mc4.250000.100extra/sentencepiece.model"
VOCABULARIES = {
    "embedded": paths.EMBEDDED_VOCAB_PATH,
    "t5": t5.data.DEFAULT_SPM_PATH,
    "mt5": MT5_SPM_PATH,
}
# Sentinels appended to a vocabulary's own pieces, where not EXTRA_IDS.
_APPENDED_EXTRA_IDS = {"mt5": 0}
DEFAULT_VOCABULARY = "embedded"
VOCABULARY_ENV_VAR = "SWITCH_MTF_VOCABULARY"


@gin.configurable(module="switch_mtf.tasks")
def task_vocabulary(name: Optional[str] = None) -> str:
  """Returns the chosen vocabulary: gin binding, else env var, else default."""
  return name or os.environ.get(VOCABULARY_ENV_VAR) or DEFAULT_VOCABULARY


def vocabulary_path(name: str) -> str:
  """Maps a vocabulary name (or a .model path) to the model file's path."""
  if name in VOCABULARIES:
    return VOCABULARIES[name]
  if name.endswith(".model"):
    return name
  raise ValueError(
      f"Unknown vocabulary {name!r}: use one of {sorted(VOCABULARIES)} or a "
      "path to a SentencePiece .model file (gin `task_vocabulary.name`, env "
      f"{VOCABULARY_ENV_VAR}).")


def appended_extra_ids(name: str) -> int:
  """How many sentinels are appended to the named vocabulary's model."""
  return _APPENDED_EXTRA_IDS.get(name, EXTRA_IDS)


def check_vocabulary_file(path: str) -> str:
  """Fails early, naming the path, when a local model file is missing."""
  # Remote paths (gs://) are left to the reader: checking them needs network.
  if "://" not in path and not os.path.isfile(path):
    raise FileNotFoundError(
        f"SentencePiece model {path} does not exist. The embedded one is "
        "rebuilt by `python tools/build_vocab.py`; or choose another with gin "
        f"`task_vocabulary.name` or env {VOCABULARY_ENV_VAR}.")
  return path


class SelectedVocabulary(seqio.SentencePieceVocabulary):
  """A SentencePieceVocabulary whose model file (and with it the number of
  appended sentinels) is looked up at first use."""

  def __init__(self):
    super().__init__(sentencepiece_model_file="", extra_ids=EXTRA_IDS)

  @property
  def sentencepiece_model_file(self) -> str:
    return vocabulary_path(task_vocabulary())

  @property
  def extra_ids(self) -> int:
    return appended_extra_ids(task_vocabulary())

  def _model_context(self) -> seqio.SentencePieceVocabulary._ModelContext:
    # Resolved on every call (the load itself is cached by seqio per path), so
    # a gin binding made after import takes effect.
    path = check_vocabulary_file(self.sentencepiece_model_file)
    return self._load_model(path, self.extra_ids, None,
                            self._reverse_extra_ids)


VOCABULARY = SelectedVocabulary()


def output_features() -> Dict[str, seqio.Feature]:
  """T5's encoder-decoder features (EOS on both sides) over VOCABULARY."""
  return {
      "inputs": seqio.Feature(vocabulary=VOCABULARY, add_eos=True,
                              required=False),
      "targets": seqio.Feature(vocabulary=VOCABULARY, add_eos=True),
  }
