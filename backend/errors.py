"""Exceptions the backend raises for problems a user can fix.

Front ends (the Processing algorithm, the CLI) turn these into one clear
message each; anything else is a bug and may surface as a traceback.
"""


class SuperResError(Exception):
    """A problem with the input, parameters, weights or environment.

    The message names the problem and, where there is one, the fix.
    """


class Cancelled(SuperResError):
    """The run was cancelled by the user; partial output has been removed."""
