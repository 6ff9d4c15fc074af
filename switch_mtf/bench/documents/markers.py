"""Marked sections of a Markdown file, and filling them in.

A section is the lines between

  <!-- BEGIN GENERATED name: python tools/write_docs.py -->
  <!-- END GENERATED name -->

Everything outside the markers is left as written by hand; everything
inside is replaced by what the section's generator returns.
"""

import re
from typing import Callable, Dict, List, Sequence, Tuple

BEGIN = "<!-- BEGIN GENERATED %s: python tools/write_docs.py -->"
END = "<!-- END GENERATED %s -->"
_BEGIN = re.compile(r"^<!-- BEGIN GENERATED ([\w.-]+)(?::[^>]*)? -->$")
_END = re.compile(r"^<!-- END GENERATED ([\w.-]+) -->$")


class DocumentError(ValueError):
  """A document's markers are malformed or name an unknown section."""


def section_names(text: str, path: str = "<text>") -> List[str]:
  """The sections a document marks, in order; checks the markers pair up."""
  names, open_name, open_line = [], None, 0
  for number, line in enumerate(text.splitlines(), 1):
    begin, end = _BEGIN.match(line.strip()), _END.match(line.strip())
    if begin:
      if open_name:
        raise DocumentError(
            "%s:%d: section %r begins inside section %r (line %d); close "
            "it first with %s" % (path, number, begin.group(1), open_name,
                                  open_line, END % open_name))
      open_name, open_line = begin.group(1), number
    elif end:
      if end.group(1) != open_name:
        raise DocumentError(
            "%s:%d: %s closes %r, but the open section is %r" % (
                path, number, line.strip(), end.group(1), open_name))
      names.append(open_name)
      open_name = None
  if open_name:
    raise DocumentError("%s:%d: section %r is never closed; add %s" % (
        path, open_line, open_name, END % open_name))
  return names


def fill(text: str, render: Dict[str, Callable[[], Sequence[str]]],
         path: str = "<text>") -> str:
  """Returns text with every marked section replaced by render[name]()."""
  names = section_names(text, path)
  unknown = sorted(set(names) - set(render))
  if unknown:
    raise DocumentError("%s marks unknown sections %s; known: %s" % (
        path, unknown, ", ".join(sorted(render))))
  out: List[str] = []
  skipping = False
  for line in text.splitlines():
    begin, end = _BEGIN.match(line.strip()), _END.match(line.strip())
    if begin:
      out.append(BEGIN % begin.group(1))
      out.extend(render[begin.group(1)]())
      skipping = True
    elif end:
      out.append(END % end.group(1))
      skipping = False
    elif not skipping:
      out.append(line)
  return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def unmarked_lines(text: str) -> List[str]:
  """The lines outside every marked section (written by hand)."""
  return [line for _, line in numbered_unmarked_lines(text)]


def numbered_unmarked_lines(text: str) -> List[Tuple[int, str]]:
  """(line number from 1, line) of the lines outside every marked section."""
  out, inside = [], False
  for number, line in enumerate(text.splitlines(), 1):
    if _BEGIN.match(line.strip()):
      inside = True
    elif _END.match(line.strip()):
      inside = False
    elif not inside:
      out.append((number, line))
  return out
