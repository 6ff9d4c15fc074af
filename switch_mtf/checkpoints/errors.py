"""The one error type of a conversion: a single line naming what is wrong.

Every check runs before any file is written, so a ConversionError means the
output dir was not created.
"""


class ConversionError(ValueError):
  """Bad or unrepresentable input; the message names the file, key or tensor.

  Raised with a one-line message that says what is wrong and, where there
  is one, what to do about it.
  """

  def __init__(self, message: str):
    super().__init__(" ".join(message.split()))
