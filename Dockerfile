# One image for every Bay service; docker-compose.yml picks the service with its command
# (`python -m services.registry`, `python -m services.gateway`, `python -m services.gateway.audit`).

# ---- build: the project and its dependencies in a virtualenv, protobuf code generated ----
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
RUN python -m venv /opt/bay

# dependencies first, so a code change does not reinstall them
COPY pyproject.toml ./
RUN mkdir -p libs services \
    && touch libs/__init__.py services/__init__.py \
    && /opt/bay/bin/pip install --upgrade pip \
    && /opt/bay/bin/pip install . \
    && /opt/bay/bin/pip uninstall -y bay

COPY protos ./protos
COPY libs ./libs
COPY services ./services
RUN /opt/bay/bin/pip install --no-deps .

# Generated code goes to its own package directory, put on the path by a .pth file: the same as
# the Makefile's `protos` target (without the mypy stubs, which only the linters need).
RUN mkdir -p /opt/bay/gen \
    && /opt/bay/bin/python -m grpc_tools.protoc -Iprotos --python_out=/opt/bay/gen --grpc_python_out=/opt/bay/gen \
        protos/bay/v1/*.proto \
    && /opt/bay/bin/python -m grpc_tools.protoc -Igrpc_reflection_v1=protos/grpc/reflection/v1 \
        --python_out=/opt/bay/gen --grpc_python_out=/opt/bay/gen grpc_reflection_v1/reflection.proto \
    && touch /opt/bay/gen/bay/__init__.py /opt/bay/gen/bay/v1/__init__.py /opt/bay/gen/grpc_reflection_v1/__init__.py \
    && /opt/bay/bin/python -c "import sysconfig; open(sysconfig.get_paths()['purelib'] + '/bay-gen.pth', 'w').write('/opt/bay/gen\n')" \
    && /opt/bay/bin/python -c "import services.registry.main, bay.v1.registry_pb2_grpc, libs.reflection"

# ---- run: the virtualenv only, as an unprivileged user ----
FROM python:3.11-slim

RUN useradd --system --uid 10001 --home-dir /var/lib/bay --shell /usr/sbin/nologin bay \
    && mkdir -p /var/lib/bay /etc/bay-nats /etc/bay-monitoring \
    && chown bay:bay /var/lib/bay /etc/bay-nats /etc/bay-monitoring

COPY --from=build /opt/bay /opt/bay

ENV PATH=/opt/bay/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    BAY_DATA_DIR=/var/lib/bay

USER bay
WORKDIR /var/lib/bay
VOLUME ["/var/lib/bay"]
EXPOSE 8080 50051

CMD ["python", "-m", "services.registry"]
