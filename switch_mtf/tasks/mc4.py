"""mC4 pretraining from TFDS (`c4/multilingual:3.0.1`), as mT5 and mSwitch.

The paper's multilingual Switch models (mSwitch, Section 5.3) pretrain on
mC4's 101 languages with mT5's recipe. As in mT5's own tasks: one span
corruption task per language of TFDS's list (`MC4_LANGUAGES`: 101 languages
and 6 romanized variants), reading split `<lang>` for training and
`<lang>-validation` for validation; and a mixture that samples language L
with probability proportional to |L|^0.3 (mT5's alpha = 0.3: seqio's
size-based rate with temperature 1/0.3, so small languages are upsampled).
Use the mT5 vocabulary with them: `task_vocabulary.name = 'mt5'`.

Nothing is read at registration; the mixture's rates read the split sizes
from the prepared dataset's metadata when the mixture is first used.
"""

import functools

import seqio
from tensorflow_datasets.text import c4 as tfds_c4

from switch_mtf.tasks import denoising
from switch_mtf.tasks import registry
from switch_mtf.tasks import vocab

TFDS_NAME = "c4/multilingual:3.0.1"
LANGUAGES = tuple(tfds_c4.MC4_LANGUAGES)
# mT5 (Xue et al. 2021, Section 2): p(L) ~ |L|^alpha with alpha = 0.3.
SAMPLING_ALPHA = 0.3
MIXTURE = "mc4_span_corruption"
RATE = functools.partial(seqio.mixing_rate_num_examples,
                         temperature=1.0 / SAMPLING_ALPHA)


def task_name(language: str) -> str:
  """`mc4_<lang>_span_corruption`; '-' becomes '_' (zh-Latn -> zh_Latn)."""
  return "mc4_%s_span_corruption" % language.replace("-", "_")


for _language in LANGUAGES:
  registry.add_task(
      task_name(_language),
      source=seqio.TfdsDataSource(
          tfds_name=TFDS_NAME,
          splits={"train": _language,
                  "validation": _language + "-validation"}),
      preprocessors=denoising.span_corruption_preprocessors(),
      output_features=vocab.output_features(),
      metric_fns=[])

registry.add_mixture(MIXTURE, [(task_name(language), RATE)
                               for language in LANGUAGES])
