"""komeet-sync: keep Komeet accounts in step with each customer's directory.

The package is the framework-free core (ARCHITECTURE.md, "Layers"): it never imports
``dagster`` or ``pipelines``.
"""

__version__ = "0.1.0"
