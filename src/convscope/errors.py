"""The one exception type that entry scripts turn into `error: ...` and exit status 2."""


class ConvscopeError(Exception):
    """A problem with the user's input or config, worded for the user.

    The message names the file or the config key (e.g. ``model.layers.1.output_padding``)
    and the offending values, so the one line printed on stderr is enough to fix it.
    """
