"""The Switch layer of the paper (§2): top-1 routing of tokens to experts.

`Switch` (switch.py) is a Mesh TF `TransformerLayer`; one job per module:
router, capacity, dispatch, experts, metrics; attention.py puts Switch
experts in self-attention (paper Appendix A); standalone.py lets tests and
benchmarks call an FFN layer outside a model.

May import: nothing else of switch_mtf.
"""

from switch_mtf.layer.attention import SwitchSelfAttention
from switch_mtf.layer.switch import Switch
