"""facerep: semi-supervised 3D face representation learning from photo collections.

The import package has three parts: `facerep.core` (contracts and composition machinery),
`facerep.plugins` (every paper component, registered through the same hook third parties use) and
`facerep.cli` (the ``facerep`` command).
"""

__version__ = "0.1.0"
