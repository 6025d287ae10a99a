"""The one exception type for mistakes a user makes and can fix: a bad config value, a missing or
wrong data/weights/checkpoint path, a bad command-line argument.

Every `swaptalk` command prints a UserError as one line (`swaptalk <command>: error: ...`) and exits
1; any other exception is a bug (ours or a library's) and propagates with its full traceback. It
subclasses ValueError so callers that catch ValueError keep working.
"""


class UserError(ValueError):
  """A config/data/CLI mistake: shown to the user as one line, without a traceback."""


class MissingFileError(UserError, FileNotFoundError):
  """A file or directory the user named (or must create first) does not exist."""
