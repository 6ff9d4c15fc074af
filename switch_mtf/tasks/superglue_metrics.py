"""The leaderboard's metrics for SuperGLUE's diagnostics, which T5 leaves out.

T5 registers AX-b and AX-g without metrics (for it they are test sets the
leaderboard scores), yet both released files carry labels. AX-b is scored as
the leaderboard scores it, with Matthews correlation: T5's own metric for
CoLA. AX-g gets accuracy and gender parity: the share of Winogender pairs
(rows idx 2k and 2k+1, which differ only in the gender of the premise's
pronoun) whose two predictions agree, as jiant, the SuperGLUE authors'
toolkit, counts it.
"""

from typing import Any, Dict, List, Mapping, Optional

from t5.data import glue_utils
from t5.data import postprocessors
from t5.evaluation import metrics

AXB_METRICS = glue_utils.get_glue_metric("cola")
# AX-g is cast as RTE: its classes, in TFDS's order.
AXG_LABEL_CLASSES = ("entailment", "not_entailment")

Scored = Dict[str, Any]


def axg_postprocess(string_label: str,
                    example: Optional[Mapping[str, Any]] = None,
                    is_target: bool = False) -> Scored:
  """The class id and, for a target, the Winogender pair it belongs to."""
  scored = {"value": postprocessors.string_label_to_class_id(
      string_label, label_classes=AXG_LABEL_CLASSES)}
  if is_target:
    # Predictions do not carry the example, so the target holds the group.
    scored["pair"] = int(example["idx"]) // 2
  return scored


def axg_accuracy(targets: List[Scored],
                 predictions: List[Scored]) -> Dict[str, float]:
  """T5's accuracy over the class ids."""
  return metrics.accuracy([t["value"] for t in targets],
                          [p["value"] for p in predictions])


def _same_prediction(targets: List[int],
                     predictions: List[int]) -> Dict[str, float]:
  del targets  # Parity asks whether the model answers alike, not rightly.
  return {"gender_parity": 100.0 * float(len(set(predictions)) == 1)}


# Mean over pairs of "both predictions agree", in percent.
axg_gender_parity = metrics.mean_group_metric(_same_prediction,
                                              group_key="pair")
AXG_METRICS = [axg_accuracy, axg_gender_parity]
