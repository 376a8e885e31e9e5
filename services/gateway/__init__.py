"""The gateway: Bay's REST API for humans and the CLI (FastAPI), in front of the registry's gRPC API.

Layout (after fastapi/full-stack-fastapi-template): ``app.create_app`` wires one router per resource
(``routes/``), ``deps.py`` holds the ``Annotated`` dependency aliases, ``models.py`` the request and
response shapes (separate from the protobuf wire types, converted in ``adapters.py``), and
``errors.py`` is the only place where an error becomes an HTTP status.
"""
