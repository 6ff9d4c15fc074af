"""seqio tasks and mixtures, their vocabularies and the shipped data.

`--module_import=switch_mtf.tasks` registers all of them and, through the
`switch_mtf` package, adds our gin folder to gin's search path. Registration
reads nothing: data and vocabulary are opened when a dataset is requested.
docs/tasks.md lists every task and mixture with its source.

May import: nothing else of switch_mtf.
"""

# pylint: disable=unused-import  (each module registers its tasks)
from switch_mtf.tasks import c4
from switch_mtf.tasks import local_superglue
from switch_mtf.tasks import mc4
from switch_mtf.tasks import own_corpus
from switch_mtf.tasks import smoke
from switch_mtf.tasks import superglue
from switch_mtf.tasks import wiki
from switch_mtf.tasks import wiki_large
