"""facerep-plugin-example: a third-party facerep plugin adding the ``spiral`` shape decoder.

Installing the package is enough: facerep finds it through the ``facerep`` entry point group
(see ``pyproject.toml``), and a recipe selects it with ``model.shape_decoder.type: spiral``.
"""

__version__ = "0.1.0"
