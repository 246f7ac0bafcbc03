"""The errors a user can cause, and fix.

Every error bertkit raises for bad input, a missing file or a missing optional
package is a `BertkitError`; its message says what was wrong and what to do.  The
command line prints these as one line (`bertkit: error: ...`); any other exception
is a bug and is shown as one, with its traceback under `--debug`.

Each kind is also the matching built-in exception, so `except ValueError` or
`except FileNotFoundError` in existing user code keeps working.
"""
from __future__ import annotations


class BertkitError(Exception):
    """Base of every error a user can fix (the message says how)."""


class InputError(BertkitError, ValueError):
    """A value, an argument or the content of a file is not usable as it is."""


class NotFoundError(BertkitError, FileNotFoundError):
    """A file, a directory or a model that was named does not exist."""


class OutputExistsError(InputError, FileExistsError):
    """An output path is already taken by something bertkit will not overwrite."""


class DeviceError(InputError):
    """A --device that this machine does not have, or a name that is not a device (see common.devices)."""


class MissingDependency(BertkitError, ImportError):
    """An optional package is needed for this feature; the message names the pip command."""


def missing_dependency(package: str, extra: str, feature: str) -> MissingDependency:
    """The error for a missing optional package: `raise missing_dependency("kiwipiepy", "ko", "...")`."""
    return MissingDependency(f"{feature} needs the package {package!r}, which is not installed: "
                             f"pip install 'bertkit[{extra}]' (or pip install {package}).")
