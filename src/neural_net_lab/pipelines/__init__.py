"""The project's pipelines, one folder each, found by ``find_pipelines`` (pipeline_registry).

A folder holds ``pipeline.py`` (its nodes wired), ``nodes.py`` (the node functions, imported
only by its own ``pipeline.py`` and tests), ``params.py`` where its parameter blocks are its
own, and modules named for what they hold. A pipeline imports the engine and the shared
modules of the package; from another pipeline only its ``pipeline`` module, in ``pipeline.py``,
to include it. Nothing outside tuning imports tuning."""
