"""The deployer: owns deployments (``domain/``, pure), carries them out against the registry and the
log (``service_layer/``, ``adapters/``), serves ``bay.v1.Deployer`` (``grpc_api.py``); wired in
``bootstrap.py``, run by ``main.py`` (``python -m services.deployer``)."""
