"""Generated sections are found, replaced in place and checked for pairing."""

import pytest

from switch_mtf.bench.documents import markers

DOC = """# Title
hand-written 1
<!-- BEGIN GENERATED table: python tools/write_docs.py -->
| old | 1.00 |
<!-- END GENERATED table -->
hand-written 2
<!-- BEGIN GENERATED note -->
<!-- END GENERATED note -->
"""


def test_fill_replaces_only_inside_the_markers():
  out = markers.fill(DOC, {"table": lambda: ["| new | 2.00 |"],
                           "note": lambda: ["- a", "- b"]})
  assert out.splitlines() == [
      "# Title", "hand-written 1", markers.BEGIN % "table", "| new | 2.00 |",
      markers.END % "table", "hand-written 2", markers.BEGIN % "note",
      "- a", "- b", markers.END % "note"]
  assert out.endswith("\n")
  # Filling again with the same content changes nothing.
  assert markers.fill(out, {"table": lambda: ["| new | 2.00 |"],
                            "note": lambda: ["- a", "- b"]}) == out


def test_unmarked_lines_are_the_hand_written_ones():
  assert markers.unmarked_lines(DOC) == ["# Title", "hand-written 1",
                                         "hand-written 2"]


def test_unknown_section_names_the_known_ones():
  with pytest.raises(markers.DocumentError, match=r"unknown sections \['note'\]"
                     r".*known: table"):
    markers.fill(DOC, {"table": lambda: []}, "DOC.md")


@pytest.mark.parametrize("text,message", [
    ("<!-- BEGIN GENERATED a -->\nx\n", r"DOC.md:1: section 'a' is never "
     r"closed"),
    ("<!-- BEGIN GENERATED a -->\n<!-- BEGIN GENERATED b -->\n",
     r"DOC.md:2: section 'b' begins inside section 'a'"),
    ("<!-- BEGIN GENERATED a -->\n<!-- END GENERATED b -->\n",
     r"DOC.md:2: .* closes 'b', but the open section is 'a'"),
])
def test_malformed_markers_say_where(text, message):
  with pytest.raises(markers.DocumentError, match=message):
    markers.section_names(text, "DOC.md")
