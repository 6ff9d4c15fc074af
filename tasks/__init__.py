"""seqio tasks and mixtures of switch-mtf (installed as `switch_mtf.tasks`).

`--module_import=switch_mtf.tasks` registers all of them and, through the
`switch_mtf` package, adds our gin folder to gin's search path.
"""

import switch_mtf  # pylint: disable=unused-import  (gin path, layers)
from switch_mtf.tasks import smoke  # pylint: disable=unused-import
