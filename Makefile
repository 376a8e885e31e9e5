# Bay: every target sets up what it needs. `make run` and `make test` work on a fresh clone.
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PROTOS  := $(wildcard protos/bay/v1/*.proto)
# Of the standard protos under protos/ (for other languages' clients), Python generates only
# reflection v1: grpcio-reflection ships v1alpha alone, while health, google.rpc.Status and its
# details come with grpcio-health-checking and googleapis-common-protos (generating those again would
# clash with them in the descriptor pool). Generated as grpc_reflection_v1/ (protoc's VIRTUAL=DIR
# include), as grpcio-reflection names its own: a gen/grpc/ would hide under the grpc package.
REFLECTION_V1 := protos/grpc/reflection/v1/reflection.proto
GEN_OK  := gen/bay/v1/.generated

.PHONY: run test lint protos bench chaos clean setup tools native taskuser

setup: $(STAMP) $(GEN_OK) tools native taskuser

# the unprivileged account local tasks run as, where setup runs as root
taskuser:
	@bash install/taskuser.sh

# the DNS service's C fast path (optional: without a compiler it uses its Python path)
native: $(STAMP)
	@bash install/udpfast.sh $(BIN)/python

# dig, dnsperf, dnsmasq from Debian's packages when missing (DNS tests and benchmark)
tools:
	@bash install/tools.sh

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null 2>&1 || { echo "need $(PY) on PATH"; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	bash install/pymesos.sh $(BIN)/python
	$(BIN)/python -c "import sysconfig,os; open(os.path.join(sysconfig.get_paths()['purelib'],'bay-gen.pth'),'w').write(os.path.abspath('gen')+'\n')"
	touch $(STAMP)

protos: $(STAMP)
	rm -rf gen && $(MAKE) $(GEN_OK)

$(GEN_OK): $(PROTOS) $(REFLECTION_V1) $(STAMP)
	rm -rf gen && mkdir -p gen
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m grpc_tools.protoc -Iprotos --python_out=gen --grpc_python_out=gen \
		--mypy_out=gen --mypy_grpc_out=gen $(PROTOS)
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python -m grpc_tools.protoc -Igrpc_reflection_v1=$(dir $(REFLECTION_V1)) \
		--python_out=gen --grpc_python_out=gen --mypy_out=gen --mypy_grpc_out=gen \
		grpc_reflection_v1/$(notdir $(REFLECTION_V1))
	touch gen/bay/__init__.py gen/bay/v1/__init__.py gen/grpc_reflection_v1/__init__.py $(GEN_OK)

run: setup
	$(BIN)/bay up

test: setup
	$(MAKE) lint
	$(BIN)/python -m pytest -q tests

lint: setup
	$(BIN)/ruff check libs services tests bench
	$(BIN)/ruff format --check libs services tests bench
	$(BIN)/mypy

bench: setup
	$(BIN)/python -m bench

# SIGKILL every service of a real `bay up` under load; prints what was lost, doubled, orphaned, stuck
chaos: setup
	$(BIN)/python -m bench.chaos --rounds 3

clean:
	rm -rf gen .venv .bay .mypy_cache .ruff_cache .pytest_cache services/dns/_udpfast*.so
