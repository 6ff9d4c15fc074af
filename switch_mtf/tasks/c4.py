"""C4 pretraining tasks read from TFDS (the Cloud TPU path).

`c4/en:3.0.1` is the prepared release in TFDS's public bucket (pass its
location with `--t5_tfds_data_dir`). The installed TFDS code is at 3.1.0;
asking for 3.0.1 explicitly makes TFDS read the prepared files, whose
features (text, url, timestamp, content-*) are the same.
"""

import seqio

from switch_mtf.tasks import denoising
from switch_mtf.tasks import registry
from switch_mtf.tasks import vocab

TFDS_NAME = "c4/en:3.0.1"

registry.add_task(
    "c4_span_corruption",
    source=seqio.TfdsDataSource(tfds_name=TFDS_NAME),
    preprocessors=denoising.span_corruption_preprocessors(),
    output_features=vocab.output_features(),
    metric_fns=[])

registry.add_task(
    "c4_prefix_lm",
    source=seqio.TfdsDataSource(tfds_name=TFDS_NAME),
    preprocessors=denoising.prefix_lm_preprocessors(),
    output_features=vocab.output_features(),
    metric_fns=[])
