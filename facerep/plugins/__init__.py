"""Built-in plugins: every module below this package that defines ``facerep_components``.

They register through the same pluggy hook and the same entry point group (``facerep``) a third-party
package uses: each one is declared in pyproject.toml's ``[project.entry-points.facerep]`` (see
`facerep.core.registry`; tests/test_architecture.py checks that none is left out). No plugin module
imports another: what they share lives in `facerep.nn`, `facerep.geometry`, `facerep.data` or
`facerep.bench`.
"""
