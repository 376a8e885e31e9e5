"""The deployer's domain, pure: the deployment aggregate (``deployment.py``: commands, decide; its
fold is the shared :mod:`libs.views.deployments`), the rolling bounds (``bounds.py``), what the tasks
say (``counts.py``), analysis (``analysis.py``) and the per-strategy plan (``plan.py``)."""
