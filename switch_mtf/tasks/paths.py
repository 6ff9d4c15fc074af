"""Where the shipped data lives inside the installed `switch_mtf.tasks`."""

import os

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
WIKI_DIR = os.path.join(DATA_DIR, "wiki")
SUPERGLUE_DIR = os.path.join(DATA_DIR, "superglue")
EMBEDDED_VOCAB_PATH = os.path.join(DATA_DIR, "vocab", "wiki_en_spm8k.model")
# The upstream copies this repo's data was built from (a checkout next to
# ../shared, as on the project's machines and CI); only the build tools and
# their reproducibility tests read it.
SHARED_DATA_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))), "shared", "data")
