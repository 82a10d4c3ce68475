# The two set-up commands of the README. Each installs what it needs, then runs.
#   make demo PROMPT="mossy cobblestone path"   -> a material in out/ with the embedded default model
#   make test                                    -> the test suite
PYTHON ?= python3
PIP := $(PYTHON) -m pip
PROMPT ?= mossy cobblestone path
OUT ?= out/$(shell echo "$(PROMPT)" | tr -c 'a-zA-Z0-9\n' '_')
export HF_HUB_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False

.PHONY: install install-test demo test

# torch first, pinned to the CPU wheel that lies on this machine's disk; a GPU user's own torch >= 2.4 also
# satisfies the package's range, so installing the package never replaces it.
install:
	$(PIP) install -q "torch==2.13.0" || $(PIP) install -q "torch>=2.4,<2.15"
	$(PIP) install -q -e ".[text]"

install-test: install
	$(PIP) install -q -e ".[text,app,train,export,test]"
	bash scripts/install_test_tools.sh

demo: install
	$(PYTHON) -m stablematerials.cli generate "$(PROMPT)" --out "$(OUT)" --overwrite

test: install-test
	$(PYTHON) -m pytest -q
