# vamp-serverless: everything a newcomer runs. Each target does its own set-up.
PYTHON ?= python3
STATE  ?= .vamp
STAMP  := $(STATE)/.setup-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: setup run demo test bench lint package clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	@mkdir -p $(STATE)
	@if ! command -v etcd >/dev/null || ! command -v haproxy >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get install -y -qq etcd-server haproxy >/dev/null 2>&1 || \
	     (apt-get update -qq && apt-get install -y -qq etcd-server haproxy >/dev/null)); \
	  else echo "install etcd-server and haproxy (apt-get install etcd-server haproxy)"; exit 1; fi; \
	fi
	$(PYTHON) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $@

run: setup                ## the local stack: API on 127.0.0.1:$${VAMP_PORT:-8080} until Ctrl-C
	$(PYTHON) -m local run

demo: setup               ## the main job on the local stack
	$(PYTHON) -m local demo

test: setup               ## the whole test suite against real local parts
	$(PYTHON) -m pytest -q -n 2 -p no:cacheprovider

bench: setup              ## speed and scale figures
	$(PYTHON) -m bench

lint: setup
	cfn-lint infra/*.yaml

clean:
	rm -rf $(STATE) .pytest_cache .hypothesis
