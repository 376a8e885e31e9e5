"""The deployer's domain, pure: the deployment aggregate (``deployment.py``: commands, decide; its
fold is the shared :mod:`libs.views.deployments`), strategy defaults and Marathon's bounds
(``bounds.py``), what the tasks say (``counts.py``), analysis (``analysis.py``), the rolling move
(``rolling.py``) and the per-strategy plan (``plan.py``)."""
